import { sql, type Kysely, type Transaction } from 'kysely';
import type { CohortEncounterRecord } from '../ingest/fhir-to-cohort.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface SavedCohortEncounters {
  readonly encounters: number;
  readonly items: number;
  readonly draws: number;
}

// Rows per multi-row INSERT: well under PostgreSQL's 65,535 bind parameters for the widest table.
const rowsPerStatement = 1000;

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < rows.length; index += size) result.push(rows.slice(index, index + size));
  return result;
}

// Every column the ingest writes; ingested_at changes only when one of them does.
const encounterColumns = [
  'patient_key',
  'site',
  'age_years',
  'sex',
  'acuity',
  'chief_complaint_text',
  'complaint_concepts',
  'icd10_codes',
  'icd10_categories',
  'history_icd10_codes',
  'start_year',
  'disposition',
  'admitted',
  'ed_los_minutes',
  'hospital_los_minutes',
  'returned_72h',
  'returned_30d',
] as const;

/**
 * Writes ED stays with their items and lab draws, replacing what an earlier ingest stored for the same
 * encounter keys; running it twice on the same records leaves the tables as they were.
 */
export async function saveCohortEncounters(trx: Executor, records: readonly CohortEncounterRecord[]): Promise<SavedCohortEncounters> {
  // The last record of a key wins, as it would across two calls.
  const byKey = new Map(records.map((record) => [record.encounter.encounterKey, record]));
  const unique = [...byKey.values()];
  if (unique.length === 0) return { encounters: 0, items: 0, draws: 0 };
  const keys = [...byKey.keys()];

  for (const batch of chunks(unique, rowsPerStatement)) {
    await trx
      .insertInto('cohort_encounter')
      .values(
        batch.map(({ encounter }) => ({
          encounter_key: encounter.encounterKey,
          patient_key: encounter.patientKey,
          site: encounter.site,
          age_years: encounter.ageYears,
          sex: encounter.sex,
          acuity: encounter.acuity,
          chief_complaint_text: encounter.chiefComplaintText,
          complaint_concepts: [...encounter.complaintConcepts],
          icd10_codes: [...encounter.icd10Codes],
          icd10_categories: [...encounter.icd10Categories],
          history_icd10_codes: [...encounter.historyIcd10Codes],
          start_year: encounter.startYear,
          disposition: encounter.disposition,
          admitted: encounter.admitted,
          ed_los_minutes: encounter.edLosMinutes,
          hospital_los_minutes: encounter.hospitalLosMinutes,
          returned_72h: encounter.returned72h,
          returned_30d: encounter.returned30d,
        })),
      )
      .onConflict((oc) =>
        oc
          .column('encounter_key')
          .doUpdateSet((eb) => Object.fromEntries(encounterColumns.map((column) => [column, eb.ref(`excluded.${column}`)])))
          .where(
            sql<boolean>`(${sql.join(encounterColumns.map((column) => sql.ref(`cohort_encounter.${column}`)))})
              is distinct from (${sql.join(encounterColumns.map((column) => sql.ref(`excluded.${column}`)))})`,
          ),
      )
      .execute();
  }

  for (const batch of chunks(keys, rowsPerStatement)) {
    await trx.deleteFrom('encounter_item').where('encounter_key', 'in', batch).execute();
    await trx.deleteFrom('lab_draw').where('encounter_key', 'in', batch).execute();
  }

  const items = unique.flatMap((record) => record.items);
  for (const batch of chunks(items, rowsPerStatement)) {
    await trx
      .insertInto('encounter_item')
      .values(
        batch.map((item) => ({
          encounter_key: item.encounterKey,
          item_code: item.itemCode,
          category: item.category,
          kind: item.kind,
          display: item.display,
          code_system: item.codeSystem,
          code: item.code,
          offset_minutes: item.offsetMinutes,
          clinician_key: item.clinicianKey,
        })),
      )
      .onConflict((oc) => oc.columns(['encounter_key', 'item_code']).doNothing())
      .execute();
  }

  const draws = unique.flatMap((record) => record.draws);
  for (const batch of chunks(draws, rowsPerStatement * 3)) {
    await trx
      .insertInto('lab_draw')
      .values(batch.map((draw) => ({ encounter_key: draw.encounterKey, draw_key: draw.drawKey, analyte_code: draw.analyteCode })))
      .onConflict((oc) => oc.columns(['encounter_key', 'draw_key', 'analyte_code']).doNothing())
      .execute();
  }
  return { encounters: unique.length, items: items.length, draws: draws.length };
}

