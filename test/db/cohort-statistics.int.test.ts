import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { InMemoryCohortSource, type InMemoryEncounter } from '../../src/cohort/in-memory-source.js';
import type { CohortCriteria, Icd10Overlap } from '../../src/cohort/types.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import { openTestDatabase } from '../helpers/database.js';

const concepts = ['abdominal-pain', 'chest-pain', 'dyspnea', 'fall'];
const codes = ['R1084', 'R1010', 'K5730', 'K5792', 'R079', 'I214', 'J189', 'S0990XA'];
const sites = ['default', 'north', 'south'];
const itemPool = [
  { itemCode: 'lab:50912', category: 'workup' as const, kind: 'lab', display: 'Creatinine', codeSystem: 'urn:lab', code: '50912' },
  { itemCode: 'lab:51006', category: 'workup' as const, kind: 'lab', display: 'Urea Nitrogen', codeSystem: 'urn:lab', code: '51006' },
  { itemCode: 'lab:50813', category: 'workup' as const, kind: 'lab', display: 'Lactate', codeSystem: 'urn:lab', code: '50813' },
  { itemCode: 'order:ct', category: 'workup' as const, kind: 'imaging', display: 'CT', codeSystem: null, code: null },
  { itemCode: 'med:morphine', category: 'treatment' as const, kind: 'medication', display: 'Morphine', codeSystem: 'urn:ing', code: 'morphine' },
];

/** A deterministic pseudo-random cohort of 300 encounters. */
function makeCohort(): InMemoryEncounter[] {
  let seed = 42;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const pick = <T>(values: readonly T[]) => values[Math.floor(next() * values.length)]!;
  return Array.from({ length: 300 }, () => {
    const admitted = next() < 0.4;
    const codeCount = 1 + Math.floor(next() * 4);
    return {
      sex: next() < 0.5 ? 'female' : 'male',
      ageYears: 18 + Math.floor(next() * 73),
      // About one in ten without a recorded acuity, as in the demo.
      acuity: next() < 0.1 ? null : 1 + Math.floor(next() * 5),
      complaintConcepts: next() < 0.3 ? [...new Set([pick(concepts), pick(concepts)])] : [pick(concepts)],
      icd10Codes: [...new Set(Array.from({ length: codeCount }, () => pick(codes)))].sort(),
      site: pick(sites),
      startYear: 2150 + Math.floor(next() * 40),
      admitted,
      returned72h: next() < 0.08,
      edLosMinutes: next() < 0.9 ? Math.floor(60 + next() * 900) : null,
      hospitalLosMinutes: admitted && next() < 0.9 ? Math.floor(1000 + next() * 9000) : null,
      items: itemPool.filter(() => next() < 0.5),
    };
  });
}

