import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * The words of the ICD-10-CM descriptions (the clinical language a stored chief complaint may keep), kept in a table
 * instead of split out of the 95k descriptions by every ingest: on PGlite that split took 1.6–2.0 s of each ingest
 * (measured on the demo, 2026-12-02). Filled here from the codes already loaded, and by the code-table load after.
 * Numbers are no words (a stored complaint keeps those of up to three digits, whatever the descriptions hold).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table icd10_description_word (word text primary key)`.execute(db);
  await sql`
    insert into icd10_description_word (word)
    select distinct word from (
      select regexp_split_to_table(lower(long_description || ' ' || short_description), '[^a-z0-9]+') as word from icd10_code
    ) as words
    where word <> '' and word !~ '^[0-9]+$'`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table icd10_description_word`.execute(db);
}
