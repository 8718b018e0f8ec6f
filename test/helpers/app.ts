import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildConfig, type Config } from '../../src/config.js';
import type { IngestReport } from '../../src/ingest/ingest.js';
import type { TestDatabase } from './database.js';
import { openDemoDatabase } from './test-templates.js';

export { mimicDemoDirectory } from './test-templates.js';

export interface TestApp {
  readonly app: FastifyInstance;
  readonly database: TestDatabase;
  readonly ingest: IngestReport;
  close(): Promise<void>;
}

/** The app's fixed clock in tests: anything the app stamps (link expiry, audit times) is relative to it. */
export const testAppNow = new Date('2026-11-23T12:00:00Z');

/**
 * A test database with the default rules and the MIMIC demo ingested (with the standard test secret: a copy of the
 * prepared demo database, test/helpers/test-templates.ts) and the app built over it (not listening).
 */
export async function buildTestApp(overrides: Partial<Config> = {}): Promise<TestApp> {
  const { database, ingest } = await openDemoDatabase();
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
