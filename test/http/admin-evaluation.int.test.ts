import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApp } from '../../src/app.js';
import { buildConfig } from '../../src/config.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { createEvaluationRun, findEvaluationRun } from '../../src/db/evaluation-run.repository.js';
import { evaluationOptionsSchema, evaluationResultSchema } from '../../src/evaluate/result.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

describe('admin API: backtests in the background', () => {
  let testApp: TestApp;
  let informaticist: string;
  let viewer: string;
  const as = (key: string) => ({ authorization: `Bearer ${key}` });

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
    informaticist = (await createApiKey(testApp.database.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    viewer = (await createApiKey(testApp.database.db, { name: 'vic', role: 'viewer', createdBy: 'test' })).key;
  });
  afterAll(async () => {
    await testApp.close();
  });

  async function waitForRun(id: string): Promise<Record<string, any>> {
    for (let attempt = 0; attempt < 600; attempt += 1) {
      const response = await testApp.app.inject({ method: 'GET', url: `/admin/evaluations/${id}`, headers: as(viewer) });
      const run = response.json();
      if (run.status === 'succeeded' || run.status === 'failed') return run;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`backtest ${id} did not finish`);
  }

  it('runs a backtest of a rules version, reports progress, stores the result with the version', async () => {
    const { app } = testApp;
    const active = (await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewer) })).json().active as number;
    const started = await app.inject({
      method: 'POST',
      url: `/admin/rules/${active}/evaluate`,
      headers: as(informaticist),
      payload: { split: 'patient', holdout: 0.2, seed: 7, bootstrapResamples: 200 },
    });
    expect(started.statusCode).toBe(202);
    const run = started.json();
    expect(run).toMatchObject({ rulesVersion: active, status: 'queued', requestedBy: 'ada' });
    expect(started.headers.location).toBe(`/admin/evaluations/${run.id}`);

    // Hooks keep being answered while it runs.
    const health = await app.inject({ method: 'GET', url: '/health/live' });
    expect(health.statusCode).toBe(200);

    const finished = await waitForRun(run.id);
    expect(finished.error).toBeNull();
    expect(finished.status).toBe('succeeded');
    const result = evaluationResultSchema.parse(finished.result);
    expect(result.rulesVersion).toBe(active);
    expect(result.methods.map((method) => method.id)).toEqual(['rules', 'rules-reputation-weighted', 'overall-baseline', 'complaint-baseline']);
    expect(result.split.heldOutEncounters).toBeGreaterThan(0);
    expect(finished.progress.phase).toBe('done');

    const listed = await app.inject({ method: 'GET', url: `/admin/evaluations?rulesVersion=${active}`, headers: as(viewer) });
    expect(listed.json().runs.map((entry: { id: string }) => entry.id)).toContain(run.id);
    const audit = (await app.inject({ method: 'GET', url: '/admin/audit?action=rules.evaluate', headers: as(viewer) })).json().events;
    expect(audit[0]).toMatchObject({ actor: 'ada', target: `rules/${active}` });
  });

  it('refuses a viewer, an unknown version and bad options', async () => {
    const { app } = testApp;
    expect((await app.inject({ method: 'POST', url: '/admin/rules/1/evaluate', headers: as(viewer), payload: {} })).statusCode).toBe(403);
    expect((await app.inject({ method: 'POST', url: '/admin/rules/999/evaluate', headers: as(informaticist), payload: {} })).statusCode).toBe(404);
    const bad = await app.inject({ method: 'POST', url: '/admin/rules/1/evaluate', headers: as(informaticist), payload: { holdout: 1.5, split: 'random' } });
    expect(bad.statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/admin/evaluations/abc', headers: as(viewer) })).statusCode).toBe(404);
  });

  it('fails a backtest whose process died, and takes up one still queued, when an instance starts', async () => {
    const db = testApp.database.db;
    const options = evaluationOptionsSchema.parse({ bootstrapResamples: 50 });
    const orphan = await createEvaluationRun(db, { rulesVersion: 1, options, requestedBy: 'test' });
    await db
      .updateTable('evaluation_run')
      .set({ status: 'running', started_at: new Date(Date.now() - 3600_000), heartbeat_at: new Date(Date.now() - 600_000) })
      .where('evaluation_run_id', '=', orphan.id)
      .execute();
    const alive = await createEvaluationRun(db, { rulesVersion: 1, options, requestedBy: 'test' });
    await db.updateTable('evaluation_run').set({ status: 'running', started_at: new Date(), heartbeat_at: new Date() }).where('evaluation_run_id', '=', alive.id).execute();
    const waiting = await createEvaluationRun(db, { rulesVersion: 1, options, requestedBy: 'test' });

    // A second instance over the same database (as behind a load balancer).
    const second = await buildApp(buildConfig({ loadDemoCohort: false }), { database: testApp.database });
    try {
      await second.ready();
      const stored = await findEvaluationRun(db, orphan.id);
      expect(stored?.status).toBe('failed');
      expect(stored?.error).toMatch(/stopped before it finished/);
      expect((await findEvaluationRun(db, alive.id))?.status).toBe('running');
      let picked = await findEvaluationRun(db, waiting.id);
      for (let attempt = 0; attempt < 200 && picked?.status !== 'succeeded' && picked?.status !== 'failed'; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        picked = await findEvaluationRun(db, waiting.id);
      }
      expect(picked?.status).toBe('succeeded');
    } finally {
      await second.close();
    }
  });
});
