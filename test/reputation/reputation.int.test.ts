import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { formatReputationSummary } from '../../src/cli/reputation.command.js';
import { CachedCohortSource } from '../../src/cohort/cached-source.js';
import { InMemoryCohortSource, type InMemoryEncounter } from '../../src/cohort/in-memory-source.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import { listClinicianReputations, replaceClinicianReputations } from '../../src/db/reputation.repository.js';
import { runEvaluation } from '../../src/evaluate/evaluation.js';
import { recomputeClinicianReputation } from '../../src/reputation/recompute.js';
import { computeReputation } from '../../src/reputation/reputation.js';
import { applyOptOuts } from '../../src/privacy/opt-out.js';
import { loadEvaluationEncounters } from '../../src/db/evaluation-data.repository.js';
import { defaultRules } from '../../src/cohort/rules.js';
import { openTestDatabase } from '../helpers/database.js';
import { readMimic } from '../helpers/mimic.js';
import { makeCriteria } from '../cohort/fixtures.js';
import { openDemoDatabase } from '../helpers/test-templates.js';

const imaging = (code: string) => ({ itemCode: code, category: 'workup' as const, kind: 'imaging', display: code, codeSystem: null, code: null });

describe('reputation-weighted counts in SQL', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const clinicianOf = (index: number, code: string) => (code === 'order:ct' ? `c${index % 3}` : code === 'lab:50912' ? 'c9' : null);
  const codesOf = (index: number) => ['order:ct', 'order:us', 'lab:50912', 'lab:51006'].filter((_, position) => (index + position) % 3 !== 0);
  const weights = [
    { clinicianKey: 'c0', weight: 2.5 },
    { clinicianKey: 'c1', weight: 0.4 },
    { clinicianKey: 'c9', weight: 1.7 },
  ];

  beforeAll(async () => {
    database = await openTestDatabase();
    await database.db
      .insertInto('cohort_encounter')
      .values(
        Array.from({ length: 30 }, (_, index) => ({
          encounter_key: `e${index}`,
          patient_key: `p${index}`,
          age_years: 40 + index,
          sex: index % 2 === 0 ? 'female' : 'male',
          acuity: 3,
          complaint_concepts: ['abdominal-pain'],
          icd10_codes: [],
          icd10_categories: [],
          start_year: 2150,
          admitted: false,
          ed_los_minutes: 100,
          hospital_los_minutes: null,
          returned_72h: false,
          returned_30d: false,
        })),
      )
      .execute();
    await database.db
      .insertInto('encounter_item')
      .values(
        Array.from({ length: 30 }, (_, index) =>
          codesOf(index).map((code) => ({ ...toRow(imaging(code)), encounter_key: `e${index}`, clinician_key: clinicianOf(index, code) })),
        ).flat(),
      )
      .execute();
    // Creatinine and BUN fold into one panel: the panel takes the larger weight of its rows in an encounter.
    await database.db.insertInto('lab_panel').values({ panel_code: 'panel:renal', display: 'Renal panel', analyte_codes: ['lab:50912', 'lab:51006'] }).execute();
    await database.db
      .insertInto('lab_panel_member')
      .values([
        { analyte_code: 'lab:50912', panel_code: 'panel:renal' },
        { analyte_code: 'lab:51006', panel_code: 'panel:renal' },
      ])
      .execute();
    const rows = weights.map((one) => ({ ...one, orders: 1, encounters: 1, rawAgreement: null, agreement: 0.5, returnRate72h: 0 }));
    await replaceClinicianReputations(database.db, rows);
  });

  afterAll(async () => {
    await database.close();
  });

  function toRow(item: ReturnType<typeof imaging>) {
    return { item_code: item.itemCode, category: item.category, kind: item.kind, display: item.display, code_system: item.codeSystem, code: item.code };
  }

  it('stores and lists the reputations', async () => {
    expect((await listClinicianReputations(database.db)).map((one) => [one.clinicianKey, one.weight])).toEqual(weights.map((one) => [one.clinicianKey, one.weight]));
  });

  it('equals the in-memory reference, and leaves the plain counts as they were', async () => {
    const weightOf = new Map(weights.map((one) => [one.clinicianKey, one.weight]));
    const reference: InMemoryEncounter[] = Array.from({ length: 30 }, (_, index) => {
      const codes = codesOf(index);
      const renal = codes.filter((code) => code.startsWith('lab:'));
      const renalWeight = Math.max(...renal.map((code) => weightOf.get(clinicianOf(index, code) ?? '') ?? 1));
      return {
        sex: index % 2 === 0 ? 'female' : 'male',
        ageYears: 40 + index,
        acuity: 3,
        complaintConcepts: ['abdominal-pain'],
        icd10Codes: [],
        site: 'default',
        startYear: 2150,
        admitted: false,
        returned72h: false,
        edLosMinutes: 100,
        hospitalLosMinutes: null,
        items: [
          ...codes.filter((code) => code.startsWith('order:')).map((code) => ({ ...imaging(code), weight: weightOf.get(clinicianOf(index, code) ?? '') ?? 1 })),
          ...(renal.length > 0
            ? [{ itemCode: 'panel:renal', category: 'workup' as const, kind: 'lab-panel', display: 'Renal panel', codeSystem: 'urn:cohort-cds:lab-panel', code: 'panel:renal', weight: renalWeight }]
            : []),
        ],
      };
    });
    const memory = new InMemoryCohortSource(reference);
    const sqlSource = new SqlCohortSource(database.db);
    for (const criteria of [makeCriteria(), makeCriteria({ sex: 'female' }), makeCriteria({ ageMin: 50, ageMax: 60 })]) {
      const options = { itemWeighting: 'clinician-reputation' as const };
      const [fromSql, fromMemory] = await Promise.all([sqlSource.describeCohort(criteria, options), memory.describeCohort(criteria, options)]);
      const sorted = (items: typeof fromSql.items) => [...items].sort((a, b) => a.itemCode.localeCompare(b.itemCode)).map((one) => [one.itemCode, one.encounters, one.weightedEncounters]);
      expect(sorted(fromSql.items)).toEqual(sorted(fromMemory.items).map(([code, count, weight]) => [code, count, expect.closeTo(weight as number, 10)]));
      const plain = await sqlSource.describeCohort(criteria);
      expect(plain.items.every((one) => one.weightedEncounters === undefined)).toBe(true);
      expect(fromSql.items.map(({ weightedEncounters: _dropped, ...one }) => one)).toEqual(plain.items);
    }
    // The cache keeps weighted and plain answers apart.
    const cached = new CachedCohortSource(sqlSource, { maxEntries: 10, ttlMs: 60000 });
    expect((await cached.describeCohort(makeCriteria())).items[0]!.weightedEncounters).toBeUndefined();
    expect((await cached.describeCohort(makeCriteria(), { itemWeighting: 'clinician-reputation' })).items[0]!.weightedEncounters).toBeDefined();
  });
});

