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
  /** Bumped by invalidate(): a load that started before it may have read what was just changed. */
  private generation = 0;

  constructor(
    private readonly load: () => Promise<ReferenceData>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<ReferenceData> {
    if (this.value !== undefined && this.now() - this.loadedAt < this.ttlMs) return this.value;
    if (this.loading) return this.loading;
    const generation = this.generation;
    const loading = this.load().then(
      (value) => {
        // Served to whoever waited for it, but kept only when no invalidate() came in the meantime.
        if (generation === this.generation) {
          this.value = value;
          this.loadedAt = this.now();
        }
        if (this.loading === loading) this.loading = undefined;
        return value;
      },
      (error: unknown) => {
        if (this.loading === loading) this.loading = undefined;
        throw error;
      },
    );
    this.loading = loading;
    return loading;
  }

  /** The next get() loads afresh, even when a load is under way (it may have read what just changed). */
  invalidate(): void {
    this.loadedAt = 0;
    this.generation += 1;
    this.loading = undefined;
  }
}
