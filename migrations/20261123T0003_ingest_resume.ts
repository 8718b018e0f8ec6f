import { sql, type Kysely } from 'kysely';

/**
 * Resumable ingest: a run is recognised again by its fingerprint (inputs, options, hashing key) and keeps its
 * staging folder; each batch of patients is recorded as done in the same transaction as its rows, so a run
 * killed midway and started again skips what it had stored.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('ingest_run').addColumn('fingerprint', 'text').execute();
  await db.schema.alterTable('ingest_run').addColumn('staging_directory', 'text').execute();
  await sql`create index ingest_run_unfinished on ingest_run (fingerprint) where finished_at is null`.execute(db);

  await db.schema
    .createTable('ingest_run_batch')
    .addColumn('ingest_run_id', 'bigint', (column) => column.notNull().references('ingest_run.ingest_run_id').onDelete('cascade'))
    .addColumn('batch', 'integer', (column) => column.notNull())
    .addColumn('counts', 'jsonb', (column) => column.notNull())
    .addColumn('finished_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('ingest_run_batch_pk', ['ingest_run_id', 'batch'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('ingest_run_batch').ifExists().execute();
  await sql`drop index if exists ingest_run_unfinished`.execute(db);
  await db.schema.alterTable('ingest_run').dropColumn('staging_directory').execute();
  await db.schema.alterTable('ingest_run').dropColumn('fingerprint').execute();
}
