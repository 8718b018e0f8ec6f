import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { buildConfig, type Config } from '../../src/config.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { loggerOptions } from '../../src/logger.js';
import { openTestDatabase } from './database.js';

export type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

/** A migrated database with the default rules and an empty cohort: hooks answer `cards: []`, quickly. */
export async function openRulesOnlyDatabase(): Promise<TestDatabase> {
  const database = await openTestDatabase();
  await seedDefaultRuleSet(database.db);
  return database;
}

export interface LoggedApp {
  readonly app: FastifyInstance;
  /** Every log line written so far, as JSON text. */
  readonly lines: string[];
}

/** The app over `database` (left open on close), with `overrides` on the default config and its logs captured. */
export async function buildLoggedApp(database: TestDatabase, overrides: Partial<Config> = {}): Promise<LoggedApp> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const config = buildConfig({ loadDemoCohort: false, logLevel: 'info', ...overrides });
  const app = await buildApp(config, { database, logger: { ...loggerOptions(config), stream } as never });
  await app.ready();
  return { app, lines };
}
