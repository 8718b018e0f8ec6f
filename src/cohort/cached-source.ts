import type { BaselineStatistics, CohortCriteria, CohortSource, CohortStatistics } from './types.js';

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
    return this.counts.get(JSON.stringify(criteria), () => this.source.countCohorts(criteria));
  }

  describeCohort(criteria: CohortCriteria): Promise<CohortStatistics> {
    return this.cohorts.get(JSON.stringify(criteria), () => this.source.describeCohort(criteria));
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
