import { sql, type Kysely, type Transaction } from 'kysely';
import type { ItemCategory, ItemCount } from '../cohort/types.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** Same constant as the SQL cohort source: a folded panel is ordered by this coding system. */
const panelSystem = 'urn:cohort-cds:lab-panel';

/**
 * One ED encounter with everything a backtest needs: what the EHR knew at arrival, what it got (items) and
 * what became of it. Structurally an `InMemoryEncounter` (cohort/in-memory-source.ts) with more fields.
 */
export interface EvaluationEncounter {
  readonly encounterKey: string;
  readonly patientKey: string;
  readonly site: string;
  /** De-identified and shifted: good for ordering, says nothing about the calendar. */
  readonly startYear: number;
  readonly ageYears: number;
  readonly sex: string;
  readonly acuity: number | null;
  readonly chiefComplaintText: string | null;
  readonly complaintConcepts: readonly string[];
  /** The encounter's own diagnoses (known at discharge). */
  readonly icd10Codes: readonly string[];
  /** ICD-10 codes of the patient's earlier encounters: the problem list at arrival. */
  readonly historyIcd10Codes: readonly string[];
  readonly admitted: boolean;
  readonly returned72h: boolean;
  readonly edLosMinutes: number | null;
  readonly hospitalLosMinutes: number | null;
  /** Distinct items, lab analytes folded into their panel unless loaded at analyte level. */
  readonly items: readonly Omit<ItemCount, 'encounters' | 'weightedEncounters'>[];
  /** Item code → keyed hash of the clinician who ordered it, for the items whose source named one. */
  readonly clinicianByItem?: ReadonlyMap<string, string>;
}

export interface LoadEvaluationEncountersOptions {
  /**
   * Fold lab analytes into the panel they belong to, exactly as `SqlCohortSource` counts them (default): the
   * items are then those the cards suggest. Without folding every analyte is an item of its own.
   */
  readonly foldLabPanels?: boolean;
}

interface FoldedItemRow {
  encounter_key: string;
  item_code: string;
  category: ItemCategory;
  kind: string;
  display: string;
  code_system: string | null;
  code: string | null;
  clinician_key: string | null;
}

/**
 * Every cohort encounter with its items, read once for a backtest (two queries), in encounter-key order.
 * The folding repeats the `folded` step of cohort-statistics.repository.ts; a test holds the two equal.
 */
export async function loadEvaluationEncounters(db: Executor, options: LoadEvaluationEncountersOptions = {}): Promise<EvaluationEncounter[]> {
  return loadEncounterPage(db, options, {});
}

export interface EvaluationEncounterChunkOptions extends LoadEvaluationEncountersOptions {
  /** Encounters per chunk (default 5,000): what one chunk holds in memory, items included. */
  readonly chunkSize?: number;
  /**
   * Only the encounters with a clinician on some item, each with only the items that name one (folded as usual:
   * a panel names the clinician its first analyte row names). What the reputation's second pass reads.
   */
  readonly clinicianItemsOnly?: boolean;
}

/**
 * The encounters of `loadEvaluationEncounters`, in the same order and folded the same way, a chunk at a time
 * (keyset pagination on encounter_key), so that a pass over a large cohort holds one chunk in memory. Run it in a
 * repeatable-read transaction for a consistent cohort across chunks.
 */
export async function* readEvaluationEncounterChunks(db: Executor, options: EvaluationEncounterChunkOptions = {}): AsyncGenerator<EvaluationEncounter[]> {
  const limit = options.chunkSize ?? 5000;
  if (!Number.isInteger(limit) || limit < 1) throw new Error(`chunkSize must be a positive integer, not ${limit}`);
  let afterKey: string | null = null;
  for (;;) {
    const chunk = await loadEncounterPage(db, options, { afterKey, limit, clinicianItemsOnly: options.clinicianItemsOnly ?? false });
    if (chunk.length === 0) return;
    yield chunk;
    if (chunk.length < limit) return;
    afterKey = chunk[chunk.length - 1]!.encounterKey;
  }
}

