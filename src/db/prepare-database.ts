import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { Database } from './database.js';
import { migrateToLatest } from './migrate.js';
import { seedDefaultRuleSet } from './rule-set.repository.js';

export interface PreparedDatabase {
  readonly migrationsApplied: number;
}

/** Start-up: migrations, then the seed data a new database needs. */
export async function prepareDatabase(db: Kysely<Database>, _config: Config, progress: (message: string) => void): Promise<PreparedDatabase> {
  const migrations = await migrateToLatest(db);
  const migrationsApplied = migrations.results?.length ?? 0;
  if (migrationsApplied > 0) progress(`applied ${migrationsApplied} migration(s)`);
  await seedDefaultRuleSet(db);
  return { migrationsApplied };
}
