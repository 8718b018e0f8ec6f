import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { countCohortEncounters } from '../../src/db/cohort-encounter.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ensureDemoCohort } from '../../src/ingest/demo-cohort.js';
import { ingestPaths, type IngestReport } from '../../src/ingest/ingest.js';
import { projectRoot } from '../../src/paths.js';
import type { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

const mimicDirectory = path.resolve(projectRoot, '../shared/data/mimic-iv-ed-demo-fhir');
const hasher = createKeyHasher('integration-test-secret-0123456789abcdef');
const minute = 60_000;
/** The lab lead window the ingest uses by default (see CohortConversionContext.labLeadMinutes). */
const labLeadMinutes = 60;

// --- The raw demo, read here without any of the code under test. --------------------------------------

type Json = Record<string, any>;

function readDemo(name: string): Json[] {
  return gunzipSync(readFileSync(path.join(mimicDirectory, `${name}.ndjson.gz`)))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Json);
}

const idOf = (reference: string | undefined) => reference?.split('/').pop() ?? '';

const patients = readDemo('MimicPatient');
const edStays = readDemo('MimicEncounterED');
const hospitalStays = readDemo('MimicEncounter');
const labs = readDemo('MimicObservationLabeventsED');
const dispenses = readDemo('MimicMedicationDispenseED');
const serviceRequests = readDemo('MimicServiceRequestED');
const conditions = [...readDemo('MimicConditionED'), ...readDemo('MimicCondition')];

const usablePatients = new Set(patients.filter((patient) => patient.gender && patient.birthDate).map((patient) => patient.id as string));
const usableStays = edStays.filter((stay) => usablePatients.has(idOf(stay.subject.reference)));

/** The ED stay of a lab result: by its hospital link and time, else by patient and time. */
function stayOfLab(lab: Json): Json | undefined {
  const time = Date.parse(lab.effectiveDateTime);
  const candidates = usableStays.filter(
    (stay) =>
      stay.subject.reference === lab.subject.reference &&
      (lab.encounter === undefined || stay.partOf?.reference === lab.encounter.reference),
  );
  const inside = candidates.find((stay) => Date.parse(stay.period.start) <= time && time <= Date.parse(stay.period.end));
  return inside ?? candidates.find((stay) => time < Date.parse(stay.period.start) && time >= Date.parse(stay.period.start) - labLeadMinutes * minute);
}

function countReturnsWithin72h(): number {
  let returns = 0;
  for (const stay of usableStays) {
    const departure = Date.parse(stay.period.end);
    const start = Date.parse(stay.period.start);
    const next = usableStays
      .filter((other) => other.subject.reference === stay.subject.reference && Date.parse(other.period.start) > start)
      .map((other) => Date.parse(other.period.start))
      .sort((a, b) => a - b)[0];
    if (next !== undefined && next - departure >= 0 && next - departure <= 72 * 60 * minute) returns += 1;
  }
  return returns;
}

// --- Database helpers ----------------------------------------------------------------------------------

const contentColumns = {
  cohort_encounter: sql`encounter_key, patient_key, site, age_years, sex, acuity, chief_complaint_text, complaint_concepts,
    icd10_codes, icd10_categories, history_icd10_codes, start_year, disposition, admitted, ed_los_minutes,
    hospital_los_minutes, returned_72h, returned_30d`,
  encounter_item: sql`encounter_key, item_code, category, kind, display, code_system, code, offset_minutes, clinician_key`,
  lab_draw: sql`encounter_key, draw_key, analyte_codes`,
  lab_panel: sql`panel_code, display, analyte_codes`,
} as const;
type ContentTable = keyof typeof contentColumns;

/** Each row as text, patient data only (ingested_at is the load time, not the visit's). */
async function rowsAsText(db: Kysely<Database>, table: ContentTable): Promise<string[]> {
  const result = await sql<{ row: string }>`select row(${contentColumns[table]})::text as row from ${sql.table(table)}`.execute(db);
  return result.rows.map((row) => row.row).sort();
}

async function checksum(db: Kysely<Database>, table: ContentTable | 'cohort_encounter_with_time'): Promise<{ rows: number; md5: string }> {
  const columns = table === 'cohort_encounter_with_time' ? sql`${contentColumns.cohort_encounter}, ingested_at` : contentColumns[table];
  const from = table === 'cohort_encounter_with_time' ? 'cohort_encounter' : table;
  const result = await sql<{ rows: number; md5: string }>`
    select cast(count(*) as integer) as rows, md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as md5
    from (select ${columns} from ${sql.table(from)}) t`.execute(db);
  const row = result.rows[0];
  return { rows: Number(row?.rows ?? 0), md5: row?.md5 ?? '' };
}

