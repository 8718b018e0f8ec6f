import { sql, type Kysely, type Transaction } from 'kysely';
import type { ClinicianReputation, ClinicianTally, ReputationTallies } from '../reputation/reputation.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Replaces every stored reputation with these, in one transaction (a reader sees the old set or the new one). */
export async function replaceClinicianReputations(db: Kysely<Database>, reputations: readonly ClinicianReputation[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('clinician_reputation').execute();
    // Chunks keep each statement under PostgreSQL's 65,535 bind parameters.
    for (let start = 0; start < reputations.length; start += 5000) {
      await trx
        .insertInto('clinician_reputation')
        .values(
          reputations.slice(start, start + 5000).map((reputation) => ({
            clinician_key: reputation.clinicianKey,
            orders: reputation.orders,
            encounters: reputation.encounters,
            raw_agreement: reputation.rawAgreement,
            agreement: reputation.agreement,
            return_rate_72h: reputation.returnRate72h,
            weight: reputation.weight,
          })),
        )
        .execute();
    }
  });
}

/** Every stored reputation, by clinician key. */
export async function listClinicianReputations(db: Executor): Promise<ClinicianReputation[]> {
  const rows = await db.selectFrom('clinician_reputation').selectAll().orderBy('clinician_key').execute();
  return rows.map((row) => ({
    clinicianKey: row.clinician_key,
    orders: Number(row.orders),
    encounters: Number(row.encounters),
    rawAgreement: row.raw_agreement === null ? null : Number(row.raw_agreement),
    agreement: Number(row.agreement),
    returnRate72h: Number(row.return_rate_72h),
    weight: Number(row.weight),
  }));
}

/**
 * The reputation tallies of the whole cohort in a few aggregating statements (docs/reputation.md): the same integers
 * `ReputationAccumulator` counts over `readEvaluationEncounterChunks` (items folded into lab panels, a panel named by
 * the clinician of its first analyte row that names one, by analyte code; a primary concept is the first of the
 * encounter's concepts that is no modifier). Only the items that name a clinician, and the consensus of the items
 * they name, are read item by item; `countItems: false` leaves out the one count that needs every item folded (the
 * summary's `items`, then 0), which the ingest does not use. Run it in a repeatable-read transaction.
 */
