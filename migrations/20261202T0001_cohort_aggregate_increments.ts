import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * Incremental maintenance of the cohort aggregates (src/db/cohort-aggregate.repository.ts, `applyAggregateIncrements`):
 * a daily ingest brings the active generation up to date for the encounters it added, replaced or removed instead of
 * building a new generation from the whole cohort.
 *
 * cohort_aggregate_touched holds, for each encounter changed since the active generation was built (or last brought up
 * to date), the version of it that the generation counts (`counted`; false: it counts none, e.g. a new encounter),
 * placement and raw item codes. Statement triggers with transition tables record it at the first change: an insert
 * of an encounter, an update of one, a deletion or insertion of items. They take the rebuild lock shared, as the
 * deletion trigger does, so a rebuild or an increment sees every change before it or none. A deletion of a touched
 * encounter is left to the increment (which subtracts the counted version): the deletion trigger subtracts only
 * untouched ones. A bulk load drops the four triggers (src/db/cohort-encounter.repository.ts) and is followed by a
 * full rebuild; `increments_valid` is false when a generation cannot be brought up to date that way (a TRUNCATE).
 * Also a partial index of the items that name a clinician, for the reputation recompute.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create table cohort_aggregate_touched as
    select encounter_key, true as counted, complaint_concepts, sex, age_years, acuity, site, start_year, icd10_categories,
      admitted, returned_72h, ed_los_minutes, hospital_los_minutes, cast(null as text[]) as item_codes
    from cohort_encounter with no data`.execute(db);
  await sql`alter table cohort_aggregate_touched add primary key (encounter_key)`.execute(db);
  await sql`alter table cohort_aggregate_touched alter column counted set not null`.execute(db);
  // Bumped by every increment: part of the data version that caches and snapshots follow.
  await sql`alter table cohort_aggregate_generation add column revision integer not null default 0`.execute(db);
  await sql`alter table cohort_aggregate_generation add column increments_valid boolean not null default true`.execute(db);

  await sql`
    create function cohort_aggregate_touch_inserted_encounters() returns trigger language plpgsql as $$
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      if not exists (select 1 from cohort_aggregate_generation where status = 'active') then return null; end if;
      insert into cohort_aggregate_touched (encounter_key, counted)
      select encounter_key, false from inserted_rows
      on conflict (encounter_key) do nothing;
      return null;
    end $$`.execute(db);
  await sql`
    create function cohort_aggregate_touch_updated_encounters() returns trigger language plpgsql as $$
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      if not exists (select 1 from cohort_aggregate_generation where status = 'active') then return null; end if;
      insert into cohort_aggregate_touched
      select old_row.encounter_key, true, old_row.complaint_concepts, old_row.sex, old_row.age_years, old_row.acuity, old_row.site,
        old_row.start_year, old_row.icd10_categories, old_row.admitted, old_row.returned_72h, old_row.ed_los_minutes,
        old_row.hospital_los_minutes, coalesce(items.codes, '{}')
      from old_rows as old_row
      left join (
        select item.encounter_key, array_agg(item.item_code) as codes from encounter_item as item
        where item.encounter_key in (select encounter_key from old_rows)
        group by item.encounter_key
      ) as items on items.encounter_key = old_row.encounter_key
      on conflict (encounter_key) do nothing;
      return null;
    end $$`.execute(db);
  await sql`
    create function cohort_aggregate_touch_deleted_items() returns trigger language plpgsql as $$
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      if not exists (select 1 from cohort_aggregate_generation where status = 'active') then return null; end if;
      -- Items of an encounter being deleted as a whole are gone with it (the deletion trigger has subtracted it).
      insert into cohort_aggregate_touched
      select encounter.encounter_key, true, encounter.complaint_concepts, encounter.sex, encounter.age_years, encounter.acuity,
        encounter.site, encounter.start_year, encounter.icd10_categories, encounter.admitted, encounter.returned_72h,
        encounter.ed_los_minutes, encounter.hospital_los_minutes, items.codes
      from (
        select encounter_key, array_agg(item_code) as codes from (
          select encounter_key, item_code from deleted_rows
          union
          select item.encounter_key, item.item_code from encounter_item as item
          where item.encounter_key in (select encounter_key from deleted_rows)
        ) as before
        group by encounter_key
      ) as items
      join cohort_encounter as encounter on encounter.encounter_key = items.encounter_key
      on conflict (encounter_key) do nothing;
      return null;
    end $$`.execute(db);
  await sql`
    create function cohort_aggregate_touch_inserted_items() returns trigger language plpgsql as $$
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      if not exists (select 1 from cohort_aggregate_generation where status = 'active') then return null; end if;
      -- Usually every encounter here was touched already (inserted, or its items deleted first): only the others are read.
      insert into cohort_aggregate_touched
      select encounter.encounter_key, true, encounter.complaint_concepts, encounter.sex, encounter.age_years, encounter.acuity,
        encounter.site, encounter.start_year, encounter.icd10_categories, encounter.admitted, encounter.returned_72h,
        encounter.ed_los_minutes, encounter.hospital_los_minutes,
        coalesce((
          select array_agg(item.item_code) from encounter_item as item
          where item.encounter_key = encounter.encounter_key
            and not exists (
              select 1 from inserted_rows as inserted
              where inserted.encounter_key = item.encounter_key and inserted.item_code = item.item_code)), '{}')
      from cohort_encounter as encounter
      where encounter.encounter_key in (
        select distinct inserted.encounter_key from inserted_rows as inserted
        where not exists (select 1 from cohort_aggregate_touched as touched where touched.encounter_key = inserted.encounter_key))
      on conflict (encounter_key) do nothing;
      return null;
    end $$`.execute(db);
  await createTouchTriggers(db);
  // The clinician reputation reads only the items that name a clinician (src/db/reputation.repository.ts): a few per
  // cent of them, found here instead of by a scan of every item.
  await sql`
    create index if not exists encounter_item_named_clinician on encounter_item (encounter_key, item_code, clinician_key)
    where clinician_key is not null`.execute(db);

  // The deletion trigger of migration 0006, leaving touched encounters to the increment.
  await createSubtractFunction(db, true);
  // A TRUNCATE records no touched rows: such a generation is rebuilt, never brought up to date.
  await sql`
    create or replace function cohort_aggregate_mark_stale() returns trigger language plpgsql as $$
    begin
      update cohort_aggregate_generation set stale = true where status in ('active', 'retired', 'building') and not stale;
      if tg_op = 'TRUNCATE' then
        update cohort_aggregate_generation set increments_valid = false where increments_valid;
      end if;
      return null;
    end $$`.execute(db);
}

/** The deletion trigger's function of migration 0006; with `skipTouched`, touched encounters are left to the increment. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
async function createSubtractFunction(db: Kysely<any>, skipTouched: boolean): Promise<void> {
  await sql`
    create or replace function cohort_aggregate_subtract() returns trigger language plpgsql as $$
    declare
      kept record;
      cells bigint[];
    begin
      perform pg_advisory_xact_lock_shared(72060006);
