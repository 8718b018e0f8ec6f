import type { BaselineStatistics, CohortCriteria, CohortSource, CohortStatistics } from './types.js';

/** Set-valued fields in a stable order, so that criteria meaning the same share an entry. */
function sortedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/**
 * One part of the key per criteria field. The mapped type makes it exhaustive: a field added to
 * CohortCriteria does not type-check until it is part of the key, so two cohorts can never share an entry.
 */
const keyParts: { readonly [Field in keyof CohortCriteria]-?: (criteria: CohortCriteria) => unknown } = {
  sex: (criteria) => criteria.sex,
  ageMin: (criteria) => criteria.ageMin,
  ageMax: (criteria) => criteria.ageMax,
  acuity: (criteria) => criteria.acuity && [criteria.acuity.min, criteria.acuity.max],
  complaintConcept: (criteria) => criteria.complaintConcept,
  otherComplaintConcepts: (criteria) => sortedSet(criteria.otherComplaintConcepts),
  icd10: ({ icd10 }) =>
    icd10 && {
      level: icd10.level,
      // At the category level only the categories count: K5730 and K5792 ask for the same cohort.
      codes: sortedSet(icd10.level === 'category' ? icd10.codes.map((code) => code.slice(0, 3)) : icd10.codes),
      overlap: icd10.overlap.measure === 'jaccard' ? ['jaccard', icd10.overlap.atLeast] : [icd10.overlap.measure],
    },
  sites: (criteria) => criteria.sites && sortedSet(criteria.sites),
  // A null reference year means "the newest on record": cached answers for it last until the TTL or clear().
  lookback: (criteria) => criteria.lookback && [criteria.lookback.years, criteria.lookback.referenceYear],
};
const keyFields = (Object.keys(keyParts) as (keyof CohortCriteria)[]).sort();

/** The cache key of one set of criteria: every field, set-valued ones in a stable order. */
export function cohortCriteriaKey(criteria: CohortCriteria): string {
  return JSON.stringify(keyFields.map((field) => keyParts[field](criteria)));
}

interface Entry<T> {
  readonly value: Promise<T>;
  readonly storedAt: number;
}

/** A small LRU map with an age limit: recently used keys stay, stale ones are read again. */
class ExpiringLru<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly maxEntries: number,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  get(key: string, load: () => Promise<T>): Promise<T> {
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.storedAt < this.ttlMs) {
      // Re-insert to mark it most recently used.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.value;
    }
    const value = load();
    // A failed load is not remembered: the next call tries again.
    value.catch(() => this.entries.get(key)?.value === value && this.entries.delete(key));
    this.entries.set(key, { value, storedAt: this.now() });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface CachedCohortSourceOptions {
  /** Most cohorts kept (each holds a few hundred item counts). */
  readonly maxEntries: number;
  /** How long an answer is reused; new encounters show up after at most this long, or at `clear()`. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

/** Serves repeated cohorts from memory: a bounded, expiring cache in front of any CohortSource. */
export class CachedCohortSource implements CohortSource {
  private readonly counts: ExpiringLru<number[]>;
  private readonly cohorts: ExpiringLru<CohortStatistics>;
  private readonly baseline: ExpiringLru<BaselineStatistics>;

  constructor(
    private readonly source: CohortSource,
    options: CachedCohortSourceOptions,
  ) {
    const now = options.now ?? Date.now;
    this.counts = new ExpiringLru(options.maxEntries, options.ttlMs, now);
    this.cohorts = new ExpiringLru(options.maxEntries, options.ttlMs, now);
    this.baseline = new ExpiringLru(1, options.ttlMs, now);
  }

  countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    return this.counts.get(`[${criteria.map(cohortCriteriaKey).join(',')}]`, () => this.source.countCohorts(criteria));
  }

  describeCohort(criteria: CohortCriteria): Promise<CohortStatistics> {
    return this.cohorts.get(cohortCriteriaKey(criteria), () => this.source.describeCohort(criteria));
  }

  describeBaseline(): Promise<BaselineStatistics> {
    return this.baseline.get('baseline', () => this.source.describeBaseline());
  }

  /** Forget everything, e.g. after an ingest or a rules change. */
  clear(): void {
    this.counts.clear();
    this.cohorts.clear();
    this.baseline.clear();
  }

  get cachedCohorts(): number {
    return this.cohorts.size;
  }
}
