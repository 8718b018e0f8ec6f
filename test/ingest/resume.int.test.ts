/**
 * kill -9 of the real CLI (src/cli/main.ts, run unbuilt through swc in a child `node`) in the middle of an ingest
 * of the MIMIC demo, then the same command again: the cohort must be exactly what one uninterrupted ingest of the
 * same input gives, row for row, with nothing twice. On PGlite the CLI keeps its database in DATA_DIR; with
 * DATABASE_URL it loads a fresh PostgreSQL database with COPY (a bulk load: item keys dropped, rebuilt at the end).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { openDatabase } from '../../src/db/connection.js';
import type { Database } from '../../src/db/database.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { projectRoot } from '../../src/paths.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { openTestDatabase, seedPgliteDataDirectory } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';
import { cohortContent, duplicatedRows } from './cohort-content.js';

const secret = 'resume-test-secret-0123456789abcdef-0123';
/** Small batches, so that the demo (64 patients) is stored in many transactions and a kill lands between them. */
const batches = 48;

interface Run {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly output: () => string;
  readonly errors: () => string;
}

function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Run {
  const child = spawn(
    process.execPath,
    ['--import', pathToFileURL(path.join(projectRoot, 'test/helpers/run-typescript.mjs')).href, 'src/cli/main.ts', ...args],
    { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let errors = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, exited, output: () => output, errors: () => errors };
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function storedBatches(db: Kysely<Database>): Promise<number> {
  const result = await sql<{ batches: number }>`
    select cast(count(*) as integer) as batches from ingest_run_batch
    join ingest_run using (ingest_run_id) where ingest_run.finished_at is null`.execute(db);
  return Number(result.rows[0]?.batches ?? 0);
}

describe('an ingest killed midway and run again', () => {
  let scratch: string;
  let reference: Awaited<ReturnType<typeof openTestDatabase>>;
  // With DATABASE_URL: the database the CLI loads. Without: the CLI's PGlite lives in DATA_DIR.
  let target: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'cohort-resume-'));
    reference = await openReferenceDatabase();
    // One uninterrupted ingest of the same input in one batch: what the resumed one must equal.
    await ingestPaths(reference.db, [mimicDemoDirectory], { hasher: createKeyHasher(secret) });
    if (process.env.DATABASE_URL) target = await openTestDatabase();
  }, 600_000);

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await reference?.close();
    await target?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('stores what was left, nothing twice, and ends with the cohort an uninterrupted ingest gives', async () => {
    const dataDirectory = path.join(scratch, 'data');
    const { DATABASE_URL: _inherited, ...environment } = process.env;
    const env: NodeJS.ProcessEnv = {
      ...environment,
      ...(target?.url ? { DATABASE_URL: target.url } : {}),
      DATA_DIR: dataDirectory,
      PATIENT_HASH_SECRET: secret,
      // Logs "batch N saved" after each batch's transaction commits.
      INGEST_DEBUG: '1',
    };
    const command = ['ingest', mimicDemoDirectory, '--batches', String(batches)];
    // On PGlite the CLI's files start migrated with the code tables loaded (initdb and that load are not under test).
    if (!target) await seedPgliteDataDirectory(dataDirectory, 'reference');

    const first = runCli(command, env);
    child = first.child;
    // Killed once some batches are committed: by their rows on PostgreSQL; on PGlite (one process per data
    // directory) by the line the CLI logs after each commit.
    await waitFor('some batches to be stored', async () => {
      if (first.child.exitCode !== null) throw new Error(`the ingest ended before it could be killed:\n${first.errors()}`);
      if (target) return (await storedBatches(target.db)) >= 2 ? true : undefined;
      return (first.errors().match(/batch \d+ saved/g)?.length ?? 0) >= 2 ? true : undefined;
    });
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // The interruption really was midway: some batches stored, not all, and the run not finished.
    const interrupted = target ?? (await openDatabase({ dataDirectory }));
    let storedBefore: number;
    let unfinishedRuns: unknown[];
    try {
      storedBefore = await storedBatches(interrupted.db);
      unfinishedRuns = await interrupted.db.selectFrom('ingest_run').select('ingest_run_id').where('finished_at', 'is', null).execute();
    } finally {
      if (!target) await interrupted.close();
    }
    expect(storedBefore).toBeGreaterThanOrEqual(2);
    expect(storedBefore).toBeLessThan(batches);
    expect(unfinishedRuns).toHaveLength(1);

    const second = runCli(command, env);
    child = second.child;
    const { code } = await second.exited;
    expect(second.errors()).not.toContain('error:');
    expect(code).toBe(0);
    expect(second.output()).toContain(`(resumed: ${storedBefore} of ${batches} batches were stored before the interruption)`);

    const resumed = target ?? (await openDatabase({ dataDirectory }));
    try {
      const [expected, actual] = await Promise.all([cohortContent(reference.db), cohortContent(resumed.db)]);
      expect(expected.cohort_encounter.length).toBeGreaterThan(200);
      expect(expected.encounter_item.length).toBeGreaterThan(3000);
      for (const table of Object.keys(expected) as Array<keyof typeof expected>) {
        expect(duplicatedRows(actual[table])).toEqual([]);
        expect({ table, rows: actual[table] }).toEqual({ table, rows: expected[table] });
      }
      // One run, resumed and finished, whose counts are those of the whole input; its staging folder is gone.
      const runs = await resumed.db.selectFrom('ingest_run').select(['finished_at', 'counts', 'staging_directory']).execute();
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ staging_directory: null, counts: { encounters: expected.cohort_encounter.length, batches, batchesStoredBefore: storedBefore } });
      expect(runs[0]!.finished_at).not.toBeNull();
      expect(await storedBatches(resumed.db)).toBe(0);
    } finally {
      if (!target) await resumed.close();
    }
  }, 600_000);
});
