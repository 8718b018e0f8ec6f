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
    database = await openDatabase({ databaseUrl: viaProxy.toString(), dataDirectory: 'memory', poolSize: 4 });
    const config = buildConfig({ loadDemoCohort: false, rateLimitPerMinute: 0 });
    await prepareDatabase(database.db, config, () => undefined);
    await ingestPaths(database.db, [mimicDemoDirectory], { hasher: createKeyHasher('outage-secret-outage-secret-outage-0123') });
    app = await buildApp(config, { database });
    await app.ready();
  });

  afterAll(async () => {
    await app.close();
    await database.close();
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
    const during = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request('patient-view', 61) });
    expect(during.statusCode).toBe(503);
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
});
