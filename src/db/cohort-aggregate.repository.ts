import { sql, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { Rules } from '../cohort/rules.js';
import type {
  BaselineStatistics,
  CohortCriteria,
  CohortSource,
  CohortStatistics,
  DescribeCohortOptions,
  ItemCategory,
  ItemCount,
} from '../cohort/types.js';
import type { VersionedCohortSource } from '../cohort/cached-source.js';
import { aggregatesAnswer, anyComplaintConcept } from '../cohort/aggregate-snapshot.js';
import { icd10OverlapCondition, panelSystem, SqlCohortSource, textArray } from './cohort-statistics.repository.js';
import type { Database } from './database.js';
import { findActiveRuleSet } from './rule-set.repository.js';

/**
 * Precomputed cohort statistics (migration 0006): per cell of (complaint concept, sex, age in years, acuity, sorted
 * ICD-10 category set[, site][, start year]) the encounters, admissions, 72-hour returns, the encounters per item
 * (lab analytes folded into their panel) and per length of stay in minutes. A hook sums the cells its criteria
 * select instead of scanning its cohort; every answer equals the exact SQL path's (SqlCohortSource), and criteria the
 * cells cannot answer exactly (exact ICD-10 codes, several complaint concepts, no complaint, a site or look-back
 * window the generation is not split by, clinician weighting) go to that path.
 *
 * Why these cells answer exactly: an encounter lies in one cell per complaint concept it has, and criteria name
 * one concept, so no encounter is counted twice; its whole category set is part of the cell, so any, all and
 * Jaccard overlaps are decided per cell exactly as per encounter; medians are read off the summed histogram.
 */

/** Held exclusively by a rebuild, shared by the deletion trigger (see the migration). */
const rebuildLock = 72060006;

/** Which optional columns split the cells: each multiplies their number, so only when the rules need it. */
export interface AggregateDimensions {
  readonly bySite: boolean;
  readonly byStartYear: boolean;
}

/** The dimensions these rules need: site only with a site filter, start year only with a look-back window. */
export function aggregateDimensionsFor(rules: Rules): AggregateDimensions {
  return { bySite: rules.sites !== null, byStartYear: rules.lookbackYears !== null };
}

export interface AggregateRebuild {
  readonly generation: number;
  readonly cells: number;
  readonly durationMs: number;
}

/**
 * The folded items of each encounter, exactly as `countItems` folds them (one row per encounter and item). Items
 * outside any panel are one row per encounter already (the key of encounter_item): only the analytes of panels
 * need the distinct, which sorts or hashes (measured at 100,000 encounters: 7.4 s for a distinct over every item).
 */
const foldedItems = sql`
  select item.encounter_key, item.item_code
  from encounter_item as item
  where not exists (
    select 1 from lab_panel_member as member join lab_panel as panel on panel.panel_code = member.panel_code
    where member.analyte_code = item.item_code)
  union all
  select distinct item.encounter_key, panel.panel_code
  from encounter_item as item
  join lab_panel_member as member on member.analyte_code = item.item_code
  join lab_panel as panel on panel.panel_code = member.panel_code`;

/**
 * Writes a new generation of aggregates from the cohort as it is now and makes it the active one, in one
 * transaction: hooks keep reading the previous generation until the switch. The generation before that is dropped.
 */
export async function rebuildCohortAggregates(db: Kysely<Database>, dimensions: AggregateDimensions): Promise<AggregateRebuild> {
  const started = Date.now();
  const result = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${rebuildLock})`.execute(trx);
    // Hash aggregates over every item that fit in memory instead of spilling in 4 MB pieces, and no JIT compiling
    // for one-off statements (measured at 100,000 encounters: the folded items in 3.3 s instead of 6.0 s).
    await sql`set local work_mem = '256MB'`.execute(trx);
    await sql`set local jit = off`.execute(trx);
    const inserted = await sql<{ generation: number }>`
      insert into cohort_aggregate_generation (status, by_site, by_start_year, panel_fingerprint, encounters)
      values ('building', ${dimensions.bySite}, ${dimensions.byStartYear}, cohort_aggregate_panel_fingerprint(),
              (select cast(count(*) as integer) from cohort_encounter))
      returning generation`.execute(trx);
    const generation = Number(inserted.rows[0]!.generation);
    const generationValue = sql`cast(${generation} as integer)`;
    await sql`
      create temp table cohort_aggregate_member on commit drop as
      select encounter.encounter_key, concept.complaint_concept, encounter.sex, encounter.age_years, encounter.acuity,
        case when cast(${dimensions.bySite} as boolean) then encounter.site else '' end as site,
        cast(case when cast(${dimensions.byStartYear} as boolean) then encounter.start_year else 0 end as smallint) as start_year,
        array(select distinct category from unnest(encounter.icd10_categories) as category order by category) as icd10_categories,
        encounter.admitted, encounter.returned_72h, encounter.ed_los_minutes, encounter.hospital_los_minutes
      from cohort_encounter as encounter
      cross join lateral (
        select distinct unnest(encounter.complaint_concepts) as complaint_concept
        union all select cast(${anyComplaintConcept} as text)
      ) as concept`.execute(trx);
    // Temporary tables have no statistics until analysed: without them the planner sorts text keys for merge joins
    // (measured at 100,000 encounters: the cell items 10.3 s -> 5.8 s, the stays 4.4 s -> 0.5 s).
    await sql`analyze cohort_aggregate_member`.execute(trx);
    await sql`
      insert into cohort_aggregate_cell
        (generation, complaint_concept, sex, age_years, acuity, site, start_year, icd10_categories, encounters, admitted, returned_72h)
      select ${generationValue}, complaint_concept, sex, age_years, acuity, site, start_year, icd10_categories,
        count(*), count(*) filter (where admitted), count(*) filter (where returned_72h)
      from cohort_aggregate_member
      group by complaint_concept, sex, age_years, acuity, site, start_year, icd10_categories`.execute(trx);
    await sql`
      create temp table cohort_aggregate_member_cell on commit drop as
      select member.encounter_key, cell.cell_id, member.admitted, member.ed_los_minutes, member.hospital_los_minutes
      from cohort_aggregate_member as member
      join cohort_aggregate_cell as cell
        on cell.generation = ${generation} and cell.complaint_concept = member.complaint_concept and cell.sex = member.sex
        and cell.age_years = member.age_years and coalesce(cell.acuity, -1) = coalesce(member.acuity, -1)
        and cell.site = member.site and cell.start_year = member.start_year and cell.icd10_categories = member.icd10_categories`.execute(trx);
    await sql`analyze cohort_aggregate_member_cell`.execute(trx);
    await sql`create temp table cohort_aggregate_folded on commit drop as ${foldedItems}`.execute(trx);
    await sql`analyze cohort_aggregate_folded`.execute(trx);
    // One row per (encounter, folded item), and an encounter is in a cell at most once: count(*) counts encounters.
    await sql`
      insert into cohort_aggregate_item (cell_id, item_code, generation, encounters)
      select member.cell_id, folded.item_code, ${generationValue}, count(*)
      from cohort_aggregate_member_cell as member
      join cohort_aggregate_folded as folded on folded.encounter_key = member.encounter_key
      group by member.cell_id, folded.item_code`.execute(trx);
    await sql`
      insert into cohort_aggregate_baseline_item (generation, item_code, encounters)
      select ${generationValue}, item_code, count(*) from cohort_aggregate_folded group by item_code`.execute(trx);
    await sql`
      insert into cohort_aggregate_length_of_stay (cell_id, kind, minutes, generation, encounters)
      select cell_id, 'ed', ed_los_minutes, ${generationValue}, count(*) from cohort_aggregate_member_cell
      where ed_los_minutes is not null group by cell_id, ed_los_minutes
      union all
      select cell_id, 'hospital', hospital_los_minutes, ${generationValue}, count(*) from cohort_aggregate_member_cell
      where admitted and hospital_los_minutes is not null group by cell_id, hospital_los_minutes`.execute(trx);
    // The exact path shows min() of each attribute over the cohort's rows: the same for every cohort when uniform.
    // Summed up per item code first (a few thousand codes), then folded: one hash over the items instead of a
    // count(distinct …) of each attribute (measured: 10.8 s at 100,000 encounters). count(distinct x) = 1 is
    // "some x is not null and min(x) = max(x)"; a panel's kind, display, coding system and code are the panel's.
    await sql`
      insert into cohort_aggregate_item_detail (generation, item_code, category, kind, display, code_system, code, uniform)
      select ${generationValue}, item_code, min(min_category), min(min_kind), min(min_display), min(min_system), min(min_code),
        min(min_category) = max(max_category) and min(min_kind) = max(max_kind) and min(min_display) = max(max_display)
        and (sum(systems) = 0 or (sum(systems) = sum(rows) and min(min_system) = max(max_system)))
        and (sum(codes) = 0 or (sum(codes) = sum(rows) and min(min_code) = max(max_code)))
      from (
        select coalesce(panel.panel_code, raw.item_code) as item_code, raw.rows, raw.min_category, raw.max_category,
          case when panel.panel_code is null then raw.min_kind else 'lab-panel' end as min_kind,
          case when panel.panel_code is null then raw.max_kind else 'lab-panel' end as max_kind,
          coalesce(panel.display, raw.min_display) as min_display, coalesce(panel.display, raw.max_display) as max_display,
          case when panel.panel_code is null then raw.systems else raw.rows end as systems,
          case when panel.panel_code is null then raw.min_system else ${panelSystem} end as min_system,
          case when panel.panel_code is null then raw.max_system else ${panelSystem} end as max_system,
          case when panel.panel_code is null then raw.codes else raw.rows end as codes,
          coalesce(panel.panel_code, raw.min_code) as min_code, coalesce(panel.panel_code, raw.max_code) as max_code
        from (
          select item_code, count(*) as rows, min(category) as min_category, max(category) as max_category,
            min(kind) as min_kind, max(kind) as max_kind, min(display) as min_display, max(display) as max_display,
            count(code_system) as systems, min(code_system) as min_system, max(code_system) as max_system,
            count(code) as codes, min(code) as min_code, max(code) as max_code
          from encounter_item group by item_code
        ) as raw
        left join lab_panel_member as member on member.analyte_code = raw.item_code
        left join lab_panel as panel on panel.panel_code = member.panel_code
      ) as folded
      group by item_code`.execute(trx);

    // Keep the generation being replaced (a hook may be reading it right now); drop the ones before it.
    const older = sql`(select generation from cohort_aggregate_generation where status = 'retired')`;
    for (const table of ['cohort_aggregate_item', 'cohort_aggregate_length_of_stay', 'cohort_aggregate_cell', 'cohort_aggregate_baseline_item', 'cohort_aggregate_item_detail']) {
      await sql`delete from ${sql.table(table)} where generation in ${older}`.execute(trx);
    }
    await sql`delete from cohort_aggregate_generation where status = 'retired'`.execute(trx);
    await sql`update cohort_aggregate_generation set status = 'retired' where status = 'active'`.execute(trx);
    await sql`
      update cohort_aggregate_generation set status = 'active', build_ms = ${Date.now() - started}
      where generation = ${generation}`.execute(trx);
    await sql`update cohort_aggregate_state set panel_fingerprint = cohort_aggregate_panel_fingerprint() where id = 1`.execute(trx);
    // Under the lock, every change before it is in this generation and every later one waits: none is left to apply.
    await sql`delete from cohort_aggregate_touched`.execute(trx);
    const cells = await sql<{ cells: number }>`
      select cast(count(*) as integer) as cells from cohort_aggregate_cell where generation = ${generation}`.execute(trx);
    return { generation, cells: Number(cells.rows[0]!.cells) };
  });
  for (const table of ['cohort_aggregate_cell', 'cohort_aggregate_item', 'cohort_aggregate_length_of_stay', 'cohort_aggregate_baseline_item', 'cohort_aggregate_item_detail']) {
    await sql`analyze ${sql.table(table)}`.execute(db);
  }
  return { ...result, durationMs: Date.now() - started };
}

/** What `refreshCohortAggregates` did. */
export type AggregateRefresh = (AggregateRebuild & { readonly method: 'rebuild' }) | (AggregateIncrement & { readonly method: 'increment' });

/**
 * Brings the aggregates up to date for the active rules (split by what they need); the call at the end of an ingest.
 * The active generation is brought up to date with the encounters changed since it was built
 * (`applyAggregateIncrements`) when it can be: split as the rules need, built under the current lab panels, and
 * every change since recorded. Otherwise, or with `full` (after a bulk load, which records none), a new generation
 * is built from the whole cohort. Both give the same statistics.
 */
export async function refreshCohortAggregates(db: Kysely<Database>, options: { readonly full?: boolean } = {}): Promise<AggregateRefresh> {
  const active = await findActiveRuleSet(db);
  const dimensions = active ? aggregateDimensionsFor(active.rules) : { bySite: false, byStartYear: false };
  if (!options.full) {
    const increment = await applyAggregateIncrements(db, dimensions);
    if (increment !== null) return { ...increment, method: 'increment' };
  }
  return { ...(await rebuildCohortAggregates(db, dimensions)), method: 'rebuild' };
}

export interface AggregateIncrement {
  readonly generation: number;
  /** Encounters whose counted version was taken out, and encounters added in their current version. */
  readonly removed: number;
  readonly added: number;
  readonly durationMs: number;
}

/**
 * Applies to the active generation, in place and in one transaction, what changed since it was built or last brought
 * up to date (cohort_aggregate_touched, recorded by triggers: migration 20261202T0001): each touched encounter's
 * counted version is subtracted from its cells, items, lengths of stay and the baseline, and its current version, if
 * it still exists, added. Item details (min() of each attribute, and whether uniform) are recomputed only for the
 * items whose rows an increment may have changed otherwise. Null, with nothing done, when the generation cannot be
 * brought up to date that way (none, other dimensions, other lab panels, a TRUNCATE since): rebuild it then.
 */
export async function applyAggregateIncrements(db: Kysely<Database>, dimensions: AggregateDimensions): Promise<AggregateIncrement | null> {
  const started = Date.now();
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${rebuildLock})`.execute(trx);
    const found = await sql<{ generation: number }>`
      select generation.generation from cohort_aggregate_generation as generation
      join cohort_aggregate_state as state on state.id = 1
      where generation.status = 'active' and generation.increments_valid
        and generation.by_site = ${dimensions.bySite} and generation.by_start_year = ${dimensions.byStartYear}
        and generation.panel_fingerprint = state.panel_fingerprint
        and state.panel_fingerprint = cohort_aggregate_panel_fingerprint()`.execute(trx);
    if (found.rows.length === 0) return null;
    const generation = Number(found.rows[0]!.generation);
    const generationValue = sql`cast(${generation} as integer)`;
    await sql`set local work_mem = '256MB'`.execute(trx);
    await sql`set local jit = off`.execute(trx);
    // Statistics first: without them the planner takes a few touched keys for many and scans every item.
    await sql`analyze cohort_aggregate_touched`.execute(trx);
    const placement = (row: string) => sql.raw(`
      ${row}.encounter_key, ${row}.complaint_concepts, ${row}.sex, ${row}.age_years, ${row}.acuity,
      case when ${dimensions.bySite} then ${row}.site else '' end as site,
      cast(case when ${dimensions.byStartYear} then ${row}.start_year else 0 end as smallint) as start_year,
      array(select distinct category from unnest(${row}.icd10_categories) as category order by category) as icd10_categories,
      ${row}.admitted, ${row}.returned_72h, ${row}.ed_los_minutes, ${row}.hospital_los_minutes`);
    // Each touched encounter's counted version (sign -1) and current version (+1).
    await sql`
      create temp table cohort_aggregate_change on commit drop as
      select -1 as sign, ${placement('touched')} from cohort_aggregate_touched as touched where touched.counted
      union all
      select 1 as sign, ${placement('encounter')} from cohort_encounter as encounter
      where encounter.encounter_key in (select encounter_key from cohort_aggregate_touched)`.execute(trx);
    await sql`analyze cohort_aggregate_change`.execute(trx);
    await sql`
      create temp table cohort_aggregate_change_member on commit drop as
      select change.sign, change.encounter_key, concept.complaint_concept, change.sex, change.age_years, change.acuity, change.site,
        change.start_year, change.icd10_categories, change.admitted, change.returned_72h, change.ed_los_minutes, change.hospital_los_minutes
      from cohort_aggregate_change as change
      cross join lateral (
        select distinct unnest(change.complaint_concepts) as complaint_concept
        union all select cast(${anyComplaintConcept} as text)
      ) as concept`.execute(trx);
    await sql`analyze cohort_aggregate_change_member`.execute(trx);
    // Folded as `foldedItems` folds: the counted version's items from the recorded codes, the current one's from the table.
    await sql`
      create temp table cohort_aggregate_change_item on commit drop as
      select distinct -1 as sign, touched.encounter_key, coalesce(panel.panel_code, code.item_code) as item_code
      from cohort_aggregate_touched as touched
      cross join lateral unnest(touched.item_codes) as code (item_code)
      left join lab_panel_member as member on member.analyte_code = code.item_code
      left join lab_panel as panel on panel.panel_code = member.panel_code
      where touched.counted
      union all
      select distinct 1 as sign, item.encounter_key, coalesce(panel.panel_code, item.item_code) as item_code
      from encounter_item as item
      left join lab_panel_member as member on member.analyte_code = item.item_code
      left join lab_panel as panel on panel.panel_code = member.panel_code
      where item.encounter_key in (select encounter_key from cohort_aggregate_touched)`.execute(trx);
    await sql`analyze cohort_aggregate_change_item`.execute(trx);

    // Cells the current versions fall in and the generation lacks, empty; then the change per cell.
    const cellKey = sql.raw(`complaint_concept, sex, age_years, acuity, site, start_year, icd10_categories`);
    const sameCell = sql.raw(`
      cell.complaint_concept = member.complaint_concept and cell.sex = member.sex and cell.age_years = member.age_years
      and coalesce(cell.acuity, -1) = coalesce(member.acuity, -1) and cell.site = member.site
      and cell.start_year = member.start_year and cell.icd10_categories = member.icd10_categories`);
    await sql`
      insert into cohort_aggregate_cell (generation, ${cellKey}, encounters, admitted, returned_72h)
      select distinct ${generationValue}, ${cellKey}, 0, 0, 0 from cohort_aggregate_change_member as member
      where member.sign = 1 and not exists (
        select 1 from cohort_aggregate_cell as cell where cell.generation = ${generation} and ${sameCell})`.execute(trx);
    await sql`
      create temp table cohort_aggregate_change_cell on commit drop as
      select member.sign, member.encounter_key, cell.cell_id, member.admitted, member.returned_72h, member.ed_los_minutes, member.hospital_los_minutes
      from cohort_aggregate_change_member as member
      join cohort_aggregate_cell as cell on cell.generation = ${generation} and ${sameCell}`.execute(trx);
    await sql`analyze cohort_aggregate_change_cell`.execute(trx);
    await sql`
      update cohort_aggregate_cell as cell
      set encounters = cell.encounters + change.encounters, admitted = cell.admitted + change.admitted,
        returned_72h = cell.returned_72h + change.returned_72h
      from (
        select cell_id, sum(sign) as encounters, coalesce(sum(sign) filter (where admitted), 0) as admitted,
          coalesce(sum(sign) filter (where returned_72h), 0) as returned_72h
        from cohort_aggregate_change_cell group by cell_id
      ) as change
      where cell.cell_id = change.cell_id`.execute(trx);
    await sql`
      insert into cohort_aggregate_item (cell_id, item_code, generation, encounters)
      select member.cell_id, item.item_code, ${generationValue}, sum(member.sign)
      from cohort_aggregate_change_cell as member
      join cohort_aggregate_change_item as item on item.encounter_key = member.encounter_key and item.sign = member.sign
      group by member.cell_id, item.item_code
      having sum(member.sign) <> 0
      on conflict (cell_id, item_code) do update set encounters = cohort_aggregate_item.encounters + excluded.encounters`.execute(trx);
    await sql`
      insert into cohort_aggregate_length_of_stay (cell_id, kind, minutes, generation, encounters)
      select cell_id, kind, minutes, ${generationValue}, sum(sign) from (
        select cell_id, 'ed' as kind, ed_los_minutes as minutes, sign from cohort_aggregate_change_cell where ed_los_minutes is not null
        union all
        select cell_id, 'hospital', hospital_los_minutes, sign from cohort_aggregate_change_cell where admitted and hospital_los_minutes is not null
      ) as stays
      group by cell_id, kind, minutes
      having sum(sign) <> 0
      on conflict (cell_id, kind, minutes) do update set encounters = cohort_aggregate_length_of_stay.encounters + excluded.encounters`.execute(trx);
    await sql`
      insert into cohort_aggregate_baseline_item (generation, item_code, encounters)
      select ${generationValue}, item_code, sum(sign) from cohort_aggregate_change_item
      group by item_code having sum(sign) <> 0
      on conflict (generation, item_code) do update set encounters = cohort_aggregate_baseline_item.encounters + excluded.encounters`.execute(trx);

    // Item details: an item's min() of each attribute and its uniformity stay as they are when it was uniform and every
    // row added has exactly its attributes (removing rows from a uniform item keeps it so); the others are recomputed
    // from all their rows, through the item-code index. Items no encounter has any more are dropped, as a rebuild would.
    await sql`
      create temp table cohort_aggregate_change_detail on commit drop as
      select distinct folded.item_code from (
        select coalesce(panel.panel_code, item.item_code) as item_code, item.category,
          case when panel.panel_code is null then item.kind else 'lab-panel' end as kind,
          coalesce(panel.display, item.display) as display,
          case when panel.panel_code is null then item.code_system else ${panelSystem} end as code_system,
          case when panel.panel_code is null then item.code else panel.panel_code end as code
        from encounter_item as item
        left join lab_panel_member as member on member.analyte_code = item.item_code
        left join lab_panel as panel on panel.panel_code = member.panel_code
        where item.encounter_key in (select encounter_key from cohort_aggregate_touched)
      ) as folded
      left join cohort_aggregate_item_detail as detail on detail.generation = ${generation} and detail.item_code = folded.item_code
      where detail.item_code is null or not detail.uniform
        or (detail.category, detail.kind, detail.display, detail.code_system, detail.code)
           is distinct from (folded.category, folded.kind, folded.display, folded.code_system, folded.code)
      union
      select item_code from cohort_aggregate_item_detail
      where generation = ${generation} and not uniform
        and item_code in (select item_code from cohort_aggregate_change_item where sign = -1)`.execute(trx);
    await sql`
      delete from cohort_aggregate_item_detail
      where generation = ${generation} and item_code in (select item_code from cohort_aggregate_change_detail)`.execute(trx);
    await sql`
      insert into cohort_aggregate_item_detail (generation, item_code, category, kind, display, code_system, code, uniform)
      select ${generationValue}, item_code, min(category), min(kind), min(display), min(code_system), min(code),
        count(distinct category) = 1 and count(distinct kind) = 1 and count(distinct display) = 1
        and (count(code_system) = 0 or (count(code_system) = count(*) and count(distinct code_system) = 1))
        and (count(code) = 0 or (count(code) = count(*) and count(distinct code) = 1))
      from (
        select coalesce(panel.panel_code, item.item_code) as item_code, item.category,
          case when panel.panel_code is null then item.kind else 'lab-panel' end as kind,
          coalesce(panel.display, item.display) as display,
          case when panel.panel_code is null then item.code_system else ${panelSystem} end as code_system,
          case when panel.panel_code is null then item.code else panel.panel_code end as code
        from encounter_item as item
        left join lab_panel_member as member on member.analyte_code = item.item_code
        left join lab_panel as panel on panel.panel_code = member.panel_code
        where item.item_code in (
          select item_code from cohort_aggregate_change_detail
          union
          select member.analyte_code from lab_panel_member as member
          join lab_panel as panel on panel.panel_code = member.panel_code
          where member.panel_code in (select item_code from cohort_aggregate_change_detail))
      ) as folded
      where item_code in (select item_code from cohort_aggregate_change_detail)
      group by item_code`.execute(trx);
    await sql`
      delete from cohort_aggregate_item_detail as detail
      using cohort_aggregate_baseline_item as baseline
      where detail.generation = ${generation} and baseline.generation = ${generation} and baseline.item_code = detail.item_code
        and baseline.encounters = 0 and detail.item_code in (select item_code from cohort_aggregate_change_item)`.execute(trx);

    const counts = await sql<{ removed: number; added: number }>`
      select cast(count(*) filter (where sign = -1) as integer) as removed, cast(count(*) filter (where sign = 1) as integer) as added
      from cohort_aggregate_change`.execute(trx);
    const { removed, added } = counts.rows[0]!;
    await sql`delete from cohort_aggregate_touched`.execute(trx);
    // built_at: a later deletion subtracts encounters ingested before it, now every one this generation counts.
    await sql`
      update cohort_aggregate_generation
      set encounters = encounters - ${removed} + ${added}, stale = false, revision = revision + 1, built_at = clock_timestamp(),
        build_ms = ${Date.now() - started}
      where generation = ${generation}`.execute(trx);
    return { generation, removed: Number(removed), added: Number(added), durationMs: Date.now() - started };
  });
}

