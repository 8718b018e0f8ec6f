import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildConfig, type Config } from '../../src/config.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths, type IngestReport } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { projectRoot } from '../../src/paths.js';
import { openTestDatabase } from './database.js';

/** The real MIMIC-IV ED demo, read from the shared data folder beside the project. */
export const mimicDemoDirectory = path.resolve(projectRoot, '../shared/data/mimic-iv-ed-demo-fhir');

export interface TestApp {
  readonly app: FastifyInstance;
  readonly database: Awaited<ReturnType<typeof openTestDatabase>>;
  readonly ingest: IngestReport;
  close(): Promise<void>;
}

/** The app's fixed clock in tests: anything the app stamps (link expiry, audit times) is relative to it. */
export const testAppNow = new Date('2026-11-23T12:00:00Z');

/** A test database with the MIMIC demo ingested and the app built over it (not listening). */
export async function buildTestApp(overrides: Partial<Config> = {}): Promise<TestApp> {
  const database = await openTestDatabase();
  await seedDefaultRuleSet(database.db);
  await ensureReferenceData(database.db);
  const ingest = await ingestPaths(database.db, [mimicDemoDirectory], {
    hasher: createKeyHasher('test-secret-test-secret-test-secret-0123'),
  });
  const app = await buildApp(buildConfig({ loadDemoCohort: false, ...overrides }), { database, now: () => testAppNow });
  await app.ready();
  return {
    app,
    database,
    ingest,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}
