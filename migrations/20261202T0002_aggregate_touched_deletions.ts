import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * A deletion (an opt-out) of an encounter changed since the active aggregate generation was brought up to date
 * subtracts, at once and in the deleting transaction, the version the generation counts (cohort_aggregate_touched,
 * migration 20261202T0001) instead of leaving it to the next increment: an opted-out patient leaves the counts hooks
 * read at once, also while an interrupted ingest's changes wait for their increment.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function cohort_aggregate_subtract() returns trigger language plpgsql as $$
    declare
      kept record;
      cells bigint[];
      recorded cohort_aggregate_touched%rowtype;
      version cohort_aggregate_touched%rowtype;
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      select * into recorded from cohort_aggregate_touched where encounter_key = old.encounter_key;
      if found then
        -- Changed since the active generation was brought up to date: it counts the recorded version, or none. That
        -- version goes now (the increment then has nothing left to take out); retired generations are never read again.
        if not recorded.counted then return old; end if;
        version := recorded;
        update cohort_aggregate_touched set counted = false where encounter_key = old.encounter_key;
      else
        version := row(old.encounter_key, true, old.complaint_concepts, old.sex, old.age_years, old.acuity, old.site, old.start_year,
          old.icd10_categories, old.admitted, old.returned_72h, old.ed_los_minutes, old.hospital_los_minutes,
          array(select item.item_code from encounter_item as item where item.encounter_key = old.encounter_key));
      end if;
      for kept in
        select generation, by_site, by_start_year from cohort_aggregate_generation
        where case when recorded.encounter_key is not null then status = 'active' else status in ('active', 'retired') and built_at >= old.ingested_at end
      loop
        update cohort_aggregate_generation set encounters = encounters - 1 where generation = kept.generation;
        update cohort_aggregate_baseline_item set encounters = encounters - 1
        where generation = kept.generation and item_code in (
          select distinct coalesce(panel.panel_code, code.item_code)
          from unnest(version.item_codes) as code (item_code)
          left join lab_panel_member as member on member.analyte_code = code.item_code
          left join lab_panel as panel on panel.panel_code = member.panel_code);
        select array_agg(cell_id) into cells from cohort_aggregate_cell as cell
        where cell.generation = kept.generation
          and cell.complaint_concept = any(version.complaint_concepts || array['*'])
          and cell.sex = version.sex
          and cell.age_years = version.age_years
          and cell.acuity is not distinct from version.acuity
          and cell.site = case when kept.by_site then version.site else '' end
          and cell.start_year = case when kept.by_start_year then version.start_year else 0 end
          and cell.icd10_categories = array(select distinct category from unnest(version.icd10_categories) as category order by category);
        continue when cells is null;
        update cohort_aggregate_cell
        set encounters = encounters - 1,
            admitted = admitted - case when version.admitted then 1 else 0 end,
            returned_72h = returned_72h - case when version.returned_72h then 1 else 0 end
        where cell_id = any(cells);
        update cohort_aggregate_item set encounters = encounters - 1
        where cell_id = any(cells) and item_code in (
          select distinct coalesce(panel.panel_code, code.item_code)
          from unnest(version.item_codes) as code (item_code)
          left join lab_panel_member as member on member.analyte_code = code.item_code
          left join lab_panel as panel on panel.panel_code = member.panel_code);
        if version.ed_los_minutes is not null then
          update cohort_aggregate_length_of_stay set encounters = encounters - 1
          where cell_id = any(cells) and kind = 'ed' and minutes = version.ed_los_minutes;
        end if;
        if version.admitted and version.hospital_los_minutes is not null then
          update cohort_aggregate_length_of_stay set encounters = encounters - 1
          where cell_id = any(cells) and kind = 'hospital' and minutes = version.hospital_los_minutes;
        end if;
      end loop;
      return old;
    end $$`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  // As migration 20261202T0001 left it: touched encounters are left to the increment.
  await sql`
    create or replace function cohort_aggregate_subtract() returns trigger language plpgsql as $$
    declare
      kept record;
      cells bigint[];
    begin
      perform pg_advisory_xact_lock_shared(72060006);
      if exists (select 1 from cohort_aggregate_touched where encounter_key = old.encounter_key) then return old; end if;
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
