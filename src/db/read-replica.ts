import {
  Kysely,
  PostgresAdapter,
  PostgresDriver,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import type pg from 'pg';
import type { Database } from './database.js';

/**
 * Reads that may be served by PostgreSQL streaming replicas (hot standbys), falling back to the primary.
 *
 * "Falling behind" (docs/scaling.md): a replica is behind when the oldest change the primary had written that
 * the replica has not yet replayed is older than `maxLagMs`. It is judged off the request path: every
 * `checkIntervalMs` one query on the primary (`pg_current_wal_lsn()`) and one per replica
 * (`pg_last_wal_replay_lsn()`); the primary's positions are remembered with the time they were first seen, so
 * the lag is measured on this process's clock, not from the two servers' clocks, and an idle primary does not
 * look like a lagging replica (a replica that has replayed everything has no lag, however long ago the last
 * write was). A hook never pays a query for this. Resolution: one check interval.
 */

export type ReplicaState = 'starting' | 'healthy' | 'behind' | 'unreachable' | 'not-a-standby';

export interface ReplicaStatus {
  /** host:port/database, never the credentials. */
  readonly name: string;
  readonly state: ReplicaState;
  /** Age of the oldest change not yet replayed (0: caught up); null when it could not be judged. */
  readonly lagMs: number | null;
  readonly checkedAt: Date | null;
  /** Why it is not in use, when it is not. */
  readonly reason: string | null;
}

export interface ReadCounts {
  /** Queries answered by a replica. */
  readonly replica: number;
  /** Queries sent to the primary because no replica was fit (or the process was reading its own writes). */
  readonly primary: number;
  /** Queries that failed on a replica and were answered by the primary instead. */
  readonly fallbacks: number;
}

export interface ReadDatabaseStatus {
  readonly replicas: readonly ReplicaStatus[];
  /** True while this process waits for the replicas to replay a change it wrote (reads go to the primary). */
  readonly readingOwnWrites: boolean;
  readonly counts: ReadCounts;
}

/** The handle the hook path reads through: replicas when fit, else the primary. */
export interface ReadDatabase {
  readonly db: Kysely<Database>;
  /** False when there is no replica: `db` is then the primary's own handle. */
  readonly replicated: boolean;
  status(): ReadDatabaseStatus;
  /**
   * Call after this process changed something it will read back at once (rules, synonyms, opt-outs): reads go
   * to the primary until the replicas have replayed the primary's position as of now.
   */
  markPrimaryWrite(): void;
  /** Runs one check now (the monitor runs them on its own every check interval). */
  checkNow(): Promise<void>;
  /** Called when a replica changes state (to log it). */
  onStateChange(listener: (status: ReplicaStatus, previous: ReplicaState) => void): void;
  /** Stops the monitor and closes the replicas' pools; the primary stays open (its handle closes it). */
  close(): Promise<void>;
}

export interface ReadDatabaseOptions {
  /** The primary's pool: used for fallback reads and for the primary's WAL position. */
  readonly primaryPool: pg.Pool;
  /** The primary's own handle, for `db` when there is no replica. */
  readonly primaryDb: Kysely<Database>;
  readonly replicas: readonly ReplicaPool[];
  readonly maxLagMs: number;
  readonly checkIntervalMs?: number;
}

export interface ReplicaPool {
  readonly name: string;
  readonly pool: pg.Pool;
}

/** A read handle that is the primary itself (no replica configured, or PGlite). */
export function primaryOnlyReadDatabase(primaryDb: Kysely<Database>): ReadDatabase {
  return {
    db: primaryDb,
    replicated: false,
    // Not counted: without replicas every read is the primary's and the pool is the primary handle's.
    status: () => ({ replicas: [], readingOwnWrites: false, counts: { replica: 0, primary: 0, fallbacks: 0 } }),
    markPrimaryWrite: () => undefined,
    checkNow: async () => undefined,
    onStateChange: () => undefined,
    close: async () => undefined,
  };
}

/** `host:port/database` of a postgres URL, for logs and status. */
export function describeDatabaseUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
}

