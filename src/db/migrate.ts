import { Migrator, type Kysely, type MigrationResultSet } from 'kysely';
import { migrations } from '../../migrations/index.js';
import type { Database } from './database.js';

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** Brings the schema up to date; kysely's migration lock keeps two instances from racing. */
export async function migrateToLatest(db: Kysely<Database>): Promise<MigrationResultSet> {
  // Unordered: a database made by a build that already had a later-numbered migration (0005 landed before 0003,
  // 0004 and 0006 did) still takes the earlier-numbered ones; each adds its own tables or columns, so order is free.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((migration) => migration.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${String(result.error)}`, {
      cause: result.error,
    });
  }
  return result;
}