/** How many ED stays the cohort holds. */
export async function countCohortEncounters(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('cohort_encounter')
    .select(sql<number>`cast(count(*) as integer)`.as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

// ---------------------------------------------------------------------------------------------------------
// Lab panels

export interface LabPanel {
  readonly panelCode: string;
  readonly display: string;
  /** Lab item codes (`lab:<code>`), most often drawn first. */
  readonly analyteCodes: readonly string[];
}

export interface LabPanelOptions {
  /** Two analytes belong together when |draws with both| / |draws with either| reaches this. */
  readonly minimumJaccard?: number;
  /** …and they were drawn together at least this often, so that one shared draw of two rare tests is no panel. */
  readonly minimumSharedDraws?: number;
}

interface Analyte {
  readonly code: string;
  readonly display: string;
  readonly draws: number;
}

interface PanelSignature {
  readonly display: string;
  readonly patterns: readonly RegExp[];
  /** How many of the patterns the panel's analytes must match. */
  readonly required: number;
}

// Checked in order; the first signature a panel satisfies names it. Patterns match analyte display names
// (MIMIC's d_labitems labels or LOINC display names), lower-cased.
const panelSignatures: readonly PanelSignature[] = [
  {
    display: 'Complete blood count with differential',
    patterns: [/hemoglobin$|^hemoglobin\b/, /hematocrit/, /white blood cells|^wbc\b|leukocytes \[/, /platelet/, /neutrophils/, /lymphocytes/, /monocytes/, /eosinophils/],
    required: 7,
  },
  { display: 'Complete blood count', patterns: [/^hemoglobin\b/, /^hematocrit\b/, /white blood cells|^wbc\b|leukocytes \[/, /^platelet/, /^mcv\b|^mch\b|^rdw\b/], required: 3 },
  { display: 'Blood count differential', patterns: [/neutrophils/, /lymphocytes/, /monocytes/, /eosinophils/, /basophils/], required: 3 },
  { display: 'Blood smear morphology', patterns: [/poikilocytosis/, /anisocytosis/, /polychromasia/, /microcytes/, /macrocytes/, /hypochromia/], required: 3 },
  {
    display: 'Basic metabolic panel',
    patterns: [/^sodium\b(?!.*urine)/, /^potassium\b(?!.*urine)/, /^chloride\b(?!.*urine)/, /bicarbonate|carbon dioxide/, /urea nitrogen(?!.*urine)|^bun\b/, /^creatinine\b(?!.*urine)/],
    required: 4,
  },
  { display: 'Urinalysis', patterns: [/specific gravity/, /urobilinogen/, /nitrite/, /ketone/, /urine color|urine appearance/, /leukocytes$|leukocyte esterase/], required: 3 },
  { display: 'Liver panel', patterns: [/aminotransferase|\bast\b|\balt\b/, /alkaline phosphatase/, /bilirubin, total|^bilirubin total/, /^albumin\b/], required: 3 },
  { display: 'Coagulation panel', patterns: [/inr/, /^pt\b|prothrombin time/, /^ptt\b|partial thromboplastin/], required: 2 },
  { display: 'Blood gas', patterns: [/^po2\b/, /^pco2\b/, /base excess/, /^ph\b/], required: 3 },
  { display: 'Urine toxicology screen', patterns: [/cocaine/, /opiate/, /amphetamine/, /methadone/, /benzodiazepine.*urine/, /barbiturate.*urine/], required: 3 },
  { display: 'Serum toxicology screen', patterns: [/salicylate/, /acetaminophen/, /ethanol/, /tricyclic/, /barbiturate/, /benzodiazepine/], required: 3 },
  { display: 'Urine electrolytes', patterns: [/sodium, urine/, /potassium, urine/, /chloride, urine/, /creatinine, urine/, /osmolality, urine/], required: 3 },
  { display: 'Calcium, magnesium and phosphate', patterns: [/^calcium\b/, /^magnesium\b/, /^phosphate\b|^phosphorus\b/], required: 3 },
  { display: 'Lipid panel', patterns: [/cholesterol, total|^cholesterol\b/, /triglycerides/, /\bhdl\b/, /\bldl\b/], required: 3 },
  { display: 'Iron studies', patterns: [/^iron\b/, /ferritin/, /transferrin/, /iron binding/], required: 3 },
  { display: 'Hepatitis serologies', patterns: [/hepatitis a/, /hepatitis b/, /hepatitis c/], required: 2 },
  { display: 'Serum indices (hemolysis, icterus, lipemia)', patterns: [/^h$/, /^i$/, /^l$/], required: 3 },
  { display: 'Co-oximetry', patterns: [/carboxyhemoglobin/, /methemoglobin/], required: 2 },
  { display: 'Whole blood chemistry', patterns: [/whole blood/, /^glucose\b/, /free calcium/], required: 2 },
  { display: 'Ventilator settings', patterns: [/tidal volume/, /peep/, /ventilation rate/], required: 2 },
  { display: 'Cerebrospinal fluid studies', patterns: [/\bcsf\b/], required: 1 },
  { display: 'Ascites fluid studies', patterns: [/ascites/], required: 1 },
  { display: 'Joint fluid studies', patterns: [/joint/], required: 1 },
  { display: 'Influenza A/B PCR', patterns: [/influenza a/, /influenza b/], required: 2 },
  { display: 'Thyroid function', patterns: [/thyroid stimulating|\btsh\b/, /thyroxine|\bt4\b/, /triiodothyronine|\bt3\b/], required: 2 },
  { display: 'Hemoglobin A1c', patterns: [/a1c/], required: 1 },
  { display: 'Reticulocyte count', patterns: [/reticulocyte/], required: 1 },
];

/** The clinical name of a set of analytes when it is recognisable, else null. */
export function recognisePanel(displays: readonly string[]): string | null {
  const lowered = displays.map((display) => display.toLowerCase().trim());
  for (const signature of panelSignatures) {
    const matched = signature.patterns.filter((pattern) => lowered.some((display) => pattern.test(display))).length;
    if (matched >= signature.required) return signature.display;
  }
  return null;
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Groups analytes into panels from co-occurrence: two analytes are linked when drawn together from the same
 * specimen often enough (Jaccard over draws), and each connected group of two or more is a panel.
 */
export function derivePanels(
  analytes: readonly Analyte[],
  pairs: ReadonlyArray<{ readonly a: string; readonly b: string; readonly shared: number }>,
  options: LabPanelOptions = {},
): LabPanel[] {
  const minimumJaccard = options.minimumJaccard ?? 0.6;
  const minimumShared = options.minimumSharedDraws ?? 2;
  const byCode = new Map(analytes.map((analyte) => [analyte.code, analyte]));
  const parent = new Map(analytes.map((analyte) => [analyte.code, analyte.code]));
  const root = (code: string): string => {
    let current = code;
    while (parent.get(current) !== current) current = parent.get(current) ?? current;
    parent.set(code, current);
    return current;
  };
  for (const { a, b, shared } of pairs) {
    const first = byCode.get(a);
    const second = byCode.get(b);
    if (!first || !second || shared < minimumShared) continue;
    const jaccard = shared / (first.draws + second.draws - shared);
    if (jaccard < minimumJaccard) continue;
    const [rootA, rootB] = [root(a), root(b)];
    // The smaller code becomes the root, so the grouping does not depend on the order of the pairs.
    if (rootA !== rootB) parent.set(rootA < rootB ? rootB : rootA, rootA < rootB ? rootA : rootB);
  }
  const groups = new Map<string, Analyte[]>();
  for (const analyte of analytes) {
    const key = root(analyte.code);
    const group = groups.get(key) ?? [];
    group.push(analyte);
    groups.set(key, group);
  }
  const ordered = [...groups.values()]
    .filter((group) => group.length >= 2)
    .map((group) => group.sort((x, y) => y.draws - x.draws || (x.code < y.code ? -1 : 1)))
    .sort((x, y) => y.length - x.length || (x[0]!.code < y[0]!.code ? -1 : 1));
  const used = new Set<string>();
  return ordered.map((group) => {
    const leader = group[0]!;
    const base = recognisePanel(group.map((analyte) => analyte.display)) ?? `${leader.display} panel (+${group.length - 1})`;
    let display = base;
    for (let suffix = 2; used.has(slug(display)); suffix += 1) display = `${base} (${suffix})`;
    used.add(slug(display));
    return { panelCode: `panel:${slug(display)}`, display, analyteCodes: group.map((analyte) => analyte.code) };
  });
}

/** Rebuilds lab_panel and lab_panel_member from all lab draws in the cohort; returns the panels. */
export async function rebuildLabPanels(db: Kysely<Database>, options: LabPanelOptions = {}): Promise<LabPanel[]> {
  const analyteRows = await db
    .selectFrom('lab_draw as draw')
    .leftJoin(
      (eb) =>
        eb
          .selectFrom('encounter_item')
          .select(['item_code', (inner) => inner.fn.min('display').as('display')])
          .where('kind', '=', 'lab')
          .groupBy('item_code')
          .as('item'),
      (join) => join.onRef('item.item_code', '=', 'draw.analyte_code'),
    )
    .select(['draw.analyte_code', sql<string | null>`min(item.display)`.as('display'), sql<number>`cast(count(*) as integer)`.as('draws')])
    .groupBy('draw.analyte_code')
    .execute();
  const pairRows = await sql<{ a: string; b: string; shared: number }>`
    select first.analyte_code as a, second.analyte_code as b, cast(count(*) as integer) as shared
    from lab_draw first
    join lab_draw second
      on second.encounter_key = first.encounter_key
     and second.draw_key = first.draw_key
     and second.analyte_code > first.analyte_code
    group by first.analyte_code, second.analyte_code`.execute(db);
  const panels = derivePanels(
    analyteRows.map((row) => ({ code: row.analyte_code, display: row.display ?? row.analyte_code, draws: Number(row.draws) })),
    pairRows.rows.map((row) => ({ a: row.a, b: row.b, shared: Number(row.shared) })),
    options,
  );
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('lab_panel_member').execute();
    await trx.deleteFrom('lab_panel').execute();
    for (const batch of chunks(panels, rowsPerStatement)) {
      await trx
        .insertInto('lab_panel')
        .values(batch.map((panel) => ({ panel_code: panel.panelCode, display: panel.display, analyte_codes: [...panel.analyteCodes] })))
        .execute();
    }
    const members = panels.flatMap((panel) => panel.analyteCodes.map((code) => ({ analyte_code: code, panel_code: panel.panelCode })));
    for (const batch of chunks(members, rowsPerStatement)) await trx.insertInto('lab_panel_member').values(batch).execute();
  });
  return panels;
}