export async function tallyClinicianReputations(
  trx: Transaction<Database>,
  modifierConcepts: readonly string[],
  options: { readonly countItems?: boolean } = {},
): Promise<ReputationTallies> {
  const modifiers = sql`cast(${sql.val([...modifierConcepts])} as text[])`;
  // Planning and JIT-compiling these one-off scans costs more than it saves (measured: 1.1 s of 5.9 s at 100,000 encounters).
  await sql`set local jit = off`.execute(trx);
  await sql`
    create temporary table reputation_encounter on commit drop as
    select encounter_key, returned_72h,
      (select listed.concept from unnest(complaint_concepts) with ordinality as listed (concept, position)
       where listed.concept <> all(${modifiers}) order by listed.position limit 1) as concept
    from cohort_encounter`.execute(trx);
  await sql`create index on reputation_encounter (encounter_key)`.execute(trx);
  await sql`analyze reputation_encounter`.execute(trx);
  // The folded items that name a clinician, one row per encounter and folded item, of encounters that exist.
  await sql`
    create temporary table reputation_named on commit drop as
    select item.encounter_key, coalesce(panel.panel_code, item.item_code) as item_code,
      (min(array[item.item_code, item.clinician_key]))[2] as clinician_key
    from encounter_item as item
    left join lab_panel_member as member on member.analyte_code = item.item_code
    left join lab_panel as panel on panel.panel_code = member.panel_code
    where item.clinician_key is not null
      and exists (select 1 from reputation_encounter as encounter where encounter.encounter_key = item.encounter_key)
    group by item.encounter_key, coalesce(panel.panel_code, item.item_code)`.execute(trx);
  await sql`analyze reputation_named`.execute(trx);
  // The item codes that fold into a named item: read through the item-code index, not a scan of every item.
  const namedCodes = await sql<{ item_code: string }>`select distinct item_code from reputation_named`.execute(trx);
  const folded = namedCodes.rows.map((row) => row.item_code);
  const members = await sql<{ analyte_code: string }>`
    select member.analyte_code from lab_panel_member as member join lab_panel as panel on panel.panel_code = member.panel_code
    where member.panel_code = any(cast(${sql.val(folded)} as text[]))`.execute(trx);
  const rawCodes = [...folded, ...members.rows.map((row) => row.analyte_code)];
  // How many encounters of each primary concept received each item that some clinician ordered (the consensus).
  await sql`
    create temporary table reputation_consensus on commit drop as
    select encounter.concept, folded.item_code, count(*) as encounters
    from (
      select distinct item.encounter_key, coalesce(panel.panel_code, item.item_code) as item_code
      from encounter_item as item
      left join lab_panel_member as member on member.analyte_code = item.item_code
      left join lab_panel as panel on panel.panel_code = member.panel_code
      where item.item_code = any(cast(${sql.val(rawCodes)} as text[]))
        and coalesce(panel.panel_code, item.item_code) = any(cast(${sql.val(folded)} as text[]))
    ) as folded
    join reputation_encounter as encounter on encounter.encounter_key = folded.encounter_key
    where encounter.concept is not null
    group by encounter.concept, folded.item_code`.execute(trx);
  const totals = await sql<{ encounters: string; items_with_clinician: string }>`
    select (select count(*) from reputation_encounter) as encounters, (select count(*) from reputation_named) as items_with_clinician`.execute(trx);
  const items = options.countItems === false ? null : await countFoldedItems(trx);
  const sizes = await sql<{ concept: string; size: string }>`
    select concept, count(*) as size from reputation_encounter where concept is not null group by concept`.execute(trx);
  // The orders per clinician, concept and item; multiplied by the consensus below (one join in SQL took 1.4 s at 100,000).
  const orders = await sql<{ clinician_key: string; concept: string; item_code: string; orders: string }>`
    select named.clinician_key, encounter.concept, named.item_code, count(*) as orders
    from reputation_named as named join reputation_encounter as encounter on encounter.encounter_key = named.encounter_key
    where encounter.concept is not null
    group by named.clinician_key, encounter.concept, named.item_code`.execute(trx);
  const consensus = await sql<{ concept: string; item_code: string; encounters: string }>`
    select concept, item_code, encounters from reputation_consensus`.execute(trx);
  const clinicians = await sql<{ clinician_key: string; encounters: string; returns: string }>`
    select clinician_key, count(*) as encounters, count(*) filter (where returned_72h) as returns
    from (
      select distinct named.clinician_key, named.encounter_key, encounter.returned_72h
      from reputation_named as named join reputation_encounter as encounter on encounter.encounter_key = named.encounter_key
    ) as ordered
    group by clinician_key`.execute(trx);

  const conceptSizes = new Map(sizes.rows.map((row) => [row.concept, Number(row.size)]));
  const received = new Map(consensus.rows.map((row) => [`${row.concept}\u0000${row.item_code}`, Number(row.encounters)]));
  const byClinician = new Map<string, { orders: number; agreementCounts: Map<string, number> }>();
  for (const row of orders.rows) {
    // A concept with one encounter has no consensus to compare with: no order counts there.
    if ((conceptSizes.get(row.concept) ?? 0) < 2) continue;
    let entry = byClinician.get(row.clinician_key);
    if (!entry) byClinician.set(row.clinician_key, (entry = { orders: 0, agreementCounts: new Map() }));
    const count = Number(row.orders);
    entry.orders += count;
    const others = count * (received.get(`${row.concept}\u0000${row.item_code}`)! - 1);
    entry.agreementCounts.set(row.concept, (entry.agreementCounts.get(row.concept) ?? 0) + others);
  }
  const tallies: ClinicianTally[] = clinicians.rows.map((row) => ({
    clinicianKey: row.clinician_key,
    orders: byClinician.get(row.clinician_key)?.orders ?? 0,
    encounters: Number(row.encounters),
    returns: Number(row.returns),
    agreementCounts: byClinician.get(row.clinician_key)?.agreementCounts ?? new Map<string, number>(),
  }));
  const total = totals.rows[0]!;
  return {
    clinicians: tallies,
    conceptSizes,
    encounters: Number(total.encounters),
    items: items ?? 0,
    itemsWithClinician: Number(total.items_with_clinician),
  };
}

/** Distinct folded items summed over the encounters: items outside any panel one each, and each panel once per encounter. */
async function countFoldedItems(trx: Transaction<Database>): Promise<number> {
  const result = await sql<{ items: string }>`
    select
      (select count(*) from encounter_item as item
       where exists (select 1 from reputation_encounter as encounter where encounter.encounter_key = item.encounter_key)
         and not exists (
           select 1 from lab_panel_member as member join lab_panel as panel on panel.panel_code = member.panel_code
           where member.analyte_code = item.item_code))
      +
      (select count(*) from (
         select distinct item.encounter_key, panel.panel_code
         from encounter_item as item
         join lab_panel_member as member on member.analyte_code = item.item_code
         join lab_panel as panel on panel.panel_code = member.panel_code
         where exists (select 1 from reputation_encounter as encounter where encounter.encounter_key = item.encounter_key)
       ) as panels) as items`.execute(trx);
  return Number(result.rows[0]!.items);
}
