/**
 * The database states most suites start from, built once per jest run by test/global-setup.ts and copied per suite:
 * a PGlite data directory dump loaded into a new in-memory PGlite, or `CREATE DATABASE … TEMPLATE` on PostgreSQL.
 * Building them per suite (PGlite's initdb, the 95k ICD-10 codes, the ingest of the demo) was most of the suite's
 * time. A copy is the database the steps below leave, byte for byte, so suites see what they built before.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { openDatabase } from '../../src/db/connection.js';
import type { Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths, type IngestReport } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { projectRoot } from '../../src/paths.js';
import {
  databaseUrlFor,
  onPostgresServer,
  openPglite,
  openTemplateCopy,
  openTestDatabase,
  pgliteDumpFile,
  testTemplatesVariable,
  uniqueDatabaseName,
  type TestDatabase,
  type TestTemplate,
  type TestTemplates,
} from './database.js';

/** The real MIMIC-IV ED demo, read from the shared data folder beside the project. */
export const mimicDemoDirectory = path.resolve(projectRoot, '../shared/data/mimic-iv-ed-demo-fhir');

/** The patient-hashing secret the standard demo database is ingested with (buildTestApp and most suites). */
export const standardTestSecret = 'test-secret-test-secret-test-secret-0123';

const templateOrder: readonly TestTemplate[] = ['migrated', 'reference', 'demo'];

/** What each state adds to the one before it. */
async function buildStep(db: Kysely<Database>, template: TestTemplate): Promise<IngestReport | undefined> {
  switch (template) {
    case 'migrated':
      await migrateToLatest(db);
      return undefined;
    case 'reference':
      await ensureReferenceData(db);
      return undefined;
    case 'demo':
      await seedDefaultRuleSet(db);
      return ingestPaths(db, [mimicDemoDirectory], { hasher: createKeyHasher(standardTestSecret) });
  }
}

function demoReportFile(directory: string): string {
  return path.join(directory, 'demo-ingest.json');
}

/**
 * Builds every state once (global setup runs this file as a script: jest loads global setup as CommonJS without the
 * module mapping our `.js` imports need): on PGlite one instance, dumped after each step; on PostgreSQL one database
 * per state, each created from the one before and closed, so that it can serve as a template (PostgreSQL copies
 * a template only while nobody is connected to it). Names are unique per run: the two CI runs and concurrent jest
 * runs on one server do not meet.
 */
export async function prepareTestTemplates(): Promise<TestTemplates> {
  const directory = await mkdtemp(path.join(tmpdir(), 'cohort-test-templates-'));
  const serverUrl = process.env.DATABASE_URL;
  let report: IngestReport | undefined;
  if (!serverUrl) {
    const { pglite, handle } = await openPglite();
    try {
      for (const template of templateOrder) {
        report = (await buildStep(handle.db, template)) ?? report;
        await sql`checkpoint`.execute(handle.db);
        const dump = await pglite.dumpDataDir('none');
        await writeFile(pgliteDumpFile(directory, template), Buffer.from(await dump.arrayBuffer()));
      }
    } finally {
      await handle.close();
    }
    await writeFile(demoReportFile(directory), JSON.stringify(report));
    return { directory };
  }
  const postgresPrefix = uniqueDatabaseName('cohort_template');
  let previous: string | undefined;
  for (const template of templateOrder) {
    const name = `${postgresPrefix}_${template}`;
    await onPostgresServer(serverUrl, previous ? `create database ${name} template ${previous}` : `create database ${name}`);
    const handle = await openDatabase({ databaseUrl: databaseUrlFor(serverUrl, name), dataDirectory: 'memory', poolSize: 4 });
    try {
      report = (await buildStep(handle.db, template)) ?? report;
    } finally {
      await handle.close();
    }
    previous = name;
  }
  await writeFile(demoReportFile(directory), JSON.stringify(report));
  return { directory, postgresPrefix };
}

/** A database with the complaint vocabulary and the ICD-10 code tables loaded (ensureReferenceData), nothing else. */
export async function openReferenceDatabase(): Promise<TestDatabase> {
  const copy = await openTemplateCopy('reference');
  if (copy) return copy;
  const database = await openTestDatabase();
  await buildStep(database.db, 'reference');
  return database;
}

/**
 * A database with the default rules, the reference data and the MIMIC demo ingested with `standardTestSecret`,
 * and the report of that ingest.
 */
export async function openDemoDatabase(): Promise<{ readonly database: TestDatabase; readonly ingest: IngestReport }> {
  const copy = await openTemplateCopy('demo');
  if (copy) {
    const templates = JSON.parse(process.env[testTemplatesVariable]!) as TestTemplates;
    return { database: copy, ingest: JSON.parse(await readFile(demoReportFile(templates.directory), 'utf8')) as IngestReport };
  }
  const database = await openReferenceDatabase();
  return { database, ingest: (await buildStep(database.db, 'demo'))! };
}

/**
 * A database with the default rules, the reference data and the NDJSON of `directory` ingested with `secret`
 * (seedDefaultRuleSet, ensureReferenceData, ingestPaths): a copy of the demo database when that is what is asked for.
 */
export async function openIngestedDatabase(directory: string, secret: string): Promise<TestDatabase> {
  if (path.resolve(directory) === mimicDemoDirectory && secret === standardTestSecret) return (await openDemoDatabase()).database;
  const database = await openReferenceDatabase();
  await seedDefaultRuleSet(database.db);
  await ingestPaths(database.db, [directory], { hasher: createKeyHasher(secret) });
  return database;
}

// `node --import ./test/helpers/run-typescript.mjs test/helpers/test-templates.ts prepare`: builds the states and
// prints where they are as the last line.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(projectRoot, 'test/helpers/test-templates.ts') && process.argv[2] === 'prepare') {
  process.stdout.write(`${JSON.stringify(await prepareTestTemplates())}\n`);
}