/** Whether any stored item names its ordering clinician. */
export async function hasItemWithClinician(db: Executor): Promise<boolean> {
  const row = await db
    .selectNoFrom((eb) => eb.exists(eb.selectFrom('encounter_item').select(sql`1`.as('one')).where('clinician_key', 'is not', null)).as('found'))
    .executeTakeFirstOrThrow();
  return Boolean(row.found);
}

/**
 * How many encounters and items `loadEvaluationEncounters` would return (items summed over the encounters), counted
 * in the database.
 */
export async function countEvaluationEncounters(db: Executor, options: LoadEvaluationEncountersOptions = {}): Promise<{ encounters: number; items: number }> {
  const encounters = await db.selectFrom('cohort_encounter').select(sql<number>`cast(count(*) as bigint)`.as('count')).executeTakeFirstOrThrow();
  // Items whose encounter is gone are not loaded either; a folded panel counts once per encounter.
  const items = await db
    .selectFrom(
      fromItems(db)
        .where((eb) => eb.exists(eb.selectFrom('cohort_encounter as encounter').select(sql`1`.as('one')).whereRef('encounter.encounter_key', '=', 'item.encounter_key')))
        .select(['item.encounter_key', itemCode(options.foldLabPanels ?? true).as('item_code')])
        .distinct()
        .as('distinct_item'),
    )
    .select(sql<number>`cast(count(*) as bigint)`.as('count'))
    .executeTakeFirstOrThrow();
  return { encounters: Number(encounters.count), items: Number(items.count) };
}

interface EncounterPage {
  /** Encounters with a greater key (keyset pagination); null or absent: from the first. */
  readonly afterKey?: string | null;
  readonly limit?: number;
  readonly clinicianItemsOnly?: boolean;
}

/**
 * The items with the panel each belongs to (at most one: an analyte is the key of lab_panel_member), before any
 * selection, filter or order.
 */
function fromItems(db: Executor) {
  return db
    .selectFrom('encounter_item as item')
    .leftJoin('lab_panel_member as member', 'member.analyte_code', 'item.item_code')
    .leftJoin('lab_panel as panel', 'panel.panel_code', 'member.panel_code');
}

/** The item code an item is counted under: its panel's when folding and it belongs to one. */
function itemCode(fold: boolean) {
  return fold ? sql<string>`coalesce(panel.panel_code, item.item_code)` : sql<string>`item.item_code`;
}

function itemDisplay(fold: boolean) {
  return fold ? sql<string>`coalesce(panel.display, item.display)` : sql<string>`item.display`;
}

/** The columns of an item as the cards show it; a folded panel is ordered by the panel coding system. */
function itemColumns(fold: boolean) {
  return [
    'item.encounter_key',
    itemCode(fold).as('item_code'),
    'item.category',
    (fold ? sql<string>`case when panel.panel_code is null then item.kind else 'lab-panel' end` : sql<string>`item.kind`).as('kind'),
    itemDisplay(fold).as('display'),
    (fold ? sql<string | null>`case when panel.panel_code is null then item.code_system else ${panelSystem} end` : sql<string | null>`item.code_system`).as('code_system'),
    (fold ? sql<string | null>`case when panel.panel_code is null then item.code else panel.panel_code end` : sql<string | null>`item.code`).as('code'),
    'item.clinician_key',
  ] as const;
}