/**
 * Whether the active generation is split the way these rules need (sites, start years); when it is not, the hooks
 * fall back to the exact scan for every cohort until a rebuild.
 */
export async function aggregatesFitRules(db: Kysely<Database>, rules: Rules): Promise<boolean> {
  const generation = await findUsableGeneration(db);
  const needed = aggregateDimensionsFor(rules);
  return generation !== null && (!needed.bySite || generation.bySite) && (!needed.byStartYear || generation.byStartYear);
}

interface Generation {
  readonly generation: number;
  readonly bySite: boolean;
  readonly byStartYear: boolean;
}

/** The active generation, when it still reflects the cohort (not stale, built under the current lab panels). */
export async function findUsableGeneration(db: Kysely<Database>): Promise<Generation | null> {
  const result = await sql<{ generation: number; by_site: boolean; by_start_year: boolean }>`
    select generation.generation, generation.by_site, generation.by_start_year
    from cohort_aggregate_generation as generation
    join cohort_aggregate_state as state on state.id = 1
    where generation.status = 'active' and not generation.stale and generation.panel_fingerprint = state.panel_fingerprint`.execute(db);
  const row = result.rows[0];
  return row ? { generation: Number(row.generation), bySite: row.by_site, byStartYear: row.by_start_year } : null;
}

