/**
 * The cohort's content as text, for tests that compare two databases row for row: every column the ingest
 * derives from the patients' data (ingested_at, the load time, is left out), rows sorted.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';

const contentColumns = {
  cohort_encounter: sql`encounter_key, patient_key, site, age_years, sex, acuity, chief_complaint_text, complaint_concepts,
    icd10_codes, icd10_categories, history_icd10_codes, start_year, disposition, admitted, ed_los_minutes,
    hospital_los_minutes, returned_72h, returned_30d`,
  encounter_item: sql`encounter_key, item_code, category, kind, display, code_system, code, offset_minutes, clinician_key`,
  lab_draw: sql`encounter_key, draw_key, analyte_codes`,
  lab_panel: sql`panel_code, display, analyte_codes`,
  lab_panel_member: sql`analyte_code, panel_code`,
} as const;

export type CohortTable = keyof typeof contentColumns;
export const cohortTables = Object.keys(contentColumns) as CohortTable[];

/** Each row of a table as text, sorted (duplicates kept: a duplicated row shows as two equal lines). */
export async function rowsAsText(db: Kysely<Database>, table: CohortTable): Promise<string[]> {
  const result = await sql<{ row: string }>`select row(${contentColumns[table]})::text as row from ${sql.table(table)}`.execute(db);
  return result.rows.map((row) => row.row).sort();
}

/** Every cohort table's rows as text. */
export async function cohortContent(db: Kysely<Database>): Promise<Record<CohortTable, string[]>> {
  const entries = await Promise.all(cohortTables.map(async (table) => [table, await rowsAsText(db, table)] as const));
  return Object.fromEntries(entries) as Record<CohortTable, string[]>;
}

/** Rows that occur more than once in a table (none may: every table has a key). */
export function duplicatedRows(rows: readonly string[]): string[] {
  return rows.filter((row, index) => index > 0 && rows[index - 1] === row);
}
