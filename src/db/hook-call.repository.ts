import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

/** One hook call as the audit table keeps it: no patient, no request, only what the call did. */
export interface HookCallRecord {
  readonly at: Date;
  readonly serviceId: string;
  readonly hook: string;
  readonly rulesVersion: number;
  readonly cohortSize: number | null;
  readonly relaxation: readonly string[];
  readonly cards: number;
  readonly latencyMs: number;
}

/**
 * Writes hook calls to `hook_call` in batches, off the hook's path: a call is queued and written within
 * `flushIntervalMs` (or sooner when `maxBatch` are waiting). `close()` writes what is left. While the
 * database is away the queue keeps at most `maxQueued` calls and counts the ones it had to drop.
 */
export class HookCallLog {
  private queue: HookCallRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: {
      readonly flushIntervalMs?: number;
      readonly maxBatch?: number;
      readonly maxQueued?: number;
      readonly onError?: (error: unknown) => void;
    } = {},
  ) {}

  record(call: HookCallRecord): void {
    if (this.queue.length >= (this.options.maxQueued ?? 10000)) {
      this.dropped += 1;
      return;
    }
    this.queue.push(call);
    if (this.queue.length >= (this.options.maxBatch ?? 200)) {
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => void this.flush(), this.options.flushIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Writes every queued call; resolves when they are stored (or the write failed and was reported). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.flushing = insertHookCalls(this.db, batch).catch((error: unknown) => {
      // Put them back (bounded) so a short outage loses nothing, and try again later.
      this.queue = [...batch, ...this.queue].slice(0, this.options.maxQueued ?? 10000);
      this.options.onError?.(error);
      this.timer ??= setTimeout(() => void this.flush(), 5000);
      this.timer.unref();
    });
    await this.flushing;
    this.flushing = undefined;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export async function insertHookCalls(db: Kysely<Database>, calls: readonly HookCallRecord[]): Promise<void> {
  if (calls.length === 0) return;
  await db
    .insertInto('hook_call')
    .values(
      calls.map((call) => ({
        at: call.at,
        service_id: call.serviceId,
        hook: call.hook,
        rules_version: call.rulesVersion,
        cohort_size: call.cohortSize,
        relaxation: [...call.relaxation],
        cards: call.cards,
        latency_ms: call.latencyMs,
      })),
    )
    .execute();
}

export interface HookCallSummary {
  readonly serviceId: string;
  readonly rulesVersion: number;
  readonly calls: number;
  readonly withCards: number;
  readonly relaxed: number;
  readonly medianLatencyMs: number | null;
  readonly p95LatencyMs: number | null;
}

/** Calls per service and rules version since `since`, for the console. */
export async function summarizeHookCalls(db: Kysely<Database>, since: Date): Promise<HookCallSummary[]> {
  const result = await sql<{
    service_id: string;
    rules_version: number;
    calls: string;
    with_cards: string;
    relaxed: string;
    median_ms: number | null;
    p95_ms: number | null;
  }>`
    select service_id, rules_version, count(*) as calls,
           count(*) filter (where cards > 0) as with_cards,
           count(*) filter (where cardinality(relaxation) > 0) as relaxed,
           percentile_cont(0.5) within group (order by latency_ms) as median_ms,
           percentile_cont(0.95) within group (order by latency_ms) as p95_ms
    from hook_call
    where at >= ${since}
    group by service_id, rules_version
    order by service_id, rules_version desc`.execute(db);
  return result.rows.map((row) => ({
    serviceId: row.service_id,
    rulesVersion: row.rules_version,
    calls: Number(row.calls),
    withCards: Number(row.with_cards),
    relaxed: Number(row.relaxed),
    medianLatencyMs: row.median_ms === null ? null : Number(row.median_ms),
    p95LatencyMs: row.p95_ms === null ? null : Number(row.p95_ms),
  }));
}