/**
 * Changes with every rebuild (an ingest), every deletion (an opt-out: the trigger counts it down) and when the
 * aggregates stop or start being usable, whichever process did it.
 */
export async function aggregateDataVersion(db: Kysely<Database>): Promise<string> {
  const result = await sql<{ version: string }>`
    select generation.generation || '.' || generation.revision || ':' || generation.encounters || ':' || generation.stale || ':' ||
      (generation.panel_fingerprint = state.panel_fingerprint) as version
    from cohort_aggregate_generation as generation
    join cohort_aggregate_state as state on state.id = 1
    where generation.status = 'active'`.execute(db);
  return result.rows[0]?.version ?? 'none';
}


/** The condition on `cell` for one set of criteria; mirrors `criteriaCondition` of the exact path. */
function cellCondition(criteria: CohortCriteria, generation: number): RawBuilder<SqlBool> {
  const conditions: RawBuilder<SqlBool>[] = [sql<SqlBool>`cell.complaint_concept = ${criteria.complaintConcept ?? anyComplaintConcept}`];
  if (criteria.sex !== null) conditions.push(sql<SqlBool>`cell.sex = ${criteria.sex}`);
  if (criteria.ageMin !== null) conditions.push(sql<SqlBool>`cell.age_years >= ${criteria.ageMin}`);
  if (criteria.ageMax !== null) conditions.push(sql<SqlBool>`cell.age_years <= ${criteria.ageMax}`);
  if (criteria.acuity !== null) {
    conditions.push(sql<SqlBool>`cell.acuity >= ${criteria.acuity.min}`, sql<SqlBool>`cell.acuity <= ${criteria.acuity.max}`);
  }
  if (criteria.icd10 !== null) {
    const categories = [...new Set(criteria.icd10.codes.map((code) => code.slice(0, 3)))];
    conditions.push(icd10OverlapCondition(sql<string[]>`cell.icd10_categories`, categories, criteria.icd10.overlap));
  }
  if (criteria.sites !== null) conditions.push(sql<SqlBool>`cell.site = any(${textArray(criteria.sites)})`);
  if (criteria.lookback !== null) {
    const { years, referenceYear } = criteria.lookback;
    const oldestExcluded =
      referenceYear === null
        ? sql<number>`(select max(newest.start_year) from cohort_aggregate_cell as newest
            where newest.generation = ${generation} and newest.encounters > 0) - cast(${years} as integer)`
        : sql<number>`cast(${referenceYear - years} as integer)`;
    conditions.push(sql<SqlBool>`cell.start_year > ${oldestExcluded}`);
  }
  return sql<SqlBool>`(${sql.join(conditions, sql` and `)})`;
}

