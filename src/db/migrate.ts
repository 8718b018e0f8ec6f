import { Migrator, type Kysely, type MigrationResultSet } from 'kysely';
import { migrations } from '../../migrations/index.js';
import type { Database } from './database.js';

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** The migrator over every migration of migrations/ (also for tests that go down and up again). */
export function createMigrator(db: Kysely<Database>): Migrator {
  // Unordered: a database made by a build that already had a later-numbered migration (0005 landed before 0003,
  // 0004 and 0006 did) still takes the earlier-numbered ones; each adds its own tables or columns, so order is free.
  return new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
}

/** Brings the schema up to date; kysely's migration lock keeps two instances from racing. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResultSet> {
  const result = await createMigrator(db).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((migration) => migration.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${String(result.error)}`, {
      cause: result.error,
    });
  }
  return result;
}