${sql.raw(skipTouched ? 'if exists (select 1 from cohort_aggregate_touched where encounter_key = old.encounter_key) then return old; end if;' : '')}
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
}

/** The four statement triggers; the app recreates them after a bulk load with the same statements. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
async function createTouchTriggers(db: Kysely<any>): Promise<void> {
  await sql`
    create trigger cohort_encounter_aggregate_touch_insert after insert on cohort_encounter
    referencing new table as inserted_rows for each statement execute function cohort_aggregate_touch_inserted_encounters()`.execute(db);
  await sql`
    create trigger cohort_encounter_aggregate_touch_update after update on cohort_encounter
    referencing old table as old_rows for each statement execute function cohort_aggregate_touch_updated_encounters()`.execute(db);
  await sql`
    create trigger encounter_item_aggregate_touch_delete after delete on encounter_item
    referencing old table as deleted_rows for each statement execute function cohort_aggregate_touch_deleted_items()`.execute(db);
  await sql`
    create trigger encounter_item_aggregate_touch_insert after insert on encounter_item
    referencing new table as inserted_rows for each statement execute function cohort_aggregate_touch_inserted_items()`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index if exists encounter_item_named_clinician`.execute(db);
  await sql`drop trigger if exists encounter_item_aggregate_touch_insert on encounter_item`.execute(db);
  await sql`drop trigger if exists encounter_item_aggregate_touch_delete on encounter_item`.execute(db);
  await sql`drop trigger if exists cohort_encounter_aggregate_touch_update on cohort_encounter`.execute(db);
  await sql`drop trigger if exists cohort_encounter_aggregate_touch_insert on cohort_encounter`.execute(db);
  await sql`drop function if exists cohort_aggregate_touch_inserted_items()`.execute(db);
  await sql`drop function if exists cohort_aggregate_touch_deleted_items()`.execute(db);
  await sql`drop function if exists cohort_aggregate_touch_updated_encounters()`.execute(db);
  await sql`drop function if exists cohort_aggregate_touch_inserted_encounters()`.execute(db);
  await sql`alter table cohort_aggregate_generation drop column if exists increments_valid`.execute(db);
  await sql`alter table cohort_aggregate_generation drop column if exists revision`.execute(db);
  await createSubtractFunction(db, false);
  await sql`drop table if exists cohort_aggregate_touched`.execute(db);
  // The staleness trigger of migration 0006 as it was.
  await sql`
    create or replace function cohort_aggregate_mark_stale() returns trigger language plpgsql as $$
    begin
      update cohort_aggregate_generation set stale = true where status in ('active', 'retired', 'building') and not stale;
      return null;
    end $$`.execute(db);
}
