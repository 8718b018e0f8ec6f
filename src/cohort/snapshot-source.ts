import { AggregateSnapshot, type AggregateSnapshotData } from './aggregate-snapshot.js';
import type { VersionedCohortSource } from './cached-source.js';
import type { BaselineStatistics, CohortCriteria, CohortStatistics, DescribeCohortOptions } from './types.js';

export interface SnapshotSourceOptions {
  /** Reads the aggregates' data version and, beside it, the usable generation whole (null data: none usable). */
  readonly load: () => Promise<{ readonly version: string; readonly data: AggregateSnapshotData | null }>;
  /** How often the data version is polled (in the background, never on a request's path). */
  readonly pollMs: number;
  readonly onError?: (error: unknown) => void;
  readonly onLoaded?: (loaded: { readonly generation: number | null; readonly cells: number; readonly ms: number }) => void;
}

/**
 * Cohort statistics from the aggregates held in memory, so that a hook does not wait on the database: the snapshot
 * is replaced in the background when the aggregates' data version changes (an ingest's rebuild, an opt-out's
 * deletion, in this process or another). From the moment a change is seen until the new snapshot is in, and for
 * criteria the cells cannot answer exactly, calls go to `fallback` (the SQL aggregates, else the exact scan), so an
 * answer never reflects data older than one poll.
 */
export class SnapshotCohortSource implements VersionedCohortSource {
  private snapshot: AggregateSnapshot | null = null;
  /** The version of the data last seen (with or without a snapshot); undefined until the first poll. */
  private version: string | undefined;
  private polling: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Bumped by clear(): a load that began before it may hold what was just changed, and is not kept. */
  private epoch = 0;
  private pollAgain = false;
  /** How many calls each path answered (tests and the benchmark). */
  readonly answered = { snapshot: 0, fallback: 0 };

  constructor(
    private readonly fallback: VersionedCohortSource,
    private readonly options: SnapshotSourceOptions,
  ) {}

  /**
   * Loads the first snapshot and starts polling; resolves once the first poll is done (failed or not), or after
   * `waitAtMostMs` when given, the load going on in the background: until it is in, calls go to the fallback. A service
   * starts within its plugin timeout however long the first load takes (at a million encounters on a busy machine it
   * outlasted fastify's 10 s).
   */
  start(options: { readonly waitAtMostMs?: number } = {}): Promise<void> {
    const first = this.poll();
    this.timer = setInterval(() => void this.poll(), this.options.pollMs);
    this.timer.unref();
    if (options.waitAtMostMs === undefined) return first;
    let timeout: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => {
      timeout = setTimeout(resolve, options.waitAtMostMs);
      timeout.unref();
    });
    return Promise.race([first, waited]).finally(() => clearTimeout(timeout));
  }

  /** Whether a snapshot is held (calls it answers go to no database). */
  get loaded(): boolean {
    return this.snapshot !== null;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Drops the snapshot now (this process just changed the data) and loads it again in the background. */
  clear(): void {
    this.epoch += 1;
    this.snapshot = null;
    this.version = undefined;
    if (this.polling) this.pollAgain = true;
    else void this.poll();
  }

  /** One poll at a time: reads the version and reloads when it moved. Never throws. */
  poll(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.polling ??= this.refresh()
      .catch((error: unknown) => {
        // The database away: keep nothing that might be stale beyond one poll; the fallback answers (or fails).
        this.snapshot = null;
        this.version = undefined;
        this.options.onError?.(error);
      })
      .finally(() => {
        this.polling = null;
        if (this.pollAgain) {
          this.pollAgain = false;
          void this.poll();
        }
      });
    return this.polling;
  }

  private async refresh(): Promise<void> {
    const epoch = this.epoch;
    const version = await this.fallback.dataVersion();
    if (this.version !== undefined && version === this.version) return;
    // Whatever was held is older than the data now: stop serving it before the (slower) load.
    this.snapshot = null;
    const started = Date.now();
    const loaded = await this.options.load();
    if (this.closed || epoch !== this.epoch) return;
    this.snapshot = loaded.data === null ? null : new AggregateSnapshot(loaded.data);
    this.version = loaded.version;
    this.options.onLoaded?.({ generation: loaded.data?.generation ?? null, cells: loaded.data?.cells.length ?? 0, ms: Date.now() - started });
  }

  /** The version of the data the snapshot holds, without a round trip: a cache in front compares it on every call. */
  knownVersion(): string | undefined {
    return this.version;
  }

  dataVersion(): Promise<string> {
    return this.fallback.dataVersion();
  }

  async countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    const snapshot = this.snapshot;
    if (snapshot !== null && criteria.every((one) => snapshot.answers(one))) {
      this.answered.snapshot += 1;
      return snapshot.countCohorts(criteria);
    }
    this.answered.fallback += 1;
    return this.fallback.countCohorts(criteria);
  }

  async describeCohort(criteria: CohortCriteria, options?: DescribeCohortOptions): Promise<CohortStatistics> {
    const snapshot = this.snapshot;
    const weighted = options?.itemWeighting !== undefined && options.itemWeighting !== 'none';
    if (snapshot !== null && !weighted && snapshot.answers(criteria)) {
      const statistics = snapshot.describeCohort(criteria);
      if (statistics !== null) {
        this.answered.snapshot += 1;
        return statistics;
      }
    }
    this.answered.fallback += 1;
    return this.fallback.describeCohort(criteria, options);
  }

  async describeBaseline(): Promise<BaselineStatistics> {
    const snapshot = this.snapshot;
    if (snapshot !== null) {
      this.answered.snapshot += 1;
      return snapshot.describeBaseline();
    }
    this.answered.fallback += 1;
    return this.fallback.describeBaseline();
  }
}
