import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import { openDatabase, pgliteDirectory, type DatabaseHandle } from '../../src/db/connection.js';
import type { Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { primaryOnlyReadDatabase } from '../../src/db/read-replica.js';

export type TestDatabase = DatabaseHandle & { readonly url: string | undefined };

/**
 * A database state a suite can start from without building it: what test/global-setup.ts prepared once per jest
 * run. `migrated`: the schema, no rows. `reference`: plus the complaint vocabulary and the ICD-10 code tables
 * (ensureReferenceData). `demo`: plus the default rules and the MIMIC demo ingested with the standard test secret
 * (test/helpers/app.ts).
 */
export type TestTemplate = 'migrated' | 'reference' | 'demo';

/**
 * Where the prepared states are, handed from global setup to the workers through the environment: on PGlite a data
 * directory dump per state in `directory`; on PostgreSQL a template database per state, `${prefix}_${state}`.
 */
export interface TestTemplates {
  readonly directory: string;
  readonly postgresPrefix?: string;
}

export const testTemplatesVariable = 'COHORT_TEST_TEMPLATES';

function preparedTemplates(): TestTemplates | undefined {
  const value = process.env[testTemplatesVariable];
  return value ? (JSON.parse(value) as TestTemplates) : undefined;
}

/** The PGlite dump file of a state, in the templates' directory. */
export function pgliteDumpFile(directory: string, template: TestTemplate): string {
  return `${directory}/${template}.tar`;
}

/** A name PostgreSQL takes unquoted: lower case letters, digits, underscores. */
export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on the server's maintenance connection (CREATE/DROP DATABASE cannot run in a pool's transaction). */
export async function onPostgresServer(serverUrl: string, statement: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(statement);
  } finally {
    await admin.end();
  }
}

export function databaseUrlFor(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * An in-memory PGlite (started from a data directory dump, else by initdb) and its handle, built as openDatabase
 * builds its own: the helpers need the PGlite itself to load and dump data directories.
 */
export async function openPglite(dump?: Blob): Promise<{ readonly pglite: PGlite; readonly handle: TestDatabase }> {
  const pglite = dump ? new PGlite({ loadDataDir: dump }) : new PGlite();
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  const handle: TestDatabase = {
    db,
    kind: 'pglite',
    read: primaryOnlyReadDatabase(db),
    url: undefined,
    close: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
  return { pglite, handle };
}

/** A fresh database on the PostgreSQL server of DATABASE_URL, a copy of `template` (or empty), dropped on close. */
async function openPostgresCopy(serverUrl: string, template: string | undefined): Promise<TestDatabase> {
  const name = uniqueDatabaseName('cohort_test');
  await onPostgresServer(serverUrl, template ? `create database ${name} template ${template}` : `create database ${name}`);
  const url = databaseUrlFor(serverUrl, name);
  const handle = await openDatabase({ databaseUrl: url, dataDirectory: 'memory', poolSize: 4 });
  return {
    ...handle,
    url,
    close: async () => {
      await handle.close();
      await onPostgresServer(serverUrl, `drop database if exists ${name} with (force)`);
    },
  };
}

// A worker reads each dump once and starts every PGlite of its suites from the same bytes.
const dumps = new Map<string, Promise<Blob>>();

function readDump(file: string): Promise<Blob> {
  let dump = dumps.get(file);
  if (!dump) {
    dump = readFile(file).then((bytes) => new Blob([bytes]));
    dumps.set(file, dump);
  }
  return dump;
}

/**
 * A database of its own for one test suite in the prepared state `template` (an in-memory PGlite, or, when
 * DATABASE_URL is set, a database on that server dropped on close, so suites can run in parallel), or null when
 * the jest run prepared no templates (a suite run outside this project's jest config).
 */
export async function openTemplateCopy(template: TestTemplate): Promise<TestDatabase | null> {
  const templates = preparedTemplates();
  if (!templates) return null;
  const serverUrl = process.env.DATABASE_URL;
  if (serverUrl) {
    if (!templates.postgresPrefix) throw new Error('DATABASE_URL is set but global setup prepared PGlite templates');
    return openPostgresCopy(serverUrl, `${templates.postgresPrefix}_${template}`);
  }
  return (await openPglite(await readDump(pgliteDumpFile(templates.directory, template)))).handle;
}

/**
 * Fills `dataDirectory` (a folder as DATA_DIR names it, with nothing in it yet) with the PGlite files of the prepared
 * state `template`, for suites that run the CLI or the server on PGlite files as `npm start` keeps them: the CLI then
 * starts from that state instead of running initdb and the migrations (about 8 s of CPU each time). Leaves the folder
 * alone when the jest run prepared no PGlite templates (the CLI then builds the database itself).
 */
export async function seedPgliteDataDirectory(dataDirectory: string, template: TestTemplate): Promise<void> {
  const templates = preparedTemplates();
  if (!templates || templates.postgresPrefix) return;
  await mkdir(dataDirectory, { recursive: true });
  const pglite = new PGlite({ dataDir: pgliteDirectory(dataDirectory), loadDataDir: await readDump(pgliteDumpFile(templates.directory, template)) });
  await pglite.waitReady;
  await pglite.close();
}

/**
 * A migrated, empty database of its own for one test suite: an in-memory PGlite, or, when DATABASE_URL is set, a
 * fresh database on that PostgreSQL server (dropped on close) so suites can run in parallel. A copy of the migrated
 * template when global setup made one: starting PGlite from a dump skips its initdb (about 10 s of CPU).
 */
export async function openTestDatabase(): Promise<TestDatabase> {
  const copy = await openTemplateCopy('migrated');
  if (copy) return copy;
  const serverUrl = process.env.DATABASE_URL;
  const handle = serverUrl ? await openPostgresCopy(serverUrl, undefined) : { ...(await openDatabase({ dataDirectory: 'memory' })), url: undefined };
  await migrateToLatest(handle.db);
  return handle;
}
