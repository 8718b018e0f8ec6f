import type { ComplaintVocabulary } from '../cohort/complaint.js';
import type { VersionedRules } from '../cohort/rules.js';
import type { BaselineStatistics } from '../cohort/types.js';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';

/** What every hook needs besides the patient: loaded from the database, shared across requests. */
export interface ReferenceData {
  readonly rules: VersionedRules;
  readonly vocabulary: ComplaintVocabulary;
  readonly conceptDisplays: ReadonlyMap<string, string>;
  readonly icd9Map: Icd9ToIcd10Map;
  readonly baseline: BaselineStatistics;
}

/**
 * Keeps reference data for `ttlMs` and reloads it once (not once per request) when it is stale, so that a
 * new rules version or an ingest shows within the TTL; `invalidate()` makes it show at the next call.
 */
export class ReferenceDataCache {
  private value: ReferenceData | undefined;
  private loadedAt = 0;
  private loading: Promise<ReferenceData> | undefined;

  constructor(
    private readonly load: () => Promise<ReferenceData>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<ReferenceData> {
    if (this.value !== undefined && this.now() - this.loadedAt < this.ttlMs) return this.value;
    this.loading ??= this.load().then(
      (value) => {
        this.value = value;
        this.loadedAt = this.now();
        this.loading = undefined;
        return value;
      },
      (error: unknown) => {
        this.loading = undefined;
        throw error;
      },
    );
    return this.loading;
  }

  invalidate(): void {
    this.loadedAt = 0;
  }
}
