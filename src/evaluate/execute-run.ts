/**
 * Carries out a stored backtest run: queued → running (progress written as it goes) → succeeded with its
 * result, or failed with a message. The admin API starts it in the background; the CLI awaits it.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import {
  failEvaluationRun,
  findEvaluationRun,
  finishEvaluationRun,
  markRunning,
  updateProgress,
  type EvaluationRun,
} from '../db/evaluation-run.repository.js';
import { findVersionedRules } from '../db/rule-set.repository.js';
import { runEvaluation } from './evaluation.js';
import type { EvaluationProgress } from './result.js';

export interface ExecuteEvaluationRunOptions {
  /** Least time between two progress writes (default 1000 ms); a new phase is always written. */
  readonly progressIntervalMs?: number;
  /** Sees every progress report, unthrottled (the CLI prints from it). */
  readonly onProgress?: (progress: EvaluationProgress) => void;
  readonly now?: () => number;
}

export class EvaluationRunNotFoundError extends Error {
  override name = 'EvaluationRunNotFoundError';
}

/**
 * Runs a queued run to the end and returns it as stored. A run that is not queued (another worker has it, or
 * it is finished) is returned as it is, untouched. Failures of the backtest itself are recorded on the run,
 * not thrown; the promise rejects only when the run does not exist or the database cannot be reached to
 * record the outcome, so a caller that does not await it should still attach a `catch` that logs.
 */
export async function executeEvaluationRun(
  db: Kysely<Database>,
  runId: string,
  options: ExecuteEvaluationRunOptions = {},
): Promise<EvaluationRun> {
  const run = await findEvaluationRun(db, runId);
  if (!run) throw new EvaluationRunNotFoundError(`There is no evaluation run ${runId}`);
  if (!(await markRunning(db, runId))) return (await findEvaluationRun(db, runId)) ?? run;

  const now = options.now ?? Date.now;
  const interval = options.progressIntervalMs ?? 1000;
  let lastWritten = Number.NEGATIVE_INFINITY;
  let lastPhase: EvaluationProgress['phase'] | undefined;
  // Writes one after the other, so that an older progress never lands after a newer one.
  let writes: Promise<void> = Promise.resolve();
  const onProgress = (progress: EvaluationProgress) => {
    options.onProgress?.(progress);
    const at = now();
    if (progress.phase === lastPhase && at - lastWritten < interval) return;
    lastPhase = progress.phase;
    lastWritten = at;
    // Progress is advisory: a failed write must not fail the run (the final write reports a real outage).
    writes = writes.then(() => updateProgress(db, runId, progress)).catch(() => undefined);
  };

  try {
    const versionedRules = await findVersionedRules(db, run.rulesVersion);
    if (!versionedRules) throw new Error(`Rules version ${run.rulesVersion} does not exist`);
    const result = await runEvaluation(db, versionedRules, run.options, onProgress);
    await writes;
    await finishEvaluationRun(db, runId, result);
  } catch (error) {
    await writes;
    await failEvaluationRun(db, runId, error instanceof Error ? error.message : String(error));
  }
  return (await findEvaluationRun(db, runId))!;
}
