import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * Precomputed cohort statistics (src/db/cohort-aggregate.repository.ts): counts of encounters, items and lengths of
 * stay per cell of (complaint concept, sex, age in years, acuity, ICD-10 category set[, site][, start year]), so that
 * a hook sums a few cells instead of scanning its cohort; the cells of complaint concept '*' hold every encounter once,
 * for cohorts without a complaint criterion. Cells belong to a generation: a rebuild writes a new one
 * beside the active one and switches in one transaction, so serving never stops.
 *
 * Deletions (opt-outs) reach every kept generation through a row trigger, in the deleting transaction; an update of
 * a column that places an encounter in a cell marks the generations stale (the exact SQL answers until the next
 * rebuild); a change of the lab panels, which fold analytes into the items counted, is caught by a fingerprint.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('cohort_aggregate_generation')
    .addColumn('generation', 'serial', (column) => column.primaryKey())
    .addColumn('status', 'text', (column) => column.notNull().check(sql`status in ('building', 'active', 'retired')`))
    .addColumn('by_site', 'boolean', (column) => column.notNull())
    .addColumn('by_start_year', 'boolean', (column) => column.notNull())
    .addColumn('stale', 'boolean', (column) => column.notNull().defaultTo(false))
    .addColumn('panel_fingerprint', 'text', (column) => column.notNull())
    .addColumn('built_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('build_ms', 'integer')
    // Every encounter, with or without a complaint: the baseline's size.
    .addColumn('encounters', 'integer', (column) => column.notNull().defaultTo(0))
    .execute();
  await sql`create unique index cohort_aggregate_generation_one_active on cohort_aggregate_generation (status) where status = 'active'`.execute(db);

  await db.schema
    .createTable('cohort_aggregate_state')
    .addColumn('id', 'integer', (column) => column.primaryKey().check(sql`id = 1`))
    .addColumn('panel_fingerprint', 'text', (column) => column.notNull())
    .execute();

  await db.schema
    .createTable('cohort_aggregate_cell')
    .addColumn('cell_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('generation', 'integer', (column) => column.notNull())
    .addColumn('complaint_concept', 'text', (column) => column.notNull())
    .addColumn('sex', 'text', (column) => column.notNull())
    .addColumn('age_years', 'smallint', (column) => column.notNull())
    .addColumn('acuity', 'smallint')
    // '' and 0 when the generation is not split by site or start year.
    .addColumn('site', 'text', (column) => column.notNull())
    .addColumn('start_year', 'smallint', (column) => column.notNull())
    // Sorted and distinct: one cell per set, whatever order the encounter listed its categories in.
    .addColumn('icd10_categories', sql`text[]`, (column) => column.notNull())
    .addColumn('encounters', 'integer', (column) => column.notNull())
    .addColumn('admitted', 'integer', (column) => column.notNull())
    .addColumn('returned_72h', 'integer', (column) => column.notNull())
    .execute();
  await db.schema
    .createIndex('cohort_aggregate_cell_lookup')
    .on('cohort_aggregate_cell')
    .columns(['generation', 'complaint_concept', 'sex', 'age_years'])
    .execute();

  await db.schema
    .createTable('cohort_aggregate_item')
    .addColumn('cell_id', 'bigint', (column) => column.notNull())
    .addColumn('item_code', 'text', (column) => column.notNull())
    .addColumn('generation', 'integer', (column) => column.notNull())
    .addColumn('encounters', 'integer', (column) => column.notNull())
    .addPrimaryKeyConstraint('cohort_aggregate_item_pkey', ['cell_id', 'item_code'])
    .execute();
  await db.schema.createIndex('cohort_aggregate_item_generation').on('cohort_aggregate_item').column('generation').execute();

  await db.schema
    .createTable('cohort_aggregate_length_of_stay')
    .addColumn('cell_id', 'bigint', (column) => column.notNull())
    .addColumn('kind', 'text', (column) => column.notNull().check(sql`kind in ('ed', 'hospital')`))
    .addColumn('minutes', 'integer', (column) => column.notNull())
    .addColumn('generation', 'integer', (column) => column.notNull())
    .addColumn('encounters', 'integer', (column) => column.notNull())
    .addPrimaryKeyConstraint('cohort_aggregate_length_of_stay_pkey', ['cell_id', 'kind', 'minutes'])
    .execute();
  await db.schema.createIndex('cohort_aggregate_length_of_stay_generation').on('cohort_aggregate_length_of_stay').column('generation').execute();

  await db.schema
    .createTable('cohort_aggregate_baseline_item')
    .addColumn('generation', 'integer', (column) => column.notNull())
    .addColumn('item_code', 'text', (column) => column.notNull())
    .addColumn('encounters', 'integer', (column) => column.notNull())
    .addPrimaryKeyConstraint('cohort_aggregate_baseline_item_pkey', ['generation', 'item_code'])
    .execute();

  await db.schema
    .createTable('cohort_aggregate_item_detail')
    .addColumn('generation', 'integer', (column) => column.notNull())
    .addColumn('item_code', 'text', (column) => column.notNull())
    .addColumn('category', 'text', (column) => column.notNull())
    .addColumn('kind', 'text', (column) => column.notNull())
    .addColumn('display', 'text', (column) => column.notNull())
    .addColumn('code_system', 'text')
    .addColumn('code', 'text')
    // Every encounter row of the item has the same attributes: any cohort's min() of them is these.
    .addColumn('uniform', 'boolean', (column) => column.notNull())
    .addPrimaryKeyConstraint('cohort_aggregate_item_detail_pkey', ['generation', 'item_code'])
    .execute();

  await sql`
    create function cohort_aggregate_panel_fingerprint() returns text language sql stable as $$
      select md5(
        coalesce((select string_agg(panel_code || '=' || display, ',' order by panel_code) from lab_panel), '') || '|' ||
        coalesce((select string_agg(analyte_code || '>' || panel_code, ',' order by analyte_code) from lab_panel_member), ''))
    $$`.execute(db);
  await sql`insert into cohort_aggregate_state (id, panel_fingerprint) values (1, cohort_aggregate_panel_fingerprint())`.execute(db);
  await sql`
    create function cohort_aggregate_panels_changed() returns trigger language plpgsql as $$
    begin
      update cohort_aggregate_state set panel_fingerprint = cohort_aggregate_panel_fingerprint() where id = 1;
      return null;
    end $$`.execute(db);
  for (const table of ['lab_panel', 'lab_panel_member']) {
    await sql`
      create trigger ${sql.raw(`${table}_cohort_aggregate`)} after insert or update or delete or truncate on ${sql.table(table)}
      for each statement execute function cohort_aggregate_panels_changed()`.execute(db);
  }

  // A rebuild holds the exclusive lock while it reads the cohort and writes a generation; a deletion takes it
  // shared, so it is applied either before the rebuild reads or to the generation the rebuild wrote.
  await sql`
    create function cohort_aggregate_subtract() returns trigger language plpgsql as $$
    declare
      kept record;
      cells bigint[];
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      for kept in
        select generation, by_site, by_start_year from cohort_aggregate_generation
        where status in ('active', 'retired') and built_at >= old.ingested_at
      loop
        update cohort_aggregate_generation set encounters = encounters - 1 where generation = kept.generation;
        update cohort_aggregate_baseline_item set encounters = encounters - 1
        where generation = kept.generation and item_code in (
          select distinct coalesce(panel.panel_code, item.item_code)
          from encounter_item as item
          left join lab_panel_member as member on member.analyte_code = item.item_code
          left join lab_panel as panel on panel.panel_code = member.panel_code
          where item.encounter_key = old.encounter_key);
        select array_agg(cell_id) into cells from cohort_aggregate_cell as cell
        where cell.generation = kept.generation
          and cell.complaint_concept = any(old.complaint_concepts || array['*'])
          and cell.sex = old.sex
          and cell.age_years = old.age_years
          and cell.acuity is not distinct from old.acuity
          and cell.site = case when kept.by_site then old.site else '' end
          and cell.start_year = case when kept.by_start_year then old.start_year else 0 end
          and cell.icd10_categories = array(select distinct category from unnest(old.icd10_categories) as category order by category);
        continue when cells is null;
        update cohort_aggregate_cell
        set encounters = encounters - 1,
            admitted = admitted - case when old.admitted then 1 else 0 end,
            returned_72h = returned_72h - case when old.returned_72h then 1 else 0 end
        where cell_id = any(cells);
        update cohort_aggregate_item set encounters = encounters - 1
        where cell_id = any(cells) and item_code in (
          select distinct coalesce(panel.panel_code, item.item_code)
          from encounter_item as item
          left join lab_panel_member as member on member.analyte_code = item.item_code
          left join lab_panel as panel on panel.panel_code = member.panel_code
          where item.encounter_key = old.encounter_key);
        if old.ed_los_minutes is not null then
          update cohort_aggregate_length_of_stay set encounters = encounters - 1
          where cell_id = any(cells) and kind = 'ed' and minutes = old.ed_los_minutes;
        end if;
        if old.admitted and old.hospital_los_minutes is not null then
          update cohort_aggregate_length_of_stay set encounters = encounters - 1
          where cell_id = any(cells) and kind = 'hospital' and minutes = old.hospital_los_minutes;
        end if;
      end loop;
      return old;
    end $$`.execute(db);
  await sql`
    create trigger cohort_encounter_aggregate_delete before delete on cohort_encounter
    for each row execute function cohort_aggregate_subtract()`.execute(db);

  await sql`
    create function cohort_aggregate_mark_stale() returns trigger language plpgsql as $$
    begin
      update cohort_aggregate_generation set stale = true where status in ('active', 'retired', 'building') and not stale;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger cohort_encounter_aggregate_update after update on cohort_encounter
    for each row when (
      old.complaint_concepts is distinct from new.complaint_concepts or old.sex is distinct from new.sex
      or old.age_years is distinct from new.age_years or old.acuity is distinct from new.acuity
      or old.site is distinct from new.site or old.start_year is distinct from new.start_year
      or old.icd10_categories is distinct from new.icd10_categories or old.admitted is distinct from new.admitted
      or old.returned_72h is distinct from new.returned_72h or old.ed_los_minutes is distinct from new.ed_los_minutes
      or old.hospital_los_minutes is distinct from new.hospital_los_minutes or old.encounter_key is distinct from new.encounter_key)
    execute function cohort_aggregate_mark_stale()`.execute(db);
  await sql`
    create trigger cohort_encounter_aggregate_truncate after truncate on cohort_encounter
    for each statement execute function cohort_aggregate_mark_stale()`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger if exists cohort_encounter_aggregate_truncate on cohort_encounter`.execute(db);
  await sql`drop trigger if exists cohort_encounter_aggregate_update on cohort_encounter`.execute(db);
  await sql`drop trigger if exists cohort_encounter_aggregate_delete on cohort_encounter`.execute(db);
  await sql`drop trigger if exists lab_panel_cohort_aggregate on lab_panel`.execute(db);
  await sql`drop trigger if exists lab_panel_member_cohort_aggregate on lab_panel_member`.execute(db);
  await sql`drop function if exists cohort_aggregate_mark_stale()`.execute(db);
  await sql`drop function if exists cohort_aggregate_subtract()`.execute(db);
  await sql`drop function if exists cohort_aggregate_panels_changed()`.execute(db);
  await sql`drop function if exists cohort_aggregate_panel_fingerprint()`.execute(db);
  for (const table of [
    'cohort_aggregate_item_detail',
    'cohort_aggregate_baseline_item',
    'cohort_aggregate_length_of_stay',
    'cohort_aggregate_item',
    'cohort_aggregate_cell',
    'cohort_aggregate_state',
    'cohort_aggregate_generation',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