async function loadEncounterPage(db: Executor, options: LoadEvaluationEncountersOptions, page: EncounterPage): Promise<EvaluationEncounter[]> {
  const fold = options.foldLabPanels ?? true;
  let encounterQuery = db
    .selectFrom('cohort_encounter')
    .select([
      'encounter_key',
      'patient_key',
      'site',
      'start_year',
      'age_years',
      'sex',
      'acuity',
      'chief_complaint_text',
      'complaint_concepts',
      'icd10_codes',
      'history_icd10_codes',
      'admitted',
      'returned_72h',
      'ed_los_minutes',
      'hospital_los_minutes',
    ])
    .orderBy('encounter_key');
  if (page.afterKey !== undefined && page.afterKey !== null) encounterQuery = encounterQuery.where('encounter_key', '>', page.afterKey);
  if (page.clinicianItemsOnly) {
    encounterQuery = encounterQuery.where((eb) =>
      eb.exists(
        eb
          .selectFrom('encounter_item as named')
          .select(sql`1`.as('one'))
          .whereRef('named.encounter_key', '=', 'cohort_encounter.encounter_key')
          .where('named.clinician_key', 'is not', null),
      ),
    );
  }
  if (page.limit !== undefined) encounterQuery = encounterQuery.limit(page.limit);
  const encounterRows = await encounterQuery.execute();
  if (encounterRows.length === 0) return [];

  let itemQuery = fromItems(db).select(itemColumns(fold));
  if (page.afterKey !== undefined || page.limit !== undefined) {
    // The page's key range holds exactly its encounters: those between them were left out by the same filter.
    itemQuery = itemQuery
      .where('item.encounter_key', '>=', encounterRows[0]!.encounter_key)
      .where('item.encounter_key', '<=', encounterRows[encounterRows.length - 1]!.encounter_key);
  }
  if (page.clinicianItemsOnly) itemQuery = itemQuery.where('item.clinician_key', 'is not', null);
  // The analyte code last: of a panel's analyte rows, the first naming a clinician gives the panel's, the same
  // one whichever plan the database picks.
  const itemRows: FoldedItemRow[] = await itemQuery.orderBy('item.encounter_key').orderBy(itemCode(fold)).orderBy(itemDisplay(fold)).orderBy('item.item_code').execute();

  const itemsByEncounter = new Map<string, Map<string, Omit<ItemCount, 'encounters' | 'weightedEncounters'>>>();
  const cliniciansByEncounter = new Map<string, Map<string, string>>();
  for (const row of itemRows) {
    let items = itemsByEncounter.get(row.encounter_key);
    if (!items) itemsByEncounter.set(row.encounter_key, (items = new Map()));
    if (row.clinician_key !== null) {
      let clinicians = cliniciansByEncounter.get(row.encounter_key);
      if (!clinicians) cliniciansByEncounter.set(row.encounter_key, (clinicians = new Map()));
      if (!clinicians.has(row.item_code)) clinicians.set(row.item_code, row.clinician_key);
    }
    // Analytes of one panel fold into one item per encounter.
    if (items.has(row.item_code)) continue;
    items.set(row.item_code, {
      itemCode: row.item_code,
      category: row.category,
      kind: row.kind,
      display: row.display,
      codeSystem: row.code_system,
      code: row.code,
    });
  }
  return encounterRows.map((row) => ({
    encounterKey: row.encounter_key,
    patientKey: row.patient_key,
    site: row.site,
    startYear: Number(row.start_year),
    ageYears: Number(row.age_years),
    sex: row.sex,
    acuity: row.acuity === null ? null : Number(row.acuity),
    chiefComplaintText: row.chief_complaint_text,
    complaintConcepts: row.complaint_concepts,
    icd10Codes: row.icd10_codes,
    historyIcd10Codes: row.history_icd10_codes,
    admitted: row.admitted,
    returned72h: row.returned_72h,
    edLosMinutes: row.ed_los_minutes === null ? null : Number(row.ed_los_minutes),
    hospitalLosMinutes: row.hospital_los_minutes === null ? null : Number(row.hospital_los_minutes),
    items: [...(itemsByEncounter.get(row.encounter_key)?.values() ?? [])],
    clinicianByItem: cliniciansByEncounter.get(row.encounter_key) ?? new Map<string, string>(),
  }));
}