describe('SqlCohortSource', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const cohort = makeCohort();
  const reference = new InMemoryCohortSource(
    // The SQL folds analytes of a panel into the panel: creatinine and BUN form one here.
    cohort.map((encounter) => ({
      ...encounter,
      items: encounter.items.map((item) =>
        item.itemCode === 'lab:50912' || item.itemCode === 'lab:51006'
          ? { itemCode: 'panel:renal', category: 'workup' as const, kind: 'lab-panel', display: 'Renal panel', codeSystem: 'urn:cohort-cds:lab-panel', code: 'panel:renal' }
          : item,
      ),
    })),
  );

  beforeAll(async () => {
    database = await openTestDatabase();
    await database.db
      .insertInto('cohort_encounter')
      .values(
        cohort.map((encounter, index) => ({
          encounter_key: `e${index}`,
          patient_key: `p${index % 120}`,
          age_years: encounter.ageYears,
          sex: encounter.sex,
          acuity: encounter.acuity,
          site: encounter.site,
          complaint_concepts: [...encounter.complaintConcepts],
          icd10_codes: [...encounter.icd10Codes],
          icd10_categories: [...new Set(encounter.icd10Codes.map((code) => code.slice(0, 3)))],
          start_year: encounter.startYear,
          admitted: encounter.admitted,
          ed_los_minutes: encounter.edLosMinutes,
          hospital_los_minutes: encounter.hospitalLosMinutes,
          returned_72h: encounter.returned72h,
          returned_30d: encounter.returned72h,
        })),
      )
      .execute();
    const items = cohort.flatMap((encounter, index) =>
      encounter.items.map((item) => ({
        encounter_key: `e${index}`,
        item_code: item.itemCode,
        category: item.category,
        kind: item.kind,
        display: item.display,
        code_system: item.codeSystem,
        code: item.code,
      })),
    );
    await database.db.insertInto('encounter_item').values(items).execute();
    await database.db.insertInto('lab_panel').values({ panel_code: 'panel:renal', display: 'Renal panel', analyte_codes: ['lab:50912', 'lab:51006'] }).execute();
    await database.db
      .insertInto('lab_panel_member')
      .values([
        { analyte_code: 'lab:50912', panel_code: 'panel:renal' },
        { analyte_code: 'lab:51006', panel_code: 'panel:renal' },
      ])
      .execute();
  });

  afterAll(async () => {
    await database.close();
  });

  const overlapArbitrary: fc.Arbitrary<Icd10Overlap> = fc.oneof(
    fc.constant({ measure: 'any' as const }),
    fc.constant({ measure: 'all' as const }),
    fc.record({
      measure: fc.constant('jaccard' as const),
      // Thresholds that equal a ratio of small integers exactly (1/3, 2/3…) are where float rounding would show.
      atLeast: fc.oneof(fc.constantFrom(1 / 3, 2 / 3, 0.25, 0.5, 0.75, 0.2, 0.6, 1), fc.double({ min: 0.01, max: 1, noNaN: true })),
    }),
  );

  // Each constraint is left out half the time, so that cohorts are seldom empty.
  const criteriaArbitrary: fc.Arbitrary<CohortCriteria> = fc.record({
    sex: fc.constantFrom(null, 'female' as const, 'male' as const),
    ageMin: fc.option(fc.integer({ min: 0, max: 60 }), { nil: null, freq: 2 }),
    ageMax: fc.option(fc.integer({ min: 40, max: 100 }), { nil: null, freq: 2 }),
    acuity: fc.option(
      fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 2 })).map(([min, spread]) => ({ min, max: Math.min(5, min + spread) })),
      { nil: null, freq: 2 },
    ),
    complaintConcept: fc.option(fc.constantFrom(...concepts), { nil: null, freq: 2 }),
    otherComplaintConcepts: fc.subarray(concepts, { maxLength: 2 }),
    icd10: fc.option(
      fc.record({
        level: fc.constantFrom('full' as const, 'category' as const),
        codes: fc.subarray(codes, { minLength: 1, maxLength: 4 }),
        overlap: overlapArbitrary,
      }),
      { nil: null, freq: 2 },
    ),
    // 'east' has no encounters.
    sites: fc.option(fc.subarray([...sites, 'east'], { minLength: 1 }), { nil: null, freq: 2 }),
    lookback: fc.option(
      fc.record({ years: fc.integer({ min: 1, max: 30 }), referenceYear: fc.option(fc.integer({ min: 2150, max: 2200 }), { nil: null, freq: 2 }) }),
      { nil: null, freq: 2 },
    ),
  });

  it('counts every rung as the reference semantics do', async () => {
    const source = new SqlCohortSource(database.db);
    await fc.assert(
      fc.asyncProperty(fc.array(criteriaArbitrary, { minLength: 1, maxLength: 5 }), async (criteria) => {
        expect(await source.countCohorts(criteria)).toEqual(await reference.countCohorts(criteria));
      }),
      { numRuns: 150 },
    );
  });

  it('describes a cohort (items folded into panels, outcomes, medians) as the reference does', async () => {
    const source = new SqlCohortSource(database.db);
    await fc.assert(
      fc.asyncProperty(criteriaArbitrary, async (criteria) => {
        const [actual, expected] = await Promise.all([source.describeCohort(criteria), reference.describeCohort(criteria)]);
        expect(actual.size).toBe(expected.size);
        expect(actual.outcomes).toEqual(expected.outcomes);
        expect([...actual.items].sort((a, b) => a.itemCode.localeCompare(b.itemCode))).toEqual(
          [...expected.items].sort((a, b) => a.itemCode.localeCompare(b.itemCode)),
        );
      }),
      { numRuns: 80 },
    );
  });

  it('gives the baseline over all encounters', async () => {
    const baseline = await new SqlCohortSource(database.db).describeBaseline();
    expect(baseline.size).toBe(300);
    expect(baseline).toEqual(await reference.describeBaseline());
  });
});
