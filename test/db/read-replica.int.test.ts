import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chown, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../../src/app.js';
import { buildConfig, ConfigError, loadConfig } from '../../src/config.js';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { parseLsn, replicaFailure, type ReplicaState } from '../../src/db/read-replica.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { activateRuleSet, createDraftRuleSet, findVersionedRules, seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { forcedActivation } from '../helpers/rules.js';

type Json = Record<string, any>;
const run = promisify(execFile);

/**
 * A primary and a hot standby (initdb, pg_basebackup -R) on loopback, in a temporary directory, on free ports;
 * the service reads its hooks from the standby. Needs the PostgreSQL server binaries: PG_BIN, else the newest
 * /usr/lib/postgresql/N/bin, else `pg_config --bindir`. Without them the suite fails (it never skips).
 */
function findPostgresBinaries(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  if (existsSync('/usr/lib/postgresql')) {
    const versions = execFileSync('ls', ['/usr/lib/postgresql']).toString().split('\n').filter((name) => /^\d+$/.test(name));
    for (const version of versions.sort((a, b) => Number(b) - Number(a))) candidates.push(`/usr/lib/postgresql/${version}/bin`);
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir']).toString().trim());
  } catch {
    // no pg_config on PATH
  }
  const found = candidates.find((directory) => ['initdb', 'pg_ctl', 'pg_basebackup'].every((tool) => existsSync(path.join(directory, tool))));
  if (!found) {
    throw new Error(
      'read-replica.int.test.ts needs the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) to start a primary and a hot standby: ' +
        `none found in ${candidates.join(', ') || '/usr/lib/postgresql/*/bin'}. Install the postgresql server package or set PG_BIN.`,
    );
  }
  return found;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

class Cluster {
  readonly primaryPort: number;
  readonly standbyPort: number;
  private readonly asPostgres: boolean;

  constructor(
    readonly bin: string,
    readonly base: string,
    ports: readonly [number, number],
  ) {
    [this.primaryPort, this.standbyPort] = ports;
    // initdb and postgres refuse to run as root: run them as the postgres user then.
    this.asPostgres = process.getuid?.() === 0;
  }

  get primaryDirectory(): string {
    return path.join(this.base, 'primary');
  }

  get standbyDirectory(): string {
    return path.join(this.base, 'standby');
  }

  url(port: number, database = 'cohort'): string {
    return `postgres://postgres@127.0.0.1:${port}/${database}`;
  }

  async tool(name: string, args: readonly string[]): Promise<string> {
    const file = path.join(this.bin, name);
    const { stdout } = this.asPostgres ? await run('runuser', ['-u', 'postgres', '--', file, ...args]) : await run(file, [...args]);
    return stdout;
  }

  async start(directory: string, port: number): Promise<void> {
    await this.tool('pg_ctl', ['-D', directory, '-l', `${directory}.log`, '-o', `-p ${port} -k ${this.base}`, '-w', '-t', '60', 'start']);
  }

  async initPrimary(): Promise<void> {
    await this.tool('initdb', ['-D', this.primaryDirectory, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    // Loopback only; no fsync (a test cluster); replication is on by default in 15 (wal_level replica, max_wal_senders 10).
    await appendFile(
      path.join(this.primaryDirectory, 'postgresql.conf'),
      "\nlisten_addresses = '127.0.0.1'\nfsync = off\nfull_page_writes = off\nwal_level = replica\nmax_wal_senders = 5\nshared_buffers = 32MB\n",
    );
    await this.start(this.primaryDirectory, this.primaryPort);
  }

  async cloneStandby(): Promise<void> {
    // -R writes standby.signal and primary_conninfo: the copy starts as a hot standby streaming from the primary.
    await this.tool('pg_basebackup', ['-h', '127.0.0.1', '-p', String(this.primaryPort), '-U', 'postgres', '-D', this.standbyDirectory, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
    await appendFile(path.join(this.standbyDirectory, 'postgresql.conf'), '\nhot_standby = on\n');
    await this.start(this.standbyDirectory, this.standbyPort);
  }

  /** SIGKILL the standby's postmaster and every process it started: a replica that crashes. */
  async killStandby(): Promise<void> {
    const pid = Number((await readFile(path.join(this.standbyDirectory, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const children: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    }
    process.kill(pid, 'SIGKILL');
    for (const child of children) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    // Wait until the port is free again (the postmaster is gone).
    for (let attempt = 0; attempt < 50; attempt += 1) {
      try {
        process.kill(pid, 0);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } catch {
        return;
      }
    }
  }

  async stopAll(): Promise<void> {
    for (const directory of [this.standbyDirectory, this.primaryDirectory]) {
      if (existsSync(path.join(directory, 'postmaster.pid'))) await this.tool('pg_ctl', ['-D', directory, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    }
  }
}

async function sqlOn(url: string, text: string): Promise<Json[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as Json[];
  } finally {
    await client.end();
  }
}

/** A 64-year-old woman with abdominal pain, everything prefetched: on the demo she gets workup and prognosis cards. */
function abdominalPainRequest(hookInstance: string): Json {
  const request = prefetchedRequest('order-select', {
    patient: { gender: 'female', birthDate: '1962-03-01' },
    chiefComplaint: 'ABD PAIN, N/V',
    hookInstance,
  });
  request.context.draftOrders = { resourceType: 'Bundle', type: 'collection', entry: [] };
  request.context.selections = [];
  return request;
}

async function waitFor(describeWait: string, condition: () => Promise<boolean> | boolean, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${describeWait}`);
}

describe('DATABASE_READ_URL', () => {
  it('takes one or more replica URLs beside DATABASE_URL, and refuses them without it or when one is not postgres://', () => {
    const primary = 'postgres://cohort@db:5432/cohort';
    const config = loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: 'postgres://cohort@r1:5432/cohort, postgresql://cohort@r2/cohort', DATABASE_READ_MAX_LAG_MS: '2500' });
    expect(config.databaseReadUrls).toEqual(['postgres://cohort@r1:5432/cohort', 'postgresql://cohort@r2/cohort']);
    expect(config.databaseReadMaxLagMs).toBe(2500);
    expect(loadConfig({ DATABASE_URL: primary }).databaseReadUrls).toEqual([]);
    expect(() => loadConfig({ DATABASE_READ_URL: 'postgres://cohort@r1/cohort' })).toThrow(/DATABASE_READ_URL: needs DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: primary, DATABASE_READ_URL: 'postgres://r1/cohort,mysql://r2/cohort' })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_URL: primary, DATABASE_READ_MAX_LAG_MS: '10' })).toThrow(/DATABASE_READ_MAX_LAG_MS/);
  });
});

const maxLagMs = 6000;
let instance = 0;

describe('hooks read from a streaming replica and fall back to the primary', () => {
  let cluster: Cluster;
  let database: DatabaseHandle;
  let app: FastifyInstance;
  let apiKey: string;

  async function hook(target: FastifyInstance = app): Promise<{ status: number; labels: string[]; body: Json }> {
    instance += 1;
    const response = await target.inject({
      method: 'POST',
      url: '/cds-services/order-select',
      payload: abdominalPainRequest(`00000000-0000-4000-8000-${String(instance).padStart(12, '0')}`),
    });
    const body = response.json() as Json;
    return { status: response.statusCode, labels: (body.cards ?? []).map((card: Json) => card.source.label as string), body };
  }

  function replicaState(handle: DatabaseHandle = database): ReplicaState {
    return handle.read!.status().replicas[0]!.state;
  }

  beforeAll(async () => {
    const bin = findPostgresBinaries();
    const base = await mkdtemp(path.join(os.tmpdir(), 'cohort-replica-'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      await chown(base, uid, gid);
    }
    cluster = new Cluster(bin, base, [await freePort(), await freePort()]);
    await cluster.initPrimary();
    await sqlOn(cluster.url(cluster.primaryPort, 'postgres'), 'create database cohort');

    // The demo cohort, loaded on the primary before the standby is cloned (the clone then streams what follows).
    const loader = await openDatabase({ databaseUrl: cluster.url(cluster.primaryPort), dataDirectory: 'memory', poolSize: 4 });
    await migrateToLatest(loader.db);
    await seedDefaultRuleSet(loader.db);
    await ensureReferenceData(loader.db);
    await ingestPaths(loader.db, [mimicDemoDirectory], { hasher: createKeyHasher('test-secret-test-secret-test-secret-0123') });
    apiKey = (await createApiKey(loader.db, { name: 'replica-test', role: 'informaticist', createdBy: 'test' })).key;
    await loader.close();

    await cluster.cloneStandby();
    database = await openDatabase({
      databaseUrl: cluster.url(cluster.primaryPort),
      dataDirectory: 'memory',
      poolSize: 4,
      readReplicaUrls: [cluster.url(cluster.standbyPort)],
      readReplicaMaxLagMs: maxLagMs,
      readReplicaCheckIntervalMs: 200,
    });
    // No cohort cache and reference data read on every hook: each hook reads the database, so where it reads shows.
    app = await buildApp(buildConfig({ loadDemoCohort: false, cohortCacheSize: 0 }), { database, referenceTtlMs: 0, now: () => new Date('2026-11-23T12:00:00Z') });
    await app.ready();
  }, 240000);

  afterAll(async () => {
    await app?.close();
    await database?.close();
    await cluster?.stopAll();
    if (cluster) await rm(cluster.base, { recursive: true, force: true });
  }, 60000);

  it('parses WAL positions and tells a replica that went away from a plain SQL error', () => {
    expect(parseLsn('0/3000148')).toBe(0x3000148n);
    expect(parseLsn('16/B374D848') - parseLsn('16/B374D000')).toBe(0x848n);
    expect(replicaFailure(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe('gone');
    expect(replicaFailure(new Error('Connection terminated unexpectedly'))).toBe('gone');
    expect(replicaFailure(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe('gone');
    expect(replicaFailure(Object.assign(new Error('canceling statement due to conflict with recovery'), { code: '40001' }))).toBe('conflict');
    expect(replicaFailure(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }))).toBeNull();
  });

  it('answers hooks from the replica while it keeps up, and writes (issued cards, hook calls, feedback) on the primary', async () => {
    await waitFor('the standby to be judged healthy', () => replicaState() === 'healthy');
    expect(await sqlOn(cluster.url(cluster.standbyPort), 'select pg_is_in_recovery() as recovery')).toEqual([{ recovery: true }]);
    const before = database.read!.status().counts;
    const answer = await hook();
    expect(answer.status).toBe(200);
    expect(answer.labels.length).toBeGreaterThanOrEqual(2);
    for (const label of answer.labels) expect(label).toMatch(/ · rules v1$/);
    const after = database.read!.status().counts;
    expect(after.replica).toBeGreaterThan(before.replica);
    expect(after.primary).toBe(before.primary);
    expect(after.fallbacks).toBe(before.fallbacks);

    // The hook's own writes went to the primary (a standby refuses every write), and feedback on its card works.
    const cardUuids = answer.body.cards.map((card: Json) => card.uuid as string);
    const issued = await sqlOn(cluster.url(cluster.primaryPort), `select count(*)::int as n from issued_card where card_uuid in (${cardUuids.map((uuid: string) => `'${uuid}'`).join(',')})`);
    expect(issued).toEqual([{ n: cardUuids.length }]);
    const feedback = await app.inject({
      method: 'POST',
      url: '/cds-services/order-select/feedback',
      payload: { feedback: [{ card: cardUuids[0], outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:03:00Z' }] },
    });
    expect(feedback.statusCode).toBe(200);
    await app.hookCallLog.flush();
    await waitFor('the hook call to reach the primary', async () => (await sqlOn(cluster.url(cluster.primaryPort), "select count(*)::int as n from hook_call where service_id = 'order-select'"))[0]!.n >= 1);
  });

  it('stops reading a replica that falls behind (replay paused) and answers from the primary, then returns to it', async () => {
    await waitFor('a healthy standby', () => replicaState() === 'healthy');
    await sqlOn(cluster.url(cluster.standbyPort), 'select pg_wal_replay_pause()');
    // Another instance (or the CLI) activates rules v2 on the primary; this process is not told.
    const primary = await openDatabase({ databaseUrl: cluster.url(cluster.primaryPort), dataDirectory: 'memory', poolSize: 2 });
    try {
      const current = (await findVersionedRules(primary.db, 1))!;
      const draft = await createDraftRuleSet(primary.db, { rules: current.rules, note: 'replica test', createdBy: 'test' });
      await activateRuleSet(primary.db, draft.version, 'test', { force: { reason: forcedActivation.reason } });
    } finally {
      await primary.close();
    }

    // Within the bound the paused replica is still read: its cards still say v1 (proof the hook reads the replica).
    const stale = await hook();
    expect(stale.status).toBe(200);
    expect(stale.labels[0]).toMatch(/ · rules v1$/);

    await waitFor('the standby to be judged behind', () => replicaState() === 'behind');
    expect(database.read!.status().replicas[0]!.lagMs).toBeGreaterThan(maxLagMs);
    const primaryReadsBefore = database.read!.status().counts.primary;
    const fresh = await hook();
    expect(fresh.status).toBe(200);
    expect(fresh.labels.length).toBeGreaterThanOrEqual(2);
    for (const label of fresh.labels) expect(label).toMatch(/ · rules v2$/);
    expect(database.read!.status().counts.primary).toBeGreaterThan(primaryReadsBefore);

    await sqlOn(cluster.url(cluster.standbyPort), 'select pg_wal_replay_resume()');
    await waitFor('the standby to catch up', () => replicaState() === 'healthy');
    const replicaReadsBefore = database.read!.status().counts.replica;
    const caughtUp = await hook();
    expect(caughtUp.labels[0]).toMatch(/ · rules v2$/);
    expect(database.read!.status().counts.replica).toBeGreaterThan(replicaReadsBefore);
  }, 60000);

  it('reads its own writes: after a rules activation through the admin API the hooks read the primary until the replica has it', async () => {
    await waitFor('a healthy standby', () => replicaState() === 'healthy');
    await sqlOn(cluster.url(cluster.standbyPort), 'select pg_wal_replay_pause()');
    try {
      const authorization = { authorization: `Bearer ${apiKey}` };
      const current = await app.inject({ method: 'GET', url: '/admin/rules/2', headers: authorization });
      expect(current.statusCode).toBe(200);
      const draft = await app.inject({ method: 'POST', url: '/admin/rules', headers: authorization, payload: { rules: current.json().rules, note: 'own write' } });
      expect(draft.statusCode).toBeLessThan(300);
      const version = draft.json().version as number;
      const activated = await app.inject({ method: 'POST', url: `/admin/rules/${version}/activate`, headers: authorization, payload: forcedActivation });
      expect(activated.statusCode).toBe(200);

      // The replica is paused (and not yet past the bound), yet this process's next hook shows the version it activated.
      expect(replicaState()).toBe('healthy');
      const answer = await hook();
      expect(answer.status).toBe(200);
      for (const label of answer.labels) expect(label).toMatch(new RegExp(` · rules v${version}$`));
      expect(database.read!.status().readingOwnWrites).toBe(true);
    } finally {
      await sqlOn(cluster.url(cluster.standbyPort), 'select pg_wal_replay_resume()');
    }
    await waitFor('the replica to have replayed the activation', () => !database.read!.status().readingOwnWrites && replicaState() === 'healthy');
  }, 60000);

  it('keeps answering when the replica is killed, mid-traffic and once the monitor sees it, and uses it again when it is back', async () => {
    await waitFor('a healthy standby', () => replicaState() === 'healthy');
    // A second instance whose monitor will not look again for a minute: only the query-time fallback can save its hooks.
    const slowMonitor = await openDatabase({
      databaseUrl: cluster.url(cluster.primaryPort),
      dataDirectory: 'memory',
      poolSize: 2,
      readReplicaUrls: [cluster.url(cluster.standbyPort)],
      readReplicaMaxLagMs: maxLagMs,
      readReplicaCheckIntervalMs: 60000,
    });
    const second = await buildApp(buildConfig({ loadDemoCohort: false, cohortCacheSize: 0 }), { database: slowMonitor, referenceTtlMs: 0, now: () => new Date('2026-11-23T12:00:00Z') });
    try {
      expect(replicaState(slowMonitor)).toBe('healthy');
      const warm = await hook(second);
      expect(warm.status).toBe(200);
      const expectedLabels = warm.labels;
      expect(expectedLabels.length).toBeGreaterThanOrEqual(2);
      expect(slowMonitor.read!.status().counts.replica).toBeGreaterThan(0);

      await cluster.killStandby();
      const during = await hook(second);
      expect(during.status).toBe(200);
      expect(during.labels).toEqual(expectedLabels);
      expect(slowMonitor.read!.status().counts.fallbacks).toBeGreaterThanOrEqual(1);
      expect(replicaState(slowMonitor)).toBe('unreachable');
      // Marked out of use at once: the next hook goes straight to the primary, with no failed attempt first.
      const fallbacks = slowMonitor.read!.status().counts.fallbacks;
      expect((await hook(second)).labels).toEqual(expectedLabels);
      expect(slowMonitor.read!.status().counts.fallbacks).toBe(fallbacks);

      // The first instance's monitor notices on its own and its hooks keep answering too.
      await waitFor('the monitor to see the standby gone', () => replicaState() === 'unreachable');
      const afterKill = await hook();
      expect(afterKill.status).toBe(200);
      expect(afterKill.labels).toEqual(expectedLabels);

      // Back after a restart (crash recovery, then hot standby again): read from once more.
      await cluster.start(cluster.standbyDirectory, cluster.standbyPort);
      await waitFor('the restarted standby to be healthy', () => replicaState() === 'healthy', 30000);
      const replicaReads = database.read!.status().counts.replica;
      expect((await hook()).labels).toEqual(expectedLabels);
      expect(database.read!.status().counts.replica).toBeGreaterThan(replicaReads);
    } finally {
      await second.close();
      await slowMonitor.close();
    }
  }, 90000);
});
