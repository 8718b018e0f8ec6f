import type { ComplaintVocabulary } from '../cohort/complaint.js';
import type { VersionedRules } from '../cohort/rules.js';
import type { BaselineStatistics } from '../cohort/types.js';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';
import type { AcceptanceEvidence } from '../feedback/acceptance.js';

/** What every hook needs besides the patient: loaded from the database, shared across requests. */
export interface ReferenceData {
  readonly rules: VersionedRules;
  readonly vocabulary: ComplaintVocabulary;
  readonly conceptDisplays: ReadonlyMap<string, string>;
  readonly icd9Map: Icd9ToIcd10Map;
  readonly baseline: BaselineStatistics;
  /** Feedback outcomes per complaint concept and item, for rules `feedbackRanking` (none: no evidence). */
  readonly acceptance?: AcceptanceEvidence;
}

/** How many TTLs old a value may be and still be served while it reloads (see ReferenceDataCache). */
const staleServeFactor = 4;

/**
 * Keeps reference data for `ttlMs` and reloads it once (not once per request) when it is stale, so that a
 * new rules version or an ingest shows within the TTL; `invalidate()` makes it show at the next call.
 *
 * A value past its TTL (but younger than `staleServeFactor` TTLs) is still served while the reload runs in the
 * background: otherwise every request arriving during a reload (a baseline and vocabulary read that grows with
 * the cohort) would wait for it, which is the p99 of a busy service. After invalidate() nobody is served the old
 * value, and a value too old (reloads failing, e.g. the database away) is not served either: callers wait, and see
 * the failure.
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
    const age = this.now() - this.loadedAt;
    if (this.value !== undefined && age < this.ttlMs) return this.value;
    if (this.value !== undefined && age < this.ttlMs * staleServeFactor) {
      // Stale but recent: reload in the background, answer with what we have (a failed reload is retried next call).
      this.reload().catch(() => undefined);
      return this.value;
    }
    return this.reload();
  }

  private reload(): Promise<ReferenceData> {
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
    this.loadedAt = Number.NEGATIVE_INFINITY;
    this.generation += 1;
    this.loading = undefined;
  }
}
