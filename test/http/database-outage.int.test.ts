import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { buildConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { prepareDatabase } from '../../src/db/prepare-database.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * A networked database can go away; the embedded one cannot. So this suite always runs against a real
 * PostgreSQL server — DATABASE_URL, else the machine's own on 127.0.0.1:5432 — through a proxy it cuts.
 */
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Short, so that a database that stops answering is noticed well within the bounds below. */
const queryTimeoutMs = 1000;
/** Longer than any answer the service gives while the database refuses; far shorter than a hang. */
const outageAnswerBoundMs = 3000;
/**
 * While it is silent a request may wait out the pool's connection timeout (2 s, src/db/connection.ts) for a
 * connection, then the query timeout on it: bounded, where without the query timeout it would wait forever.
 */
const silentAnswerBoundMs = 2000 + queryTimeoutMs + 1500;

function request(hook: 'patient-view', age: number) {
  return prefetchedRequest(hook, { patient: { gender: 'female', birthDate: `${2026 - age}-01-01` }, chiefComplaint: 'abd pain', hookInstance: randomUUID() });
}

describe('the database going away and coming back', () => {
  const name = `cohort_outage_${randomBytes(5).toString('hex')}`;
  const target = new URL(serverUrl);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  let database: DatabaseHandle;
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    await proxy.start();
    const viaProxy = new URL(serverUrl);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    viaProxy.pathname = `/${name}`;
    const config = buildConfig({ loadDemoCohort: false, rateLimitPerMinute: 0 });
    // Set up as the server does: migrations and the ingest on a pool without the query timeout, which is for hooks.
    const direct = new URL(viaProxy);
    direct.host = target.host;
    const setup = await openDatabase({ databaseUrl: direct.toString(), dataDirectory: 'memory', poolSize: 2 });
    try {
      await prepareDatabase(setup.db, config, () => undefined);
      await ingestPaths(setup.db, [mimicDemoDirectory], { hasher: createKeyHasher('outage-secret-outage-secret-outage-0123') });
    } finally {
      await setup.close();
    }
    database = await openDatabase({ databaseUrl: viaProxy.toString(), dataDirectory: 'memory', poolSize: 4, queryTimeoutMs });
    app = await buildApp(config, { database });
    await app.ready();
  });

  afterAll(async () => {
    await app?.close();
    await database?.close();
    await proxy.cut();
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });

  it('answers 503 with a reason while it is away, refuses feedback, and recovers without a restart', async () => {
    const before = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 60) });
    expect(before.statusCode).toBe(200);
    const card = before.json().cards[0];
    expect(card).toBeDefined();

    await proxy.cut();
    const started = Date.now();
    const during = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 61) });
    expect(during.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(outageAnswerBoundMs);
    expect(during.json()).toMatchObject({ error: 'database-unavailable' });
    expect(during.headers['retry-after']).toBeDefined();
    const feedback = await app.inject({
      method: 'POST',
      url: '/cds-services/patient-view/feedback',
      payload: { feedback: [{ card: card.uuid, outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:00:00Z' }] },
    });
    expect(feedback.statusCode).toBe(503);
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);

    await proxy.start();
    const after = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 62) });
    expect(after.statusCode).toBe(200);
    expect(after.json().cards.length).toBeGreaterThan(0);
    const stored = await app.inject({
      method: 'POST',
      url: '/cds-services/patient-view/feedback',
      payload: { feedback: [{ card: card.uuid, outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:00:00Z' }] },
    });
    expect(stored.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });

  /**
   * Brings the database back. Not in the same instant it went: the pool learns that its connections were dropped
   * on the next turns of the event loop, as it would during any real restart.
   */
  async function restoreAfterOutage(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 100));
    await proxy.start();
  }

  /** Posts an override of `card` and records its status and how long the answer took. */
  async function timedFeedback(card: string): Promise<{ status: number; error: unknown; elapsedMs: number }> {
    const started = Date.now();
    const response = await app.inject({
      method: 'POST',
      url: '/cds-services/patient-view/feedback',
      payload: { feedback: [{ card, outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:00:00Z' }] },
    });
    return { status: response.statusCode, error: response.json().error, elapsedMs: Date.now() - started };
  }

  /** Posts a hook and records its status and how long the answer took. */
  async function timedHook(age: number): Promise<{ status: number; error: unknown; elapsedMs: number }> {
    const started = Date.now();
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', age) });
    const body = response.json();
    return { status: response.statusCode, error: body.error, elapsedMs: Date.now() - started };
  }

  it('answers every hook in flight when the connection is cut with 200 or 503, never 500, and none hangs', async () => {
    const issued = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 60) });
    expect(issued.statusCode).toBe(200);
    const card = issued.json().cards[0];
    const cut = proxy.cutAtNextQuery();
    // Distinct ages: each hook misses the cohort cache. The feedback always queries, so the cut comes while they are all
    // in flight, at the first query any of them sends.
    const hooks = Array.from({ length: 6 }, (_, index) => timedHook(30 + index));
    const feedback = Array.from({ length: 2 }, () => timedFeedback(card.uuid));
    const [hookAnswers, feedbackAnswers] = await Promise.all([Promise.all(hooks), Promise.all(feedback)]);
    await cut;
    for (const answer of hookAnswers) {
      expect([200, 503]).toContain(answer.status);
      if (answer.status === 503) expect(answer.error).toBe('database-unavailable');
      expect(answer.elapsedMs).toBeLessThan(outageAnswerBoundMs);
    }
    // Feedback can never be answered from memory: its query was the one cut, or came after the cut.
    for (const answer of feedbackAnswers) {
      expect(answer).toMatchObject({ status: 503, error: 'database-unavailable' });
      expect(answer.elapsedMs).toBeLessThan(outageAnswerBoundMs);
    }

    await restoreAfterOutage();
    expect(await timedHook(45)).toMatchObject({ status: 200 });
    expect(await timedFeedback(card.uuid)).toMatchObject({ status: 200 });
  });

  it('answers quickly, never hangs, when the database stops answering without refusing, and recovers', async () => {
    const before = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 60) });
    expect(before.statusCode).toBe(200);
    const card = before.json().cards[0];

    proxy.blackHole();
    // Pooled connections now send into silence, and new ones are accepted but never greeted: only the query timeout
    // (and the pool's connection timeout) end the wait.
    const [hookAnswers, feedbackAnswers] = await Promise.all([
      Promise.all([51, 52, 53].map((age) => timedHook(age))),
      Promise.all([timedFeedback(card.uuid), timedFeedback(card.uuid)]),
    ]);
    for (const answer of hookAnswers) {
      // 200 only if the hook needed nothing from the database; either way, quickly.
      expect([200, 503]).toContain(answer.status);
      if (answer.status === 503) expect(answer.error).toBe('database-unavailable');
      expect(answer.elapsedMs).toBeLessThan(silentAnswerBoundMs);
    }
    for (const answer of feedbackAnswers) {
      expect(answer).toMatchObject({ status: 503, error: 'database-unavailable' });
      expect(answer.elapsedMs).toBeLessThan(silentAnswerBoundMs);
    }
    const started = Date.now();
    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(Date.now() - started).toBeLessThan(silentAnswerBoundMs);

    await proxy.cut();
    await restoreAfterOutage();
    expect(await timedHook(54)).toMatchObject({ status: 200 });
    expect(await timedFeedback(card.uuid)).toMatchObject({ status: 200 });
  });
});
