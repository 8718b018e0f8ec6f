import type { BaselineStatistics, CohortCriteria, CohortSource, CohortStatistics, DescribeCohortOptions } from './types.js';

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

/** Keys already worked out, by criteria object: one hook asks for the key of its cohort several times. */
const knownKeys = new WeakMap<CohortCriteria, string>();

/** The cache key of one set of criteria: every field, set-valued ones in a stable order. */
export function cohortCriteriaKey(criteria: CohortCriteria): string {
  let key = knownKeys.get(criteria);
  if (key === undefined) {
    key = JSON.stringify(keyFields.map((field) => keyParts[field](criteria)));
    knownKeys.set(criteria, key);
  }
  return key;
}

interface Entry<T> {
  readonly value: Promise<T>;
  readonly storedAt: number;
  /** What the value weighs (`weigh`), counted once it has resolved; 0 until then. */
  weight: number;
}

interface LruLimits<T> {
  readonly maxEntries: number;
  readonly ttlMs: number;
  /** With `maxWeight`: the weight of a value (e.g. its item count), so that a few large ones cannot fill memory. */
  readonly weigh?: (value: T) => number;
  readonly maxWeight?: number;
}

/**
 * A small LRU map with an age limit: recently used keys stay, stale ones are read again. Bounded by entries and,
 * when given `weigh`, by the total weight of the resolved values: the least recently used go first.
 */
class ExpiringLru<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private totalWeight = 0;
  /** Lookups answered from the map, and those that had to load (since the start). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly limits: LruLimits<T>,
    private readonly now: () => number,
  ) {}

  /** `expire` false: the caller knows the data has not changed (a version it tracks), so age does not matter. */
  get(key: string, load: () => Promise<T>, expire = true): Promise<T> {
    const entry = this.entries.get(key);
    if (entry && (!expire || this.now() - entry.storedAt < this.limits.ttlMs)) {
      // Re-insert to mark it most recently used.
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.hits += 1;
      return entry.value;
    }
    this.misses += 1;
    if (entry) this.remove(key, entry);
    const value = load();
    const stored: Entry<T> = { value, storedAt: this.now(), weight: 0 };
    // A failed load is not remembered: the next call tries again.
    value.then(
      (resolved) => {
        const weigh = this.limits.weigh;
        if (weigh === undefined || this.entries.get(key) !== stored) return;
        stored.weight = weigh(resolved);
        this.totalWeight += stored.weight;
        this.evict();
      },
      () => {
        if (this.entries.get(key) === stored) this.remove(key, stored);
      },
    );
    this.entries.set(key, stored);
    this.evict();
    return value;
  }

  private remove(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    this.totalWeight -= entry.weight;
  }

  /** Drops the least recently used until both bounds hold (a value heavier than the whole bound is not kept). */
  private evict(): void {
    const maxWeight = this.limits.maxWeight ?? Number.POSITIVE_INFINITY;
    while (this.entries.size > this.limits.maxEntries || this.totalWeight > maxWeight) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.remove(oldestKey, oldest);
    }
  }

  clear(): void {
    this.entries.clear();
    this.totalWeight = 0;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The total weight of the values held (0 without `weigh`). */
  get weight(): number {
    return this.totalWeight;
  }
}

export interface CachedCohortSourceOptions {
  /** Most cohorts kept. */
  readonly maxEntries: number;
  /**
   * Most item counts kept over all cohorts (default: no bound but `maxEntries`). A cohort's item list grows with the
   * cohort: a few dozen items in a narrow cohort of the demo, hundreds to thousands in a broad one of a million
   * encounters; this bounds the memory the cache holds whatever the cohorts' size.
   */
  readonly maxItems?: number;
  /**
   * How long an answer is reused; new encounters show up after at most this long, or at `clear()`. Not applied while
   * the source tells its data version without a round trip (`knownVersion`): a new version empties the cache anyway.
   */
  readonly ttlMs: number;
  /** With a source that tells its data version: how often it is asked (default 1 s); a new version empties the cache. */
  readonly versionCheckMs?: number;
  readonly now?: () => number;
}

/**
 * A source that can tell cheaply when its data changed (an ingest wrote new aggregates, an opt-out removed
 * encounters), possibly in another process: the cache then forgets everything instead of waiting for the TTL.
 */
export interface VersionedCohortSource extends CohortSource {
  dataVersion(): Promise<string>;
  /**
   * The version as last seen, without a round trip (a source that polls it in the background): a cache compares it
   * on every call instead of asking `dataVersion()` and making the calls of that moment wait. Undefined: not known.
   */
  knownVersion?(): string | undefined;
  /** Forget what it holds (this process just changed the data). */
  clear?(): void;
}

