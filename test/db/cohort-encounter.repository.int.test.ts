import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  countCohortEncounters,
  rebuildLabPanels,
  saveCohortEncounters,
} from '../../src/db/cohort-encounter.repository.js';
import type { CohortEncounterRecord, EncounterItemRow } from '../../src/ingest/fhir-to-cohort.js';
import { openTestDatabase } from '../helpers/database.js';

function record(key: string, items: Array<Partial<EncounterItemRow> & { itemCode: string }>, draws: Array<[string, string]> = []): CohortEncounterRecord {
  return {
    encounter: {
      encounterKey: key,
      patientKey: `patient-${key}`,
      site: 'default',
      ageYears: 64,
      sex: 'female',
      acuity: 2,
      chiefComplaintText: 'Chest pain',
      complaintConcepts: ['chest-pain'],
      icd10Codes: ['R079'],
      icd10Categories: ['R07'],
      historyIcd10Codes: [],
      startYear: 2150,
      disposition: 'HOME',
      admitted: false,
      edLosMinutes: 240,
      hospitalLosMinutes: null,
      returned72h: false,
      returned30d: false,
    },
    items: items.map((item) => ({
      encounterKey: key,
      category: 'workup',
      kind: 'lab',
      display: item.itemCode,
      codeSystem: null,
      code: null,
      offsetMinutes: 10,
      clinicianKey: null,
      ...item,
    })),
    // One row per draw, its analytes sorted, as the conversion makes them.
    draws: [...new Set(draws.map(([drawKey]) => drawKey))].map((drawKey) => ({
      encounterKey: key,
      drawKey,
      analyteCodes: draws.filter(([other]) => other === drawKey).map(([, analyteCode]) => analyteCode).sort(),
    })),
  };
}

describe('cohort encounter repository', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  it('replaces an encounter with its items and draws, and keeps ingested_at when nothing changed', async () => {
    const first = [
      record('e1', [{ itemCode: 'lab:na' }, { itemCode: 'lab:k' }], [['d1', 'lab:na'], ['d1', 'lab:k']]),
      record('e2', [{ itemCode: 'med:morphine', category: 'treatment', kind: 'medication' }]),
    ];
    await expect(database.db.transaction().execute((trx) => saveCohortEncounters(trx, first))).resolves.toEqual({ encounters: 2, items: 3, draws: 1, labResults: 2 });
    const before = await database.db.selectFrom('cohort_encounter').select(['encounter_key', 'ingested_at']).orderBy('encounter_key').execute();

    await database.db.transaction().execute((trx) => saveCohortEncounters(trx, first));
    const unchanged = await database.db.selectFrom('cohort_encounter').select(['encounter_key', 'ingested_at']).orderBy('encounter_key').execute();
    expect(unchanged).toEqual(before);

    const changed = record('e1', [{ itemCode: 'lab:na' }], [['d9', 'lab:na']]);
    await database.db.transaction().execute((trx) => saveCohortEncounters(trx, [{ ...changed, encounter: { ...changed.encounter, acuity: 1 } }]));
    const items = await database.db.selectFrom('encounter_item').select(['encounter_key', 'item_code']).orderBy('encounter_key').orderBy('item_code').execute();
    expect(items).toEqual([
      { encounter_key: 'e1', item_code: 'lab:na' },
      { encounter_key: 'e2', item_code: 'med:morphine' },
    ]);
    const draws = await database.db.selectFrom('lab_draw').select(['draw_key', 'analyte_codes']).execute();
    expect(draws).toEqual([{ draw_key: 'd9', analyte_codes: ['lab:na'] }]);
    const e1 = await database.db.selectFrom('cohort_encounter').select(['acuity', 'complaint_concepts']).where('encounter_key', '=', 'e1').executeTakeFirstOrThrow();
    expect(e1).toEqual({ acuity: 1, complaint_concepts: ['chest-pain'] });
    expect(await countCohortEncounters(database.db)).toBe(2);
  });

  it('saves in batches larger than one statement', async () => {
    const many = Array.from({ length: 2500 }, (_, index) => record(`bulk-${index}`, [{ itemCode: 'lab:na' }, { itemCode: 'lab:k' }], [['d', 'lab:na'], ['d', 'lab:k']]));
    const saved = await database.db.transaction().execute((trx) => saveCohortEncounters(trx, many));
    expect(saved).toEqual({ encounters: 2500, items: 5000, draws: 2500, labResults: 5000 });
    expect(await countCohortEncounters(database.db)).toBe(2502);
  });

  it('rebuilds the lab panels from the draws', async () => {
    const panels = await rebuildLabPanels(database.db);
    // Sodium was drawn once more (d9 of e1), so it leads and names the panel.
    expect(panels).toEqual([{ panelCode: 'panel:lab-na-panel-1', display: 'lab:na panel (+1)', analyteCodes: ['lab:na', 'lab:k'] }]);
    const members = await database.db.selectFrom('lab_panel_member').select(['analyte_code', 'panel_code']).orderBy('analyte_code').execute();
    expect(members).toEqual([
      { analyte_code: 'lab:k', panel_code: 'panel:lab-na-panel-1' },
      { analyte_code: 'lab:na', panel_code: 'panel:lab-na-panel-1' },
    ]);
    await expect(rebuildLabPanels(database.db)).resolves.toEqual(panels);
  });
});
