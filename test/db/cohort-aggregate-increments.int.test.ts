/**
 * Incremental maintenance of the cohort aggregates on the real MIMIC demo: after a later day's export (new patients),
 * the same export sent again, encounters replaced (moved to other cells, items added, removed and given another
 * display), deleted (an opt-out while changes are pending) and added, the active generation brought up to date in
 * place holds exactly what a full rebuild from the cohort holds, rows with zero counts aside.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { aggregateDataVersion, rebuildCohortAggregates, refreshCohortAggregates } from '../../src/db/cohort-aggregate.repository.js';
import { saveCohortEncounters } from '../../src/db/cohort-encounter.repository.js';
import type { Database } from '../../src/db/database.js';
import { deleteEncountersOfPatients } from '../../src/db/opt-out.repository.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { patientIdOfResource } from '../../src/ingest/batch-work.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import type { CohortEncounterRecord } from '../../src/ingest/fhir-to-cohort.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import type { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

const hasher = createKeyHasher('increments-test-secret-0123456789abcdef');
type Json = Record<string, any>;
type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

async function writeDemoPart(directory: string, keep: (resource: Json) => boolean): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const file of await readdir(mimicDemoDirectory)) {
    if (!file.endsWith('.ndjson.gz')) continue;
    const lines = gunzipSync(await readFile(path.join(mimicDemoDirectory, file))).toString('utf8').split('\n').filter((line) => line.trim());
    await writeFile(path.join(directory, file), gzipSync(lines.filter((line) => keep(JSON.parse(line) as Json)).join('\n')));
  }
}

async function activeGeneration(db: Kysely<Database>): Promise<{ generation: number; revision: number; encounters: number }> {
  const result = await sql<{ generation: number; revision: number; encounters: number }>`
    select generation, revision, encounters from cohort_aggregate_generation where status = 'active'`.execute(db);
  const row = result.rows[0]!;
  return { generation: Number(row.generation), revision: Number(row.revision), encounters: Number(row.encounters) };
}

async function panelFingerprint(db: Kysely<Database>): Promise<string> {
  return (await sql<{ fingerprint: string }>`select cohort_aggregate_panel_fingerprint() as fingerprint`.execute(db)).rows[0]!.fingerprint;
}

/** The active generation's contents by cell key instead of cell id, rows that count nothing left out. */
async function generationContent(db: Kysely<Database>): Promise<Record<string, string[] | number>> {
  const { generation, encounters } = await activeGeneration(db);
  const cellKey = sql`cell.complaint_concept || '|' || cell.sex || '|' || cell.age_years || '|' || coalesce(cell.acuity::text, '-') || '|' ||
    cell.site || '|' || cell.start_year || '|' || array_to_string(cell.icd10_categories, ',')`;
  const lines = async (query: ReturnType<typeof sql<{ line: string }>>) => (await query.execute(db)).rows.map((row) => row.line).sort();
  return {
    encounters,
    cells: await lines(sql<{ line: string }>`
      select ${cellKey} || ' ' || cell.encounters || ' ' || cell.admitted || ' ' || cell.returned_72h as line
      from cohort_aggregate_cell as cell
      where cell.generation = ${generation} and (cell.encounters <> 0 or cell.admitted <> 0 or cell.returned_72h <> 0)`),
    items: await lines(sql<{ line: string }>`
      select ${cellKey} || ' ' || item.item_code || ' ' || item.encounters as line
      from cohort_aggregate_item as item join cohort_aggregate_cell as cell on cell.cell_id = item.cell_id
      where item.generation = ${generation} and item.encounters <> 0`),
    stays: await lines(sql<{ line: string }>`
      select ${cellKey} || ' ' || stay.kind || ' ' || stay.minutes || ' ' || stay.encounters as line
      from cohort_aggregate_length_of_stay as stay join cohort_aggregate_cell as cell on cell.cell_id = stay.cell_id
      where stay.generation = ${generation} and stay.encounters <> 0`),
    baseline: await lines(sql<{ line: string }>`
      select item_code || ' ' || encounters as line from cohort_aggregate_baseline_item where generation = ${generation} and encounters <> 0`),
    details: await lines(sql<{ line: string }>`
      select detail.item_code || ' ' || detail.category || ' ' || detail.kind || ' ' || detail.display || ' ' ||
        coalesce(detail.code_system, '-') || ' ' || coalesce(detail.code, '-') || ' ' || detail.uniform as line
      from cohort_aggregate_item_detail as detail
      join cohort_aggregate_baseline_item as baseline on baseline.generation = detail.generation and baseline.item_code = detail.item_code
      where detail.generation = ${generation} and baseline.encounters > 0`),
  };
}

