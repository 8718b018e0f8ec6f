import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { recordAuditEvent } from '../db/audit.repository.js';
import type { Database } from '../db/database.js';
import {
  beatEvaluationRun,
  createEvaluationRun,
  failAbandonedEvaluationRuns,
  findEvaluationRun,
  listEvaluationRuns,
  listQueuedEvaluationRunIds,
  type EvaluationRun,
} from '../db/evaluation-run.repository.js';
import { findRuleSet } from '../db/rule-set.repository.js';
import { AppError } from '../errors.js';
import { executeEvaluationRun } from '../evaluate/execute-run.js';
import { evaluationOptionsSchema } from '../evaluate/result.js';

/** A running backtest beats its heartbeat this often; one silent for `abandonedAfterSeconds` lost its process. */
const heartbeatMs = 10_000;
const abandonedAfterSeconds = 120;

/**
 * Backtests run in this process, one at a time, in the order asked (they are CPU-bound and yield to the
 * event loop between encounters, so hooks keep being answered). Bounded: at most `maxQueued` waiting. With
 * several instances on one database each run is claimed by exactly one (markRunning is atomic).
 */
export class EvaluationQueue {
  private readonly waiting: string[] = [];
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly onError: (error: unknown, runId: string) => void,
    readonly maxQueued = 20,
  ) {}

  get length(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  enqueue(runId: string): void {
    this.waiting.push(runId);
    this.pump();
  }

  /** Waits for the run in progress (its outcome is recorded); runs still waiting stay queued in the table. */
  async close(): Promise<void> {
    this.closed = true;
    this.waiting.length = 0;
    await this.running;
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const next = this.waiting.shift();
    if (next === undefined) return;
    const heartbeat = setInterval(() => void beatEvaluationRun(this.db, next).catch(() => undefined), heartbeatMs);
    heartbeat.unref();
    this.running = executeEvaluationRun(this.db, next)
      .then(() => undefined)
      .catch((error: unknown) => this.onError(error, next))
      .finally(() => {
        clearInterval(heartbeat);
        this.running = undefined;
        this.pump();
      });
  }
}

function toJson(run: EvaluationRun, withResult: boolean) {
  return {
    id: run.id,
    rulesVersion: run.rulesVersion,
    status: run.status,
    options: run.options,
    progress: run.progress,
    ...(withResult ? { result: run.result } : {}),
    error: run.error,
    requestedBy: run.requestedBy,
    createdAt: run.createdAt.toISOString(),
    startedAt: run.startedAt?.toISOString() ?? null,
    finishedAt: run.finishedAt?.toISOString() ?? null,
    // Figures that may count patients who opted out after the run started (docs/privacy.md): run it again.
    computedBeforeOptOuts: run.computedBeforeOptOuts && { optOuts: run.computedBeforeOptOuts.optOuts, firstAt: run.computedBeforeOptOuts.firstAt.toISOString() },
  };
}

/**
 * `POST /admin/rules/:version/evaluate` starts a backtest in the background (202 with the run); its progress
 * and result are polled at `GET /admin/evaluations/:id`. Runs are stored with the rules version, so versions
 * can be compared side by side.
 */
export const adminEvaluationRoutes: FastifyPluginAsyncZod = async (app) => {
  const db = app.database.db;
  const queue = new EvaluationQueue(db, (error, runId) => app.log.error({ err: error, evaluationRun: runId }, 'backtest could not be recorded'));
  app.addHook('onClose', async () => queue.close());

  // At start: a run whose process died (no heartbeat) is failed with the reason; queued runs are taken up.
  const recover = async () => {
    await failAbandonedEvaluationRuns(db, abandonedAfterSeconds, 'interrupted: the process running this backtest stopped before it finished; start it again');
    for (const id of await listQueuedEvaluationRunIds(db)) queue.enqueue(id);
  };
  app.addHook('onReady', async () => {
    await recover().catch((error: unknown) => app.log.warn({ err: error }, 'could not look for unfinished backtests'));
  });

  app.post(
    '/admin/rules/:version/evaluate',
    {
      onRequest: app.requireRole('informaticist'),
      schema: { params: z.object({ version: z.coerce.number().int().min(1).max(2_147_483_647) }), body: evaluationOptionsSchema.strict().optional() },
    },
    async (request, reply) => {
      const version = request.params.version;
      if (!(await findRuleSet(db, version))) throw new AppError(404, 'not-found', `There is no rules version ${version}`);
      if (queue.length > queue.maxQueued) throw new AppError(429, 'too-many-backtests', `${queue.length} backtests are waiting; try again when they are done`);
      const actor = request.adminIdentity?.name ?? 'unknown';
      const options = request.body ?? evaluationOptionsSchema.parse({});
      const run = await db.transaction().execute(async (trx) => {
        const created = await createEvaluationRun(trx, { rulesVersion: version, options, requestedBy: actor });
        await recordAuditEvent(trx, { actor, action: 'rules.evaluate', target: `rules/${version}`, details: { run: created.id, options } });
        return created;
      });
      queue.enqueue(run.id);
      return reply.code(202).header('location', `/admin/evaluations/${run.id}`).send(toJson(run, false));
    },
  );

  app.get(
    '/admin/evaluations/:id',
    { onRequest: app.requireRole('viewer'), schema: { params: z.object({ id: z.string().max(20) }) } },
    async (request) => {
      const run = await findEvaluationRun(db, request.params.id);
      if (!run) throw new AppError(404, 'not-found', `There is no backtest ${request.params.id}`);
      return toJson(run, true);
    },
  );

  app.get(
    '/admin/evaluations',
    {
      onRequest: app.requireRole('viewer'),
      schema: { querystring: z.object({ rulesVersion: z.coerce.number().int().min(1).optional(), limit: z.coerce.number().int().min(1).max(500).default(50) }) },
    },
    async (request) => ({ runs: (await listEvaluationRuns(db, request.query.rulesVersion, request.query.limit)).map((run) => toJson(run, false)) }),
  );
};
