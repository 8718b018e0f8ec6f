import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, OptOutSource } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface OptOutInput {
  /** The HMAC patient key, as cohort_encounter.patient_key holds it. */
  readonly patientKey: string;
  readonly source: OptOutSource;
  /** The API key's name, or `ingest` / `cli`. */
  readonly recordedBy: string;
}

export interface OptOutSummary {
  readonly source: OptOutSource;
  readonly optedOutAt: Date;
  readonly recordedBy: string;
}

/** What deleting a set of patients' encounters removed (the items and draws go with them, by cascade). */
export interface RemovedEncounters {
  readonly encounters: number;
  readonly items: number;
  readonly labDraws: number;
}

/** Records opt-outs; a patient opted out before keeps the first record. Returns how many were new. */
export async function recordOptOuts(db: Executor, optOuts: readonly OptOutInput[]): Promise<number> {
  let added = 0;
  // Well under PostgreSQL's bind-parameter limit per statement.
  for (let start = 0; start < optOuts.length; start += 5000) {
    const batch = optOuts.slice(start, start + 5000);
    const rows = await db
      .insertInto('patient_opt_out')
      .values(batch.map((optOut) => ({ patient_key: optOut.patientKey, source: optOut.source, recorded_by: optOut.recordedBy })))
      .onConflict((conflict) => conflict.column('patient_key').doNothing())
      .returning('patient_key')
      .execute();
    added += rows.length;
  }
  return added;
}

/** Whether this patient key has opted out. */
export async function isOptedOut(db: Executor, patientKey: string): Promise<boolean> {
  const row = await db.selectFrom('patient_opt_out').select('patient_key').where('patient_key', '=', patientKey).executeTakeFirst();
  return row !== undefined;
}

/**
 * Deletes the encounters of the given patient keys, or of every opted-out patient when `patientKeys` is
 * omitted; every table that references cohort_encounter.encounter_key (encounter_item, lab_draw) follows by
 * `on delete cascade`. Runs in the caller's transaction.
 */
export async function deleteEncountersOfPatients(db: Executor, patientKeys?: readonly string[]): Promise<RemovedEncounters> {
  if (patientKeys !== undefined && patientKeys.length === 0) return { encounters: 0, items: 0, labDraws: 0 };
  const patients =
    patientKeys === undefined ? sql`select patient_key from patient_opt_out` : sql`select unnest(${sql.val([...patientKeys])}::text[])`;
  const counted = await sql<{ encounters: number; items: number; lab_draws: number }>`
    with doomed as (select encounter_key from cohort_encounter where patient_key in (${patients}))
    select
      (select cast(count(*) as integer) from doomed) as encounters,
      (select cast(count(*) as integer) from encounter_item where encounter_key in (select encounter_key from doomed)) as items,
      (select cast(count(*) as integer) from lab_draw where encounter_key in (select encounter_key from doomed)) as lab_draws`.execute(db);
  const counts = counted.rows[0] ?? { encounters: 0, items: 0, lab_draws: 0 };
  if (Number(counts.encounters) === 0) return { encounters: 0, items: 0, labDraws: 0 };
  await sql`delete from cohort_encounter where patient_key in (${patients})`.execute(db);
  return { encounters: Number(counts.encounters), items: Number(counts.items), labDraws: Number(counts.lab_draws) };
}

/** How many patients have opted out, by source. */
export async function countOptOuts(db: Executor): Promise<Record<OptOutSource, number>> {
  const rows = await db
    .selectFrom('patient_opt_out')
    .select(['source', sql<number>`cast(count(*) as integer)`.as('patients')])
    .groupBy('source')
    .execute();
  const counts: Record<OptOutSource, number> = { consent: 0, api: 0 };
  for (const row of rows) counts[row.source] = Number(row.patients);
  return counts;
}

/** The newest opt-outs first, without their keys: when, from where and by whom. */
export async function listOptOuts(db: Executor, limit: number): Promise<OptOutSummary[]> {
  const rows = await db
    .selectFrom('patient_opt_out')
    .select(['source', 'opted_out_at', 'recorded_by'])
    .orderBy('opted_out_at', 'desc')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ source: row.source, optedOutAt: row.opted_out_at, recordedBy: row.recorded_by }));
}