function isVersioned(source: CohortSource): source is VersionedCohortSource {
  return typeof (source as Partial<VersionedCohortSource>).dataVersion === 'function';
}

/** Serves repeated cohorts from memory: a bounded, expiring cache in front of any CohortSource. */
export class CachedCohortSource implements CohortSource {
  private readonly counts: ExpiringLru<number[]>;
  private readonly cohorts: ExpiringLru<CohortStatistics>;
  private readonly baseline: ExpiringLru<BaselineStatistics>;
  private readonly now: () => number;
  private readonly versionCheckMs: number;
  private version: string | undefined;
  private versionCheckedAt = Number.NEGATIVE_INFINITY;
  private versionCheck: Promise<void> | null = null;
  /** Whether the last check saw the source's version (then a change of data empties the cache and nothing expires). */
  private versionTracked = false;

  constructor(
    private readonly source: CohortSource,
    options: CachedCohortSourceOptions,
  ) {
    const now = options.now ?? Date.now;
    this.now = now;
    this.versionCheckMs = options.versionCheckMs ?? 1000;
    this.counts = new ExpiringLru({ maxEntries: options.maxEntries, ttlMs: options.ttlMs }, now);
    this.cohorts = new ExpiringLru<CohortStatistics>(
      {
        maxEntries: options.maxEntries,
        ttlMs: options.ttlMs,
        // One per cohort besides its items: an empty cohort still holds an entry.
        weigh: (statistics) => statistics.items.length + 1,
        ...(options.maxItems === undefined ? {} : { maxWeight: options.maxItems }),
      },
      now,
    );
    this.baseline = new ExpiringLru({ maxEntries: 1, ttlMs: options.ttlMs }, now);
  }

  /** Asks a versioned source for its version at most every `versionCheckMs`, one question at a time. */
  private checkVersion(): Promise<void> | null {
    if (!isVersioned(this.source)) return null;
    const source = this.source;
    if (source.knownVersion) {
      const version = source.knownVersion();
      if (version !== undefined && this.version !== undefined && version !== this.version) this.clearOwn();
      if (version !== undefined) this.version = version;
      this.versionTracked = version !== undefined;
      return null;
    }
    if (this.now() - this.versionCheckedAt < this.versionCheckMs) return null;
    this.versionCheck ??= source
      .dataVersion()
      .then((version) => {
        if (this.version !== undefined && version !== this.version) this.clearOwn();
        this.version = version;
        this.versionCheckedAt = this.now();
      })
      // Unknown for now: the TTL still bounds how old an answer gets; asked again on the next call.
      .catch(() => undefined)
      .finally(() => {
        this.versionCheck = null;
      });
    return this.versionCheck;
  }

  async countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    await this.checkVersion();
    // Joined: a flat key for as long as the entry lives (a template literal keeps a tree of concatenations).
    const key = ['[', criteria.map(cohortCriteriaKey).join(','), ']'].join('');
    return this.counts.get(key, () => this.source.countCohorts(criteria), !this.versionTracked);
  }

  async describeCohort(criteria: CohortCriteria, options: DescribeCohortOptions = {}): Promise<CohortStatistics> {
    await this.checkVersion();
    // Reputation-weighted counts (opt-in, rules itemWeighting) go to the source's exact path, under a key of their own.
    if (options.itemWeighting === 'clinician-reputation') {
      return this.cohorts.get(`weighted:${cohortCriteriaKey(criteria)}`, () => this.source.describeCohort(criteria, options));
    }
    return this.cohorts.get(cohortCriteriaKey(criteria), () => this.source.describeCohort(criteria), !this.versionTracked);
  }

  async describeBaseline(): Promise<BaselineStatistics> {
    await this.checkVersion();
    return this.baseline.get('baseline', () => this.source.describeBaseline(), !this.versionTracked);
  }

  /** Cohort lookups (counts and statistics) answered from the cache and loaded from the source, since the start. */
  lookups(): { readonly hits: number; readonly misses: number } {
    return { hits: this.counts.hits + this.cohorts.hits, misses: this.counts.misses + this.cohorts.misses };
  }

  /** Forget everything, the source's own memory included, e.g. after an ingest, an opt-out or a rules change. */
  clear(): void {
    this.clearOwn();
    if (isVersioned(this.source)) this.source.clear?.();
  }

  private clearOwn(): void {
    this.counts.clear();
    this.cohorts.clear();
    this.baseline.clear();
  }

  get cachedCohorts(): number {
    return this.cohorts.size;
  }

  /** Item counts held over all cached cohorts (one more per cohort): what `maxItems` bounds. */
  get cachedItems(): number {
    return this.cohorts.weight;
  }
}