describe('ingest of the MIMIC-IV-ED demo', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let report: IngestReport;
  let scratch: string;

  beforeAll(async () => {
    database = await openReferenceDatabase();
    scratch = await mkdtemp(path.join(tmpdir(), 'cohort-ingest-'));
    report = await ingestPaths(database.db, [mimicDirectory], { hasher });
  });
  afterAll(async () => {
    await database?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('loads every ED stay that has a usable patient', async () => {
    expect(edStays).toHaveLength(222);
    expect(report.loaded.encounters).toBe(usableStays.length);
    expect(report.skipped.encounters).toBe(edStays.length - usableStays.length);
    expect(await countCohortEncounters(database.db)).toBe(usableStays.length);
    expect(report.read.byResourceType).toMatchObject({ Patient: patients.length, MedicationDispense: dispenses.length });
    expect(report.malformed).toEqual([]);
  });

  it('counts admissions as the ADMITTED dispositions', async () => {
    const admitted = usableStays.filter((stay) => stay.hospitalization?.dischargeDisposition?.coding?.[0]?.code === 'ADMITTED').length;
    const row = await database.db
      .selectFrom('cohort_encounter')
      .select(sql<number>`cast(count(*) filter (where admitted) as integer)`.as('admitted'))
      .executeTakeFirstOrThrow();
    expect(Number(row.admitted)).toBe(admitted);
  });

  it('assigns lab results to ED stays by hospital link and time', async () => {
    const withCreatinine = new Set(labs.filter((lab) => lab.code.coding[0].code === '50912').map(stayOfLab).filter(Boolean));
    const row = await database.db
      .selectFrom('encounter_item')
      .where('item_code', '=', 'lab:50912')
      .select(sql<number>`cast(count(distinct encounter_key) as integer)`.as('encounters'))
      .executeTakeFirstOrThrow();
    expect(withCreatinine.size).toBeGreaterThan(150);
    expect(Number(row.encounters)).toBe(withCreatinine.size);
    // Tubes held for add-ons and the automatic serum indices record specimen handling, not orders.
    const handling = /\bhold\b|^uhold$|^[HIL]$|^Length of Urine Collection$|^Specimen Type$|(Voided|Problem) Specimen/i;
    const orderable = labs.filter((lab) => !handling.test(lab.code.text ?? lab.code.coding[0].display));
    const assigned = orderable.filter((lab) => stayOfLab(lab) !== undefined).length;
    expect(orderable.length).toBeLessThan(labs.length);
    expect(report.loaded.labResults).toBe(assigned);
    // One row per specimen: fewer draws than results, each draw with at least one.
    expect(report.loaded.draws).toBeGreaterThan(0);
    expect(report.loaded.draws).toBeLessThan(assigned);
    expect(report.skipped.reasons['lab-specimen-handling']).toBe(labs.length - orderable.length);
    expect(report.skipped.reasons['lab-outside-ed-stay'] ?? 0).toBe(orderable.length - assigned);
  });

  it('counts dispensed medications by ingredient for the stays that received any', async () => {
    const staysWithMedication = new Set(dispenses.map((dispense) => dispense.context.reference));
    const row = await database.db
      .selectFrom('encounter_item')
      .where('kind', '=', 'medication')
      .select([
        sql<number>`cast(count(distinct encounter_key) as integer)`.as('encounters'),
        sql<number>`cast(count(distinct item_code) filter (where item_code like 'med:morphine%') as integer)`.as('morphine_codes'),
      ])
      .executeTakeFirstOrThrow();
    expect(Number(row.encounters)).toBe(staysWithMedication.size);
    expect(Number(row.morphine_codes)).toBe(1);
    // Home medications (MedicationStatement) are not bundled and never become treatment items.
    const orders = new Set(serviceRequests.map((request) => request.encounter.reference));
    const ordered = await database.db
      .selectFrom('encounter_item')
      .where('item_code', 'like', 'order:%')
      .select(sql<number>`cast(count(distinct encounter_key) as integer)`.as('encounters'))
      .executeTakeFirstOrThrow();
    expect(Number(ordered.encounters)).toBe(orders.size);
  });

  it('finds the 72-hour returns', async () => {
    const row = await database.db
      .selectFrom('cohort_encounter')
      .select(sql<number>`cast(count(*) filter (where returned_72h) as integer)`.as('returns'))
      .executeTakeFirstOrThrow();
    expect(Number(row.returns)).toBe(countReturnsWithin72h());
  });

  it('maps ICD-9 visits to ICD-10 and keeps earlier diagnoses as history', async () => {
    const icd9Only = new Set(
      conditions
        .filter((condition) => condition.code.coding[0].system.endsWith('icd9'))
        .map((condition) => condition.encounter.reference)
        .filter((reference) => usableStays.some((stay) => `Encounter/${stay.id}` === reference)),
    );
    const rows = await database.db.selectFrom('cohort_encounter').select(['icd10_codes', 'icd10_categories', 'history_icd10_codes']).execute();
    expect(icd9Only.size).toBeGreaterThan(50);
    expect(rows.filter((row) => row.icd10_codes.length === 0).length).toBeLessThanOrEqual(2);
    for (const row of rows) expect(row.icd10_categories).toEqual([...new Set(row.icd10_codes.map((code) => code.slice(0, 3)))].sort());
    expect(rows.filter((row) => row.history_icd10_codes.length > 0).length).toBeGreaterThan(100);
    const hospitalIds = new Set(hospitalStays.map((stay) => stay.id));
    expect(conditions.some((condition) => hospitalIds.has(idOf(condition.encounter?.reference)))).toBe(true);
  });

  it('derives lab panels: the chemistry analytes in one, the blood count in another', async () => {
    const members = await database.db.selectFrom('lab_panel_member').select(['analyte_code', 'panel_code']).execute();
    const panelOf = new Map(members.map((member) => [member.analyte_code, member.panel_code]));
    const chemistry = ['lab:50912', 'lab:51006', 'lab:50983', 'lab:50971'].map((code) => panelOf.get(code));
    const bloodCount = ['lab:51222', 'lab:51265', 'lab:51301'].map((code) => panelOf.get(code));
    expect(new Set(chemistry).size).toBe(1);
    expect(new Set(bloodCount).size).toBe(1);
    expect(chemistry[0]).toBe('panel:basic-metabolic-panel');
    expect(bloodCount[0]).toMatch(/^panel:complete-blood-count/);
    expect(report.loaded.labPanels).toBeGreaterThan(5);
  });

  it('stores no identifier, name or date of the source', async () => {
    const forbidden = new Set<string>();
    for (const patient of patients) {
      forbidden.add(patient.id);
      for (const identifier of patient.identifier ?? []) forbidden.add(identifier.value);
      for (const name of patient.name ?? []) if (name.family) forbidden.add(name.family);
    }
    for (const stay of [...edStays, ...hospitalStays]) {
      forbidden.add(stay.id);
      for (const identifier of stay.identifier ?? []) forbidden.add(identifier.value);
    }
    for (const lab of labs) if (lab.specimen?.identifier?.value) forbidden.add(lab.specimen.identifier.value);
    for (const request of serviceRequests) if (request.requester?.identifier?.value) forbidden.add(request.requester.identifier.value);
    expect(forbidden.size).toBeGreaterThan(1000);

    const text = (await Promise.all((['cohort_encounter', 'encounter_item', 'lab_draw'] as const).map((table) => rowsAsText(database.db, table)))).flat();
    expect(text.length).toBeGreaterThan(10000);
    // Row text splits into tokens at the delimiters of row and array literals; a leaked value is one token.
    const tokens = new Set(text.join('\n').split(/[^A-Za-z0-9_.-]+/));
    expect([...forbidden].filter((value) => tokens.has(value))).toEqual([]);
    const keys = await database.db.selectFrom('lab_draw').select(['encounter_key', 'draw_key']).execute();
    expect(keys.filter((key) => !/^[0-9a-f]{32}$/.test(key.encounter_key) || !/^(?:[0-9a-f]{32}|time:-?\d+)$/.test(key.draw_key))).toEqual([]);
    expect(text.filter((row) => /\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}/.test(row))).toEqual([]);
  });

  it('changes nothing when the same files are ingested again', async () => {
    const tables = ['cohort_encounter_with_time', 'encounter_item', 'lab_draw', 'lab_panel'] as const;
    const before = await Promise.all(tables.map((table) => checksum(database.db, table)));
    const again = await ingestPaths(database.db, [mimicDirectory], { hasher });
    const after = await Promise.all(tables.map((table) => checksum(database.db, table)));
    expect(after).toEqual(before);
    expect(again.loaded).toEqual(report.loaded);
    const runs = await database.db.selectFrom('ingest_run').select(['finished_at', 'counts']).execute();
    expect(runs).toHaveLength(2);
    expect(runs.every((run) => run.finished_at !== null && run.counts.encounters === usableStays.length)).toBe(true);
  });

  it('reports a malformed line with its file and line number and goes on', async () => {
    const file = path.join(scratch, 'Broken.ndjson');
    // Line 4 has the shape staging routes without parsing it: the conversion finds it broken and says where.
    const cutShort = '{"resourceType": "Observation", "subject": {"reference": "Patient/x"}, "code": {"coding": [';
    await writeFile(file, [JSON.stringify(patients[0]), '{"resourceType": "Patient", "id": "x"', JSON.stringify({ id: 'no type' }), cutShort].join('\n'));
    const broken = await ingestPaths(database.db, [file], { hasher });
    expect(broken.malformed).toEqual([
      { file, line: 2, message: expect.stringMatching(/^invalid JSON/) },
      { file, line: 3, message: 'no resourceType' },
      { file, line: 4, message: expect.stringMatching(/^invalid JSON/) },
    ]);
    expect(broken.skipped.lines).toBe(3);
    expect(broken.read.resources).toBe(1);
    expect(broken.read.byResourceType).toEqual({ Patient: 1 });
    expect(await countCohortEncounters(database.db)).toBe(usableStays.length);
  });

  it('loads the bundled demo only into an empty cohort', async () => {
    await expect(ensureDemoCohort(database.db, { hasher })).resolves.toBeNull();
  });
});