/** Opens the routing handle and runs the first check before returning, so the first hooks can use the replicas. */
export async function openReadDatabase(options: ReadDatabaseOptions): Promise<ReadDatabase> {
  if (options.replicas.length === 0) return primaryOnlyReadDatabase(options.primaryDb);
  const router = new ReplicaRouter(options);
  const db = new Kysely<Database>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new RoutingDriver(router),
      createIntrospector: (kysely) => new PostgresIntrospector(kysely),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    } satisfies Dialect,
  });
  await router.start();
  return {
    db,
    replicated: true,
    status: () => router.status(),
    markPrimaryWrite: () => router.markPrimaryWrite(),
    checkNow: () => router.check(),
    onStateChange: (listener) => router.listeners.push(listener),
    // Destroying the Kysely instance destroys the routing driver, which stops the monitor and ends the replicas' pools.
    close: () => db.destroy(),
  };
}

/** A WAL position (`16/B374D848`) as a number of bytes. */
export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  if (high === undefined || low === undefined) throw new Error(`not a WAL position: ${text}`);
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

/**
 * Whether a read that failed on a replica is worth repeating on the primary: the replica went away (network
 * errors carry no SQLSTATE; class 08 connection exception; 57P admin shutdown / cannot connect now), or the
 * standby cancelled the query for a recovery conflict (40001). A plain SQL error would fail the same way on
 * the primary and is thrown as it is.
 */
export function replicaFailure(error: unknown): 'gone' | 'conflict' | null {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    if (code === '40001') return 'conflict';
    if (code.startsWith('08') || code.startsWith('57P') || code === '53300') return 'gone';
    return null;
  }
  return 'gone';
}

interface ReplicaEntry {
  readonly name: string;
  readonly pool: pg.Pool;
  readonly driver: PostgresDriver;
  state: ReplicaState;
  lagMs: number | null;
  replayLsn: bigint | null;
  checkedAt: Date | null;
  reason: string | null;
}

interface Target {
  readonly driver: PostgresDriver;
  readonly replica: ReplicaEntry | null;
}

class ReplicaRouter {
  readonly listeners: Array<(status: ReplicaStatus, previous: ReplicaState) => void> = [];
  readonly primary: PostgresDriver;
  private readonly replicas: ReplicaEntry[];
  private readonly maxLagMs: number;
  private readonly checkIntervalMs: number;
  /** The primary's WAL positions, each with when it was first seen; newest last. */
  private samples: Array<{ readonly at: number; readonly lsn: bigint }> = [];
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;
  private next = 0;
  private counts = { replica: 0, primary: 0, fallbacks: 0 };
  /** markPrimaryWrite() calls so far, and how many of them a primary position has been taken after. */
  private writeMarks = 0;
  private resolvedMarks = 0;
  private requiredLsn: bigint | null = null;

  constructor(private readonly options: ReadDatabaseOptions) {
    this.maxLagMs = options.maxLagMs;
    this.checkIntervalMs = options.checkIntervalMs ?? 1000;
    // A driver of our own over the primary's pool; it is never destroyed here (the primary's handle ends the pool).
    this.primary = new PostgresDriver({ pool: options.primaryPool });
    this.replicas = options.replicas.map((replica) => ({
      name: replica.name,
      pool: replica.pool,
      driver: new PostgresDriver({ pool: replica.pool }),
      state: 'starting',
      lagMs: null,
      replayLsn: null,
      checkedAt: null,
      reason: 'not checked yet',
    }));
  }

