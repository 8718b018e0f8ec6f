import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { EvaluationOptions, EvaluationProgress, EvaluationResult } from '../evaluate/result.js';
import type { Database, EvaluationRunTable, EvaluationStatus } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** A backtest run as stored: queued → running → succeeded | failed. */
export interface EvaluationRun {
  readonly id: string;
  readonly rulesVersion: number;
  readonly status: EvaluationStatus;
  readonly options: EvaluationOptions;
  readonly progress: EvaluationProgress;
  /** Set once succeeded (shape: `evaluationResultSchema` in evaluate/result.ts). */
  readonly result: EvaluationResult | null;
  /** Set once failed: a message for the person who asked. */
  readonly error: string | null;
  /** The API key's name, or `cli`. */
  readonly requestedBy: string;
  readonly createdAt: Date;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  /**
   * Opt-outs that removed encounters after the run started, so that its figures may count patients who have since
   * opted out (docs/privacy.md), and when the first of them came; null when none did.
   */
  readonly computedBeforeOptOuts: { readonly optOuts: number; readonly firstAt: Date } | null;
}

const queuedProgress: EvaluationProgress = { phase: 'queued', done: 0, total: 0 };

function toRun(row: Selectable<EvaluationRunTable>): EvaluationRun {
  return {
    id: String(row.evaluation_run_id),
    rulesVersion: row.rules_version,
    status: row.status,
    // Written by this module from the zod-parsed objects of evaluate/result.ts.
    options: row.options as unknown as EvaluationOptions,
    progress: (Object.keys(row.progress).length === 0 ? queuedProgress : row.progress) as unknown as EvaluationProgress,
    result: row.result as unknown as EvaluationResult | null,
    error: row.error,
    requestedBy: row.requested_by,
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? null : new Date(row.started_at),
    finishedAt: row.finished_at === null ? null : new Date(row.finished_at),
    computedBeforeOptOuts:
      row.opt_outs_after_start > 0 && row.first_opt_out_after_start_at !== null
        ? { optOuts: row.opt_outs_after_start, firstAt: new Date(row.first_opt_out_after_start_at) }
        : null,
  };
}

/** Records a run to do; `executeEvaluationRun` (evaluate/) carries it out. */
export async function createEvaluationRun(
  db: Executor,
  input: { readonly rulesVersion: number; readonly options: EvaluationOptions; readonly requestedBy: string },
): Promise<EvaluationRun> {
  const row = await db
    .insertInto('evaluation_run')
    .values({
      rules_version: input.rulesVersion,
      status: 'queued',
      options: JSON.stringify(input.options),
      progress: JSON.stringify(queuedProgress),
      requested_by: input.requestedBy,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRun(row);
}

/**
 * Claims a queued run: it becomes running with its start time. False when it was not queued (already taken by
 * another worker, finished, or unknown), so the same run is never carried out twice.
 */
export async function markRunning(db: Executor, runId: string): Promise<boolean> {
  const result = await db
    .updateTable('evaluation_run')
    .set({ status: 'running', started_at: sql<Date>`now()`, heartbeat_at: sql<Date>`now()` })
    .where('evaluation_run_id', '=', runId)
    .where('status', '=', 'queued')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Stores how far a running run has got. */
export async function updateProgress(db: Executor, runId: string, progress: EvaluationProgress): Promise<void> {
  await db
    .updateTable('evaluation_run')
    .set({ progress: JSON.stringify(progress) })
    .where('evaluation_run_id', '=', runId)
    .where('status', '=', 'running')
    .execute();
}

/** Stores the result of a running run and marks it succeeded. */
export async function finishEvaluationRun(db: Executor, runId: string, result: EvaluationResult): Promise<void> {
  const done: EvaluationProgress = { phase: 'done', done: result.split.heldOutEncounters, total: result.split.heldOutEncounters };
  await db
    .updateTable('evaluation_run')
    .set({ status: 'succeeded', result: JSON.stringify(result), progress: JSON.stringify(done), error: null, finished_at: sql<Date>`now()` })
    .where('evaluation_run_id', '=', runId)
    .where('status', '=', 'running')
    .execute();
}

/** Marks a queued or running run failed, with a message for the person who asked. */
export async function failEvaluationRun(db: Executor, runId: string, error: string): Promise<void> {
  await db
    .updateTable('evaluation_run')
    .set({ status: 'failed', error: error.slice(0, 2000), finished_at: sql<Date>`now()` })
    .where('evaluation_run_id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .execute();
}

/** One run, or undefined for an unknown id. */
export async function findEvaluationRun(db: Executor, runId: string): Promise<EvaluationRun | undefined> {
  // bigserial ids: anything that is not a whole number is no run (and must not reach the cast in SQL).
  if (!/^\d{1,18}$/.test(runId)) return undefined;
  const row = await db.selectFrom('evaluation_run').selectAll().where('evaluation_run_id', '=', runId).executeTakeFirst();
  return row ? toRun(row) : undefined;
}

/** Runs newest first, of one rules version when given, at most `limit` of them. */
export async function listEvaluationRuns(db: Executor, rulesVersion?: number, limit = 100): Promise<EvaluationRun[]> {
  let query = db.selectFrom('evaluation_run').selectAll().orderBy('evaluation_run_id', 'desc').limit(limit);
  if (rulesVersion !== undefined) query = query.where('rules_version', '=', rulesVersion);
  const rows = await query.execute();
  return rows.map(toRun);
}

/** Marks a running run as alive (its process beats this while it works). */
export async function beatEvaluationRun(db: Executor, runId: string): Promise<void> {
  await db.updateTable('evaluation_run').set({ heartbeat_at: sql<Date>`now()` }).where('evaluation_run_id', '=', runId).where('status', '=', 'running').execute();
}

/**
 * Fails the runs whose process died: running, with no heartbeat (nor start) within `staleSeconds`. Returns
 * how many. Safe with several instances: a live run keeps beating.
 */
export async function failAbandonedEvaluationRuns(db: Executor, staleSeconds: number, message: string): Promise<number> {
  const result = await db
    .updateTable('evaluation_run')
    .set({ status: 'failed', error: message, finished_at: sql<Date>`now()` })
    .where('status', '=', 'running')
    .where(sql<boolean>`coalesce(heartbeat_at, started_at, created_at) < now() - make_interval(secs => ${staleSeconds})`)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Ids of the runs waiting for a worker, oldest first. */
export async function listQueuedEvaluationRunIds(db: Executor, limit = 100): Promise<string[]> {
  const rows = await db.selectFrom('evaluation_run').select('evaluation_run_id').where('status', '=', 'queued').orderBy('evaluation_run_id').limit(limit).execute();
  return rows.map((row) => String(row.evaluation_run_id));
}

/**
 * After an opt-out removed encounters (and its transaction committed): every run that had started by then may have
 * read them, so it is marked (docs/privacy.md). A run that starts later reads the cohort without them. Returns how
 * many runs were marked.
 */
export async function markRunsStartedBeforeOptOut(db: Executor): Promise<number> {
  const result = await db
    .updateTable('evaluation_run')
    .set((eb) => ({
      opt_outs_after_start: eb('opt_outs_after_start', '+', 1),
      first_opt_out_after_start_at: sql<Date>`coalesce(first_opt_out_after_start_at, now())`,
    }))
    .where('started_at', 'is not', null)
    .where('status', 'in', ['running', 'succeeded'])
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