describe('reputation on the MIMIC-IV ED demo', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    ({ database } = await openDemoDatabase());
  }, 180_000);

  afterAll(async () => {
    await database.close();
  });

  it('rates every clinician named on a stored item, and stores the weights', async () => {
    const summary = await recomputeClinicianReputation(database.db);
    const stored = await database.db
      .selectFrom('encounter_item')
      .select([sql<number>`cast(count(*) as integer)`.as('items'), sql<number>`cast(count(distinct clinician_key) as integer)`.as('clinicians')])
      .where('clinician_key', 'is not', null)
      .executeTakeFirstOrThrow();
    // Only the demo's ServiceRequests name a requester; fewer items than requests (one row per item and visit).
    const requesters = new Set(readMimic('MimicServiceRequestED.ndjson.gz').map((request) => JSON.stringify(request.requester)));
    expect(stored.clinicians).toBeGreaterThan(0);
    expect(stored.clinicians).toBeLessThanOrEqual(requesters.size);
    expect(summary.clinicians).toHaveLength(stored.clinicians);
    expect(summary.itemsWithClinician).toBe(stored.items);
    const rows = await listClinicianReputations(database.db);
    expect(rows.map((row) => row.clinicianKey)).toEqual(summary.clinicians.map((one) => one.clinicianKey));
    for (const row of rows) {
      expect(row.weight).toBeGreaterThanOrEqual(0.25);
      expect(row.weight).toBeLessThanOrEqual(4);
      expect(row.clinicianKey).not.toMatch(/P[0-9A-Z]{5}/);
    }
    expect(formatReputationSummary(summary)).toContain(`clinicians: ${stored.clinicians};`);
  });

  it('computes the reputations again without an opted-out patient', async () => {
    const before = await listClinicianReputations(database.db);
    // The patient with the most clinician-named items.
    const { patient_key: patientKey } = await database.db
      .selectFrom('encounter_item')
      .innerJoin('cohort_encounter', 'cohort_encounter.encounter_key', 'encounter_item.encounter_key')
      .select('cohort_encounter.patient_key')
      .where('encounter_item.clinician_key', 'is not', null)
      .groupBy('cohort_encounter.patient_key')
      .orderBy(sql`count(*)`, 'desc')
      .limit(1)
      .executeTakeFirstOrThrow();
    await database.db.insertInto('patient_opt_out').values({ patient_key: patientKey, source: 'api', recorded_by: 'test' }).execute();
    const removed = await applyOptOuts(database.db);
    expect(removed.encounters).toBeGreaterThan(0);
    const after = await listClinicianReputations(database.db);
    expect(after).not.toEqual(before);
    expect(after).toEqual(computeReputation(await loadEvaluationEncounters(database.db)).clinicians);
  });

  it('backtests the demo with both rules columns', async () => {
    const result = await runEvaluation(database.db, { version: 1, rules: defaultRules }, { bootstrapResamples: 0 });
    expect(result.methods.map((one) => one.id)).toEqual(['rules', 'rules-reputation-weighted', 'overall-baseline', 'complaint-baseline']);
    expect(result.reputation!.clinicians).toBeGreaterThan(0);
  });
});
