import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, IngestRunTable } from './database.js';

/** Records the start of an ingest; a run that never finishes keeps finished_at null. */
export async function startIngestRun(db: Kysely<Database>, source: string): Promise<string> {
  const row = await db
    .insertInto('ingest_run')
    .values({ source: source.slice(0, 2000), counts: '{}' })
    .returning('ingest_run_id')
    .executeTakeFirstOrThrow();
  return String(row.ingest_run_id);
}

/** Stores the counts of a finished ingest. */
export async function finishIngestRun(db: Kysely<Database>, ingestRunId: string, counts: Record<string, number>): Promise<void> {
  await db
    .updateTable('ingest_run')
    .set({ finished_at: sql<Date>`now()`, counts: JSON.stringify(counts) })
    .where('ingest_run_id', '=', ingestRunId)
    .execute();
}

/** The most recent ingests, newest first. */
export async function listIngestRuns(db: Kysely<Database>, limit = 20): Promise<Selectable<IngestRunTable>[]> {
  return db.selectFrom('ingest_run').selectAll().orderBy('ingest_run_id', 'desc').limit(limit).execute();
}
