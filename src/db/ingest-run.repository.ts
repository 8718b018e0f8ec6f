import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, IngestRunTable } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface IngestRunStart {
  readonly source: string;
  /** See ingest_run.fingerprint. */
  readonly fingerprint?: string;
  readonly stagingDirectory?: string;
}

/** Records the start of an ingest; a run that never finishes keeps finished_at null. */
export async function startIngestRun(db: Executor, start: IngestRunStart | string): Promise<string> {
  const { source, fingerprint = null, stagingDirectory = null } = typeof start === 'string' ? { source: start } : start;
  const row = await db
    .insertInto('ingest_run')
    .values({ source: source.slice(0, 2000), counts: '{}', fingerprint, staging_directory: stagingDirectory })
    .returning('ingest_run_id')
    .executeTakeFirstOrThrow();
  return String(row.ingest_run_id);
}

export interface UnfinishedIngestRun {
  readonly ingestRunId: string;
  readonly stagingDirectory: string | null;
}

/** The newest run with this fingerprint that has not finished (it was interrupted, or is still going). */
export async function findUnfinishedIngestRun(db: Executor, fingerprint: string): Promise<UnfinishedIngestRun | undefined> {
  const row = await db
    .selectFrom('ingest_run')
    .select(['ingest_run_id', 'staging_directory'])
    .where('fingerprint', '=', fingerprint)
    .where('finished_at', 'is', null)
    .orderBy('ingest_run_id', 'desc')
    .executeTakeFirst();
  return row && { ingestRunId: String(row.ingest_run_id), stagingDirectory: row.staging_directory };
}

/** Marks one batch of a run as stored; call it in the transaction that stores the batch's rows. */
export async function recordIngestRunBatch(trx: Executor, ingestRunId: string, batch: number, counts: Record<string, number>): Promise<void> {
  await trx.insertInto('ingest_run_batch').values({ ingest_run_id: ingestRunId, batch, counts: JSON.stringify(counts) }).execute();
}

/** The batches a run has stored, with their counts. */
export async function listIngestRunBatches(db: Executor, ingestRunId: string): Promise<Map<number, Record<string, number>>> {
  const rows = await db.selectFrom('ingest_run_batch').select(['batch', 'counts']).where('ingest_run_id', '=', ingestRunId).execute();
  return new Map(rows.map((row) => [row.batch, row.counts]));
}

/** Stores the counts of a finished ingest. */
export async function finishIngestRun(db: Executor, ingestRunId: string, counts: Record<string, number>): Promise<void> {
  await db
    .updateTable('ingest_run')
    .set({ finished_at: sql<Date>`now()`, counts: JSON.stringify(counts), staging_directory: null })
    .where('ingest_run_id', '=', ingestRunId)
    .execute();
}

/** The most recent ingests, newest first. */
export async function listIngestRuns(db: Executor, limit = 20): Promise<Selectable<IngestRunTable>[]> {
  return db.selectFrom('ingest_run').selectAll().orderBy('ingest_run_id', 'desc').limit(limit).execute();
}

/** The patient keys of patient_opt_out: an ingest leaves their resources out (src/privacy/opt-out.ts). */
export async function listOptedOutPatientKeys(db: Executor): Promise<string[]> {
  const rows = await db.selectFrom('patient_opt_out').select('patient_key').orderBy('patient_key').execute();
  return rows.map((row) => row.patient_key);
}