/** percentile_cont(0.5) from the values at the two middle positions, as PostgreSQL interpolates (float8_lerp). */
function median(lower: number | null, upper: number | null): number | null {
  if (lower === null || upper === null) return null;
  return lower === upper ? lower : lower + 0.5 * (upper - lower);
}

/** How a source answered: from the aggregates, or by the exact scan. */
export interface AnswerCounts {
  aggregates: number;
  exact: number;
}

/**
 * Cohort statistics from the aggregates when they answer the criteria exactly, else from the exact SQL path;
 * both give the same numbers. The baseline too comes from the aggregates when a usable generation exists.
 */
export class AggregateCohortSource implements VersionedCohortSource {
  private readonly exact: CohortSource;
  /** For tests and the benchmark: how many calls each path answered. */
  readonly answered: AnswerCounts = { aggregates: 0, exact: 0 };

  private readonly generationTtlMs: number;
  private generation: { readonly value: Promise<Generation | null>; readonly at: number } | null = null;

  /**
   * `generationTtlMs`: how long the usable generation is remembered instead of asked for on every call (default 0:
   * asked every time). Deletions reach every kept generation in the database, but an opt-out that changes the lab
   * panels must send the very next call to the exact path, so only a caller that can tolerate that lag sets it.
   */
  constructor(
    private readonly db: Kysely<Database>,
    options: { readonly generationTtlMs?: number } = {},
  ) {
    this.exact = new SqlCohortSource(db);
    this.generationTtlMs = options.generationTtlMs ?? 0;
  }