/** Brings the aggregates up to date by increments, then checks them against a full rebuild of the same cohort. */
async function expectIncrementEqualsRebuild(database: TestDatabase): Promise<void> {
  const incremented = await generationContent(database.db);
  const pending = await sql<{ count: number }>`select cast(count(*) as integer) as count from cohort_aggregate_touched`.execute(database.db);
  expect(Number(pending.rows[0]!.count)).toBe(0);
  await rebuildCohortAggregates(database.db, { bySite: false, byStartYear: false });
  const rebuilt = await generationContent(database.db);
  expect((rebuilt.cells as string[]).length).toBeGreaterThan(50);
  expect(incremented).toEqual(rebuilt);
}

describe('aggregate increments on the real demo', () => {
  let scratch: string;
  let database: TestDatabase;
  let firstFolder: string;
  let secondFolder: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'cohort-increments-'));
    const patientIds = gunzipSync(await readFile(path.join(mimicDemoDirectory, 'MimicPatient.ndjson.gz')))
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => (JSON.parse(line) as Json).id as string)
      .sort();
    const firstPatients = new Set(patientIds.slice(0, Math.floor(patientIds.length / 2)));
    firstFolder = path.join(scratch, 'day-1');
    secondFolder = path.join(scratch, 'day-2');
    await writeDemoPart(firstFolder, (resource) => patientIdOfResource(resource) === null || firstPatients.has(patientIdOfResource(resource)!));
    await writeDemoPart(secondFolder, (resource) => patientIdOfResource(resource) === null || !firstPatients.has(patientIdOfResource(resource)!));
    database = await openReferenceDatabase();
    await seedDefaultRuleSet(database.db);
  }, 600_000);

  afterAll(async () => {
    await database?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  // On PostgreSQL the ingest loads with COPY, as in production; on PGlite with INSERTs.
  const ingest = (folder: string) => ingestPaths(database.db, [folder], { hasher, ...(database.url ? { databaseUrl: database.url } : {}) });

  it('builds a new generation when a later export changes the lab panels (half the demo and the whole differ)', async () => {
    await ingest(firstFolder);
    const first = await activeGeneration(database.db);
    const panelsBefore = await panelFingerprint(database.db);
    const versionBefore = await aggregateDataVersion(database.db);
    const second = await ingest(secondFolder);
    expect(second.loaded.encounters).toBeGreaterThan(50);
    // Panels fold analytes into the items counted: other panels, other counts everywhere.
    expect(await panelFingerprint(database.db)).not.toBe(panelsBefore);
    const after = await activeGeneration(database.db);
    expect(after.generation).toBeGreaterThan(first.generation);
    expect(after.encounters).toBe(first.encounters + second.loaded.encounters);
    expect(await aggregateDataVersion(database.db)).not.toBe(versionBefore);
    await expectIncrementEqualsRebuild(database);
  }, 300_000);

  it('brings the generation up to date in place when the same export comes again (every encounter replaced by itself)', async () => {
    const before = await generationContent(database.db);
    const generation = await activeGeneration(database.db);
    const versionBefore = await aggregateDataVersion(database.db);
    const again = await ingest(secondFolder);
    expect(again.loaded.encounters).toBeGreaterThan(50);
    const after = await activeGeneration(database.db);
    expect(after.generation).toBe(generation.generation);
    expect(after.revision).toBe(generation.revision + 1);
    // Caches and in-memory snapshots follow the data version: it moves with the increment.
    expect(await aggregateDataVersion(database.db)).not.toBe(versionBefore);
    expect(await generationContent(database.db)).toEqual(before);
    await expectIncrementEqualsRebuild(database);
  }, 300_000);

  it('follows encounters moved to other cells, with items added, removed and shown differently, deleted and added', async () => {
    const keys = (await sql<{ encounter_key: string; patient_key: string }>`
      select encounter_key, patient_key from cohort_encounter order by encounter_key`.execute(database.db)).rows;
    const items = (await sql<{ encounter_key: string; item_code: string; category: string; kind: string; display: string; code_system: string | null; code: string | null }>`
      select encounter_key, item_code, category, kind, display, code_system, code from encounter_item
      where encounter_key = any(${sql.val(keys.slice(0, 12).map((key) => key.encounter_key))}) order by encounter_key, item_code`.execute(database.db)).rows;
    const encounters = (await sql<Json>`select * from cohort_encounter where encounter_key = any(${sql.val(keys.slice(0, 12).map((key) => key.encounter_key))})
      order by encounter_key`.execute(database.db)).rows;
    expect(encounters.length).toBe(12);
    const records: CohortEncounterRecord[] = encounters.map((row, index) => ({
      encounter: {
        encounterKey: index === 11 ? 'increment-test-new-encounter' : row.encounter_key,
        patientKey: row.patient_key,
        site: row.site,
        // Every other one moves: another age, sex, acuity, categories, outcome.
        ageYears: index % 2 === 0 ? Number(row.age_years) + 7 : Number(row.age_years),
        sex: index % 4 === 0 ? (row.sex === 'female' ? 'male' : 'female') : row.sex,
        acuity: index % 2 === 0 ? (row.acuity === null ? 3 : null) : row.acuity === null ? null : Number(row.acuity),
        chiefComplaintText: row.chief_complaint_text,
        complaintConcepts: index % 3 === 0 ? ['chest-pain', ...row.complaint_concepts.filter((concept: string) => concept !== 'chest-pain')] : row.complaint_concepts,
        icd10Codes: row.icd10_codes,
        icd10Categories: index % 2 === 0 ? ['Z99', ...row.icd10_categories] : row.icd10_categories,
        historyIcd10Codes: row.history_icd10_codes,
        startYear: Number(row.start_year),
        disposition: row.disposition,
        admitted: index % 5 === 0 ? !row.admitted : row.admitted,
        edLosMinutes: index % 2 === 0 ? (row.ed_los_minutes === null ? 90 : Number(row.ed_los_minutes) + 13) : row.ed_los_minutes,
        hospitalLosMinutes: row.hospital_los_minutes === null ? (index % 5 === 0 ? 600 : null) : Number(row.hospital_los_minutes),
        returned72h: index % 3 === 1 ? !row.returned_72h : row.returned_72h,
        returned30d: row.returned_30d,
      },
      items: [
        // Every third item left out, one item added, and one shown under another display (no longer uniform).
        ...items
          .filter((item) => item.encounter_key === row.encounter_key)
          .filter((_, itemIndex) => itemIndex % 3 !== 2)
          .map((item, itemIndex) => ({
            encounterKey: index === 11 ? 'increment-test-new-encounter' : item.encounter_key,
            itemCode: item.item_code,
            category: item.category as 'workup' | 'treatment',
            kind: item.kind,
            display: index === 1 && itemIndex === 0 ? `${item.display} (as shown elsewhere)` : item.display,
            codeSystem: item.code_system,
            code: item.code,
            offsetMinutes: 5,
            clinicianKey: null,
          })),
        {
          encounterKey: index === 11 ? 'increment-test-new-encounter' : row.encounter_key,
          itemCode: 'increment-test:item',
          category: 'workup' as const,
          kind: 'imaging',
          display: 'Increment test item',
          codeSystem: null,
          code: null,
          offsetMinutes: 5,
          clinicianKey: null,
        },
      ],
      draws: [],
    }));
    const versionBefore = await aggregateDataVersion(database.db);
    await database.db.transaction().execute((trx) => saveCohortEncounters(trx, records));
    // An opt-out while changes are pending: a replaced encounter and an untouched one go.
    const replacedPatient = keys[2]!.patient_key;
    const untouchedPatient = keys.find((key, index) => index > 30 && !keys.slice(0, 12).some((first) => first.patient_key === key.patient_key))!.patient_key;
    // The opted-out encounters leave the generation at once, the replaced one in the version it counted.
    const counted = await sql<{ count: number }>`
      select cast(count(*) as integer) as count from cohort_encounter
      where patient_key = any(${sql.val([replacedPatient, untouchedPatient])}) and encounter_key <> 'increment-test-new-encounter'`.execute(database.db);
    const beforeDeletion = await activeGeneration(database.db);
    await deleteEncountersOfPatients(database.db, [replacedPatient, untouchedPatient]);
    expect((await activeGeneration(database.db)).encounters).toBe(beforeDeletion.encounters - Number(counted.rows[0]!.count));
    const refreshed = await refreshCohortAggregates(database.db);
    expect(refreshed.method).toBe('increment');
    expect(await aggregateDataVersion(database.db)).not.toBe(versionBefore);
    await expectIncrementEqualsRebuild(database);
  }, 300_000);

  it('rebuilds instead when the generation is split otherwise than the rules need', async () => {
    await sql`update cohort_aggregate_generation set by_site = true where status = 'active'`.execute(database.db);
    expect((await refreshCohortAggregates(database.db)).method).toBe('rebuild');
    expect((await refreshCohortAggregates(database.db)).method).toBe('increment');
  }, 300_000);
});