  async start(): Promise<void> {
    await this.primary.init();
    for (const replica of this.replicas) await replica.driver.init();
    await this.check();
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.checkIntervalMs);
    this.timer.unref();
  }

  status(): ReadDatabaseStatus {
    return {
      replicas: this.replicas.map((replica) => this.describe(replica)),
      readingOwnWrites: this.readingOwnWrites(),
      counts: { ...this.counts },
    };
  }

  markPrimaryWrite(): void {
    this.writeMarks += 1;
  }

  private readingOwnWrites(): boolean {
    if (this.writeMarks > this.resolvedMarks) return true;
    if (this.requiredLsn === null) return false;
    return !this.replicas.some((replica) => replica.state === 'healthy' && replica.replayLsn !== null && replica.replayLsn >= this.requiredLsn!);
  }

  /** One check: the primary's position first (so a replica read after it is never judged against a later one), then each replica. */
  check(): Promise<void> {
    this.checking ??= this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runCheck(): Promise<void> {
    const timeoutMs = Math.max(1000, this.checkIntervalMs);
    const marks = this.writeMarks;
    try {
      const { rows } = await withTimeout(this.options.primaryPool.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn'), timeoutMs);
      const lsn = parseLsn(rows[0]!.lsn);
      const at = Date.now();
      const newest = this.samples.at(-1);
      if (newest === undefined || lsn > newest.lsn) this.samples.push({ at, lsn });
      // Older positions only matter while some replica may still be missing them.
      const horizon = at - 2 * (this.maxLagMs + this.checkIntervalMs);
      while (this.samples.length > 1 && this.samples[0]!.at < horizon && this.samples[1]!.at < horizon) this.samples.shift();
      if (marks > this.resolvedMarks) {
        this.requiredLsn = lsn;
        this.resolvedMarks = marks;
      }
    } catch {
      // The primary is away: judge the replicas against its last known position, they are the best data left.
    }
    await Promise.all(this.replicas.map((replica) => this.checkReplica(replica, timeoutMs)));
  }

  private async checkReplica(replica: ReplicaEntry, timeoutMs: number): Promise<void> {
    try {
      const { rows } = await withTimeout(
        replica.pool.query<{ in_recovery: boolean; replay_lsn: string | null }>(
          'select pg_is_in_recovery() as in_recovery, pg_last_wal_replay_lsn()::text as replay_lsn',
        ),
        timeoutMs,
      );
      const row = rows[0]!;
      replica.checkedAt = new Date();
      if (!row.in_recovery || row.replay_lsn === null) {
        // A promoted replica has its own history from then on: reading it next to the configured primary could mix two pasts.
        replica.replayLsn = null;
        replica.lagMs = null;
        this.setState(replica, 'not-a-standby', 'the server is not in recovery (not a streaming replica)');
        return;
      }
      const replayLsn = parseLsn(row.replay_lsn);
      replica.replayLsn = replayLsn;
      const lagMs = this.lagOf(replayLsn, Date.now());
      replica.lagMs = lagMs;
      if (lagMs !== null && lagMs > this.maxLagMs) this.setState(replica, 'behind', `replay is ${lagMs} ms behind the primary (bound ${this.maxLagMs} ms)`);
      else this.setState(replica, 'healthy', null);
    } catch (error) {
      replica.checkedAt = new Date();
      replica.lagMs = null;
      this.setState(replica, 'unreachable', errorMessage(error));
    }
  }

  /** Age of the oldest primary position the replica has not replayed; 0 when it has them all; null without any. */
  private lagOf(replayLsn: bigint, now: number): number | null {
    const newest = this.samples.at(-1);
    if (newest === undefined) return null;
    if (replayLsn >= newest.lsn) return 0;
    const missing = this.samples.find((sample) => sample.lsn > replayLsn)!;
    return now - missing.at;
  }

  private setState(replica: ReplicaEntry, state: ReplicaState, reason: string | null): void {
    const previous = replica.state;
    replica.state = state;
    replica.reason = reason;
    if (previous !== state) for (const listener of this.listeners) listener(this.describe(replica), previous);
  }

  private describe(replica: ReplicaEntry): ReplicaStatus {
    return { name: replica.name, state: replica.state, lagMs: replica.lagMs, checkedAt: replica.checkedAt, reason: replica.reason };
  }

  /** A replica fit to read from (round-robin among them), or null for the primary. */
  pick(): ReplicaEntry | null {
    if (this.readingOwnWrites()) return null;
    const fit = this.replicas.filter(
      (replica) => replica.state === 'healthy' && (this.requiredLsn === null || (replica.replayLsn !== null && replica.replayLsn >= this.requiredLsn)),
    );
    if (fit.length === 0) return null;
    this.next = (this.next + 1) % fit.length;
    return fit[this.next]!;
  }

  async acquire(): Promise<RoutingConnection> {
    const replica = this.pick();
    if (replica !== null) {
      try {
        return new RoutingConnection(this, { driver: replica.driver, replica }, await replica.driver.acquireConnection());
      } catch (error) {
        this.replicaFailed(replica, error);
      }
    }
    return new RoutingConnection(this, { driver: this.primary, replica: null }, await this.primary.acquireConnection());
  }

  replicaFailed(replica: ReplicaEntry, error: unknown): void {
    this.counts.fallbacks += 1;
    // Out of use at once; the next successful check brings it back.
    if (replicaFailure(error) === 'gone') this.setState(replica, 'unreachable', errorMessage(error));
  }

  count(target: Target): void {
    if (target.replica === null) this.counts.primary += 1;
    else this.counts.replica += 1;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.checking?.catch(() => undefined);
    await Promise.all(this.replicas.map((replica) => replica.driver.destroy()));
  }
}

/** A connection on a replica that moves to the primary when the replica fails outside a transaction. */
class RoutingConnection implements DatabaseConnection {
  private inTransaction = false;

  constructor(
    private readonly router: ReplicaRouter,
    public target: Target,
    public connection: DatabaseConnection,
  ) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.onReplicaOrPrimary(() => this.connection.executeQuery<R>(compiledQuery));
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    this.router.count(this.target);
    yield* this.connection.streamQuery<R>(compiledQuery, chunkSize);
  }

  async begin(settings: TransactionSettings): Promise<void> {
    await this.onReplicaOrPrimary(() => this.target.driver.beginTransaction(this.connection, settings));
    this.inTransaction = true;
  }

  async end(action: 'commit' | 'rollback'): Promise<void> {
    try {
      if (action === 'commit') await this.target.driver.commitTransaction(this.connection);
      else await this.target.driver.rollbackTransaction(this.connection);
    } finally {
      this.inTransaction = false;
    }
  }

  async savepoint(kind: 'savepoint' | 'rollbackToSavepoint' | 'releaseSavepoint', name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.target.driver[kind](this.connection, name, compile);
  }

  release(): Promise<void> {
    return this.target.driver.releaseConnection(this.connection as never);
  }

  /** Runs on the current target; a replica's failure outside a transaction is repeated once on the primary. */
  private async onReplicaOrPrimary<T>(work: () => Promise<T>): Promise<T> {
    this.router.count(this.target);
    const replica = this.target.replica;
    if (replica === null || this.inTransaction) return work();
    try {
      return await work();
    } catch (error) {
      if (replicaFailure(error) === null) throw error;
      this.router.replicaFailed(replica, error);
      await this.target.driver.releaseConnection(this.connection as never);
      this.target = { driver: this.router.primary, replica: null };
      this.connection = await this.router.primary.acquireConnection();
      this.router.count(this.target);
      return work();
    }
  }
}

class RoutingDriver implements Driver {
  constructor(private readonly router: ReplicaRouter) {}

  async init(): Promise<void> {}

  acquireConnection(): Promise<DatabaseConnection> {
    return this.router.acquire();
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return (connection as RoutingConnection).begin(settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return (connection as RoutingConnection).end('commit');
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return (connection as RoutingConnection).end('rollback');
  }

  savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return (connection as RoutingConnection).savepoint('savepoint', name, compile);
  }

  rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return (connection as RoutingConnection).savepoint('rollbackToSavepoint', name, compile);
  }

  releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    return (connection as RoutingConnection).savepoint('releaseSavepoint', name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return (connection as RoutingConnection).release();
  }

  destroy(): Promise<void> {
    return this.router.close();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