  private usableGeneration(): Promise<Generation | null> {
    const now = Date.now();
    if (this.generation === null || now - this.generation.at >= this.generationTtlMs) {
      const value = findUsableGeneration(this.db);
      // A failed look-up is not remembered.
      value.catch(() => {
        if (this.generation?.value === value) this.generation = null;
      });
      this.generation = { value, at: now };
    }
    return this.generation.value;
  }

  /** See aggregateDataVersion: a cache in front of this source empties when it moves. */
  dataVersion(): Promise<string> {
    return aggregateDataVersion(this.db);
  }

  async countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    if (criteria.length === 0) return [];
    const generation = await this.usableGeneration();
    if (generation === null || !criteria.every((one) => aggregatesAnswer(one, generation))) {
      this.answered.exact += 1;
      return this.exact.countCohorts(criteria);
    }
    const concepts = [...new Set(criteria.map((one) => one.complaintConcept ?? anyComplaintConcept))];
    const result = await sql<Record<string, number>>`
      select ${sql.join(
        criteria.map(
          (one, index) =>
            sql`cast(coalesce(sum(cell.encounters) filter (where ${cellCondition(one, generation.generation)}), 0) as integer) as ${sql.ref(`rung_${index}`)}`,
        ),
      )}
      from cohort_aggregate_cell as cell
      where cell.generation = ${generation.generation} and cell.complaint_concept = any(${textArray(concepts)})`.execute(this.db);
    this.answered.aggregates += 1;
    const row = result.rows[0] ?? {};
    return criteria.map((_, index) => Number(row[`rung_${index}`] ?? 0));
  }

  async describeCohort(criteria: CohortCriteria, options?: DescribeCohortOptions): Promise<CohortStatistics> {
    const weighted = options?.itemWeighting !== undefined && options.itemWeighting !== 'none';
    const generation = weighted ? null : await this.usableGeneration();
    if (generation === null || !aggregatesAnswer(criteria, generation)) {
      this.answered.exact += 1;
      return this.exact.describeCohort(criteria, options);
    }
    // One statement (one plan, one pass over the matching cells) for the outcomes, the items and both medians.
    const result = await sql<{ outcomes: Outcomes | null; items: ItemRow[] | null; stays: StayRow[] | null }>`
      with cells as materialized (
        select cell.cell_id, cell.encounters, cell.admitted, cell.returned_72h
        from cohort_aggregate_cell as cell
        where cell.generation = ${generation.generation} and ${cellCondition(criteria, generation.generation)}
      ), summed as (
        select item.item_code, sum(item.encounters) as encounters
        from cells join cohort_aggregate_item as item on item.cell_id = cells.cell_id
        group by item.item_code
        having sum(item.encounters) > 0
      ), histogram as (
        select stay.kind, stay.minutes, sum(stay.encounters) as encounters
        from cells join cohort_aggregate_length_of_stay as stay on stay.cell_id = cells.cell_id
        group by stay.kind, stay.minutes
        having sum(stay.encounters) > 0
      ), running as (
        select kind, minutes,
          sum(encounters) over (partition by kind order by minutes) as up_to,
          sum(encounters) over (partition by kind) as total
        from histogram
      )
      select
        (select json_build_object('size', coalesce(sum(encounters), 0), 'admitted', coalesce(sum(admitted), 0),
           'returned_72h', coalesce(sum(returned_72h), 0)) from cells) as outcomes,
        (select json_agg(json_build_object('item_code', summed.item_code, 'encounters', summed.encounters,
           'category', detail.category, 'kind', detail.kind, 'display', detail.display, 'code_system', detail.code_system,
           'code', detail.code, 'uniform', detail.uniform) order by summed.encounters desc, summed.item_code)
         from summed
         join cohort_aggregate_item_detail as detail
           on detail.generation = ${generation.generation} and detail.item_code = summed.item_code) as items,
        (select json_agg(json_build_object('kind', kind, 'total', total, 'lower', lower, 'upper', upper)) from (
           select kind, total,
             min(minutes) filter (where up_to > floor((total - 1) * 0.5)) as lower,
             min(minutes) filter (where up_to > ceil((total - 1) * 0.5)) as upper
           from running group by kind, total) as middle) as stays`.execute(this.db);
    const row = result.rows[0]!;
    const items = row.items ?? [];
    if (items.some((item) => !item.uniform)) {
      // An item whose display or coding differs between encounters shows the cohort's min(): only a scan knows it.
      this.answered.exact += 1;
      return this.exact.describeCohort(criteria, options);
    }
    this.answered.aggregates += 1;
    const outcome = row.outcomes ?? { size: 0, admitted: 0, returned_72h: 0 };
    const stay = (kind: 'ed' | 'hospital') => (row.stays ?? []).find((one) => one.kind === kind);
    const ed = stay('ed');
    const hospital = stay('hospital');
    return {
      size: Number(outcome.size),
      items: items.map(toItemCount),
      outcomes: {
        admitted: Number(outcome.admitted),
        returned72h: Number(outcome.returned_72h),
        edLosMedianMinutes: ed ? median(numberOrNull(ed.lower), numberOrNull(ed.upper)) : null,
        edLosKnown: ed ? Number(ed.total) : 0,
        hospitalLosMedianMinutes: hospital ? median(numberOrNull(hospital.lower), numberOrNull(hospital.upper)) : null,
        hospitalLosKnown: hospital ? Number(hospital.total) : 0,
      },
    };
  }

  async describeBaseline(): Promise<BaselineStatistics> {
    const generation = await this.usableGeneration();
    if (generation === null) {
      this.answered.exact += 1;
      return this.exact.describeBaseline();
    }
    const [size, items] = await Promise.all([
      sql<{ encounters: number }>`
        select encounters from cohort_aggregate_generation where generation = ${generation.generation}`.execute(this.db),
      sql<{ item_code: string; encounters: number }>`
        select item_code, encounters from cohort_aggregate_baseline_item
        where generation = ${generation.generation} and encounters > 0
        order by encounters desc, item_code`.execute(this.db),
    ]);
    this.answered.aggregates += 1;
    return {
      size: Number(size.rows[0]?.encounters ?? 0),
      items: new Map(items.rows.map((row) => [row.item_code, Number(row.encounters)])),
    };
  }
}

interface Outcomes {
  size: number;
  admitted: number;
  returned_72h: number;
}

interface StayRow {
  kind: 'ed' | 'hospital';
  total: number;
  lower: number | null;
  upper: number | null;
}

interface ItemRow {
  item_code: string;
  encounters: number;
  category: ItemCategory;
  kind: string;
  display: string;
  code_system: string | null;
  code: string | null;
  uniform: boolean;
}

function numberOrNull(value: number | string | null): number | null {
  return value === null ? null : Number(value);
}

function toItemCount(row: ItemRow): ItemCount {
  return {
    itemCode: row.item_code,
    category: row.category,
    kind: row.kind,
    display: row.display,
    codeSystem: row.code_system,
    code: row.code,
    encounters: Number(row.encounters),
  };
}
