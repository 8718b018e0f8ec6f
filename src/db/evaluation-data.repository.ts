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
  const fold = options.foldLabPanels ?? true;
  const encounterRows = await db
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
    .orderBy('encounter_key')
    .execute();
  const itemRows: FoldedItemRow[] = fold
    ? await db
        .selectFrom('encounter_item as item')
        .leftJoin('lab_panel_member as member', 'member.analyte_code', 'item.item_code')
        .leftJoin('lab_panel as panel', 'panel.panel_code', 'member.panel_code')
        .select((eb) => [
          'item.encounter_key',
          eb.fn.coalesce('panel.panel_code', 'item.item_code').as('item_code'),
          'item.category',
          sql<string>`case when panel.panel_code is null then item.kind else 'lab-panel' end`.as('kind'),
          eb.fn.coalesce('panel.display', 'item.display').as('display'),
          sql<string | null>`case when panel.panel_code is null then item.code_system else ${panelSystem} end`.as('code_system'),
          sql<string | null>`case when panel.panel_code is null then item.code else panel.panel_code end`.as('code'),
          'item.clinician_key',
        ])
        .orderBy('item.encounter_key')
        .orderBy('item_code')
        .orderBy('display')
        .execute()
    : await db
        .selectFrom('encounter_item as item')
        .select(['item.encounter_key', 'item.item_code', 'item.category', 'item.kind', 'item.display', 'item.code_system', 'item.code', 'item.clinician_key'])
        .orderBy('item.encounter_key')
        .orderBy('item.item_code')
        .execute();

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
