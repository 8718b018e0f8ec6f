import { describe, expect, it } from '@jest/globals';
import { InMemoryCohortSource } from '../../src/cohort/in-memory-source.js';
import { buildCohortLadder, filterCohort, matchesCriteria, newestStartYear, selectCohort, strictestCriteria } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema } from '../../src/cohort/rules.js';
import { makeCriteria, makeEncounters, makeFacts } from './fixtures.js';

describe('cohort criteria', () => {
  it('starts from sex, age band, primary complaint and ICD-10 at the rules level', () => {
    const criteria = strictestCriteria(makeFacts({ icd10Codes: ['K5730'] }), defaultRules);
    expect(criteria).toEqual({
      sex: 'female',
      ageMin: 40,
      ageMax: 60,
      acuity: null,
      complaintConcept: 'abdominal-pain',
      otherComplaintConcepts: [],
      icd10: { level: 'category', codes: ['K5730'], overlap: { measure: 'any' } },
      sites: null,
      lookback: null,
    });
  });

  it('does not constrain what the patient does not have', () => {
    const criteria = strictestCriteria(makeFacts({ sex: 'unknown', ageYears: null }), defaultRules);
    expect(criteria.sex).toBeNull();
    expect(criteria.ageMin).toBeNull();
    expect(criteria.icd10).toBeNull();
  });

  it('relaxes in the declared order, one rung per step that changes something', () => {
    const rules = rulesSchema.parse({ icd10Level: 'full' });
    const ladder = buildCohortLadder(makeFacts({ icd10Codes: ['K5730'] }), rules);
    expect(ladder.map((plan) => plan.relaxation.at(-1) ?? 'none')).toEqual([
      'none',
      'icd10-category',
      'ignore-icd10',
      'widen-age',
      'ignore-sex',
    ]);
    expect(ladder[3]!.criteria).toMatchObject({ ageMin: 30, ageMax: 70, icd10: null, sex: 'female' });
    // Without codes the ICD steps have nothing to relax.
    const noCodes = buildCohortLadder(makeFacts(), rules);
    expect(noCodes.map((plan) => plan.relaxation)).toEqual([[], ['widen-age'], ['widen-age', 'ignore-sex']]);
  });

  it('honours a reordered relaxation', () => {
    const rules = rulesSchema.parse({ relaxationOrder: ['ignore-sex', 'ignore-icd10'] });
    const ladder = buildCohortLadder(makeFacts({ icd10Codes: ['K5730'] }), rules);
    expect(ladder.map((plan) => plan.relaxation)).toEqual([[], ['ignore-sex'], ['ignore-sex', 'ignore-icd10']]);
  });
});

describe('selectCohort', () => {
  const encounters = [
    ...makeEncounters(6, { icd10Codes: ['K5730'] }),
    ...makeEncounters(6, { icd10Codes: ['K5792'] }),
    ...makeEncounters(20, { sex: 'male', icd10Codes: ['K5730'] }),
    ...makeEncounters(30, { complaintConcepts: ['chest-pain'], icd10Codes: ['R079'] }),
  ];
  const source = new InMemoryCohortSource(encounters);

  it('uses the strictest rung that reaches the minimum size', async () => {
    const rules = rulesSchema.parse({ icd10Level: 'full' });
    const outcome = await selectCohort(source, makeFacts({ icd10Codes: ['K5730'] }), rules);
    expect(outcome.kind).toBe('selected');
    if (outcome.kind !== 'selected') return;
    // Full code K5730: 6 women; category K57: 12 women ≥ 11.
    expect(outcome.selection.sizesTried).toEqual([6, 12]);
    expect(outcome.selection.plan.relaxation).toEqual(['icd10-category']);
    expect(outcome.selection.statistics.size).toBe(12);
  });

  it('reports a cohort too small after every relaxation', async () => {
    const outcome = await selectCohort(source, makeFacts({ complaintConcepts: ['seizure'] }), defaultRules);
    expect(outcome).toEqual({ kind: 'none', reason: 'cohort-too-small', sizesTried: [0, 0, 0] });
  });

  it('needs a complaint or a diagnosis to match on', async () => {
    const outcome = await selectCohort(source, makeFacts({ complaintConcepts: ['transfer'] }), defaultRules);
    expect(outcome).toEqual({ kind: 'none', reason: 'nothing-to-match', sizesTried: [] });
  });
});

describe('triage acuity', () => {
  it('constrains the cohort only when the rules ask and the EHR sent an acuity', () => {
    expect(strictestCriteria(makeFacts({ acuity: 2 }), defaultRules).acuity).toBeNull();
    expect(strictestCriteria(makeFacts({ acuity: null }), rulesSchema.parse({ acuityMatch: 'exact' })).acuity).toBeNull();
    expect(strictestCriteria(makeFacts({ acuity: 2 }), rulesSchema.parse({ acuityMatch: 'exact' })).acuity).toEqual({ min: 2, max: 2 });
  });

  it('takes one level either side with within-1, inside ESI 1–5', () => {
    const rules = rulesSchema.parse({ acuityMatch: 'within-1' });
    expect([1, 3, 5].map((acuity) => strictestCriteria(makeFacts({ acuity }), rules).acuity)).toEqual([
      { min: 1, max: 2 },
      { min: 2, max: 4 },
      { min: 4, max: 5 },
    ]);
  });

  it('leaves out prior encounters without a recorded acuity', () => {
    const criteria = makeCriteria({ acuity: { min: 1, max: 5 } });
    expect(matchesCriteria(makeEncounters(1, { acuity: null })[0]!, criteria)).toBe(false);
    expect(matchesCriteria(makeEncounters(1, { acuity: 5 })[0]!, criteria)).toBe(true);
  });

  it('is dropped by the ignore-acuity step, which adds a rung only when acuity was matched', () => {
    const rules = rulesSchema.parse({ acuityMatch: 'exact', relaxationOrder: ['ignore-acuity', 'ignore-sex'] });
    expect(buildCohortLadder(makeFacts({ acuity: 2 }), rules).map((plan) => plan.relaxation)).toEqual([
      [],
      ['ignore-acuity'],
      ['ignore-acuity', 'ignore-sex'],
    ]);
    expect(buildCohortLadder(makeFacts({ acuity: null }), rules).map((plan) => plan.relaxation)).toEqual([[], ['ignore-sex']]);
  });

  it('relaxes to a cohort of other acuities when its own is too small', async () => {
    const source = new InMemoryCohortSource([...makeEncounters(5, { acuity: 1 }), ...makeEncounters(20, { acuity: 3 })]);
    const rules = rulesSchema.parse({ acuityMatch: 'within-1' });
    const outcome = await selectCohort(source, makeFacts({ acuity: 1 }), rules);
    expect(outcome.kind).toBe('selected');
    if (outcome.kind !== 'selected') return;
    // ESI 1–2: 5 visits, then widening age and ignoring sex change nothing here, then acuity goes.
    expect(outcome.selection.sizesTried).toEqual([5, 5, 5, 25]);
    expect(outcome.selection.plan.relaxation).toEqual(['widen-age', 'ignore-sex', 'ignore-acuity']);
    const kept = await selectCohort(source, makeFacts({ acuity: 4 }), rules);
    expect(kept.kind === 'selected' && kept.selection.plan.criteria.acuity).toEqual({ min: 3, max: 5 });
  });
});

describe('chief complaint match', () => {
  const facts = makeFacts({ complaintConcepts: ['abdominal-pain', 'nausea-vomiting', 'transfer'] });

  it('matches the primary concept only by default', () => {
    expect(strictestCriteria(facts, defaultRules)).toMatchObject({ complaintConcept: 'abdominal-pain', otherComplaintConcepts: [] });
  });

  it('with any, also matches the other clinical concepts, never a modifier', () => {
    const criteria = strictestCriteria(facts, rulesSchema.parse({ complaintMatch: 'any' }));
    expect(criteria).toMatchObject({ complaintConcept: 'abdominal-pain', otherComplaintConcepts: ['nausea-vomiting'] });
    const encounter = (complaintConcepts: string[]) => makeEncounters(1, { complaintConcepts })[0]!;
    expect(matchesCriteria(encounter(['nausea-vomiting']), criteria)).toBe(true);
    expect(matchesCriteria(encounter(['chest-pain', 'abdominal-pain']), criteria)).toBe(true);
    expect(matchesCriteria(encounter(['transfer']), criteria)).toBe(false);
    expect(matchesCriteria(encounter(['nausea-vomiting']), strictestCriteria(facts, defaultRules))).toBe(false);
  });
});

describe('ICD-10 overlap', () => {
  const encounter = (icd10Codes: string[]) => makeEncounters(1, { icd10Codes })[0]!;
  const patient = ['K5730', 'R1084'];

  it('any: one code in common', () => {
    const criteria = makeCriteria({ icd10: { level: 'full', codes: patient, overlap: { measure: 'any' } } });
    expect(matchesCriteria(encounter(['R1084', 'I10']), criteria)).toBe(true);
    expect(matchesCriteria(encounter(['K5792']), criteria)).toBe(false);
  });

  it('all: every one of the patient’s codes, or categories at the category level', () => {
    const full = makeCriteria({ icd10: { level: 'full', codes: patient, overlap: { measure: 'all' } } });
    expect(matchesCriteria(encounter(['R1084', 'K5730', 'I10']), full)).toBe(true);
    expect(matchesCriteria(encounter(['R1084', 'K5792']), full)).toBe(false);
    const category = makeCriteria({ icd10: { level: 'category', codes: patient, overlap: { measure: 'all' } } });
    expect(matchesCriteria(encounter(['R1084', 'K5792']), category)).toBe(true);
  });

  it('jaccard: shared codes over all codes of both, the threshold included', () => {
    const criteria = (atLeast: number) => makeCriteria({ icd10: { level: 'full', codes: patient, overlap: { measure: 'jaccard', atLeast } } });
    // {K5730, R1084} against {K5730, I10}: 1 shared of 3 distinct codes.
    const third = encounter(['K5730', 'I10']);
    expect(matchesCriteria(third, criteria(1 / 3))).toBe(true);
    expect(matchesCriteria(third, criteria(0.34))).toBe(false);
    expect(matchesCriteria(encounter(['R1084', 'K5730']), criteria(1))).toBe(true);
    // Category level: K5730 and K5792 are both K57, so {K57, R10} against {K57, R10}.
    const category = makeCriteria({ icd10: { level: 'category', codes: patient, overlap: { measure: 'jaccard', atLeast: 1 } } });
    expect(matchesCriteria(encounter(['K5792', 'R1010']), category)).toBe(true);
  });

  it('follows the rules into the criteria and keeps its measure when the ladder goes to categories', () => {
    const rules = rulesSchema.parse({ icd10Level: 'full', icd10Overlap: 'jaccard', icd10MinJaccard: 0.4 });
    const ladder = buildCohortLadder(makeFacts({ icd10Codes: patient }), rules);
    expect(ladder[0]!.criteria.icd10).toEqual({ level: 'full', codes: patient, overlap: { measure: 'jaccard', atLeast: 0.4 } });
    expect(ladder[1]!.criteria.icd10).toEqual({ level: 'category', codes: patient, overlap: { measure: 'jaccard', atLeast: 0.4 } });
    expect(strictestCriteria(makeFacts({ icd10Codes: patient }), rulesSchema.parse({ icd10Overlap: 'all' })).icd10?.overlap).toEqual({
      measure: 'all',
    });
  });
});

describe('look-back window', () => {
  const encounters = [2140, 2145, 2146, 2150].flatMap((startYear) => makeEncounters(3, { startYear }));

  it('counts back from the reference year the caller passes, that year included', () => {
    const rules = rulesSchema.parse({ lookbackYears: 5 });
    const criteria = strictestCriteria(makeFacts(), rules, { referenceYear: 2146 });
    expect(criteria.lookback).toEqual({ years: 5, referenceYear: 2146 });
    // 2142–2146: the encounters of 2145 and 2146 (and, the window being a lower bound only, of 2150).
    expect(filterCohort(encounters, criteria).map((encounter) => encounter.startYear)).toEqual([2145, 2145, 2145, 2146, 2146, 2146, 2150, 2150, 2150]);
  });

  it('counts back from the newest start year on record without one', () => {
    expect(newestStartYear(encounters)).toBe(2150);
    const criteria = strictestCriteria(makeFacts(), rulesSchema.parse({ lookbackYears: 5 }));
    expect(criteria.lookback).toEqual({ years: 5, referenceYear: null });
    expect(filterCohort(encounters, criteria).map((encounter) => encounter.startYear)).toEqual([2146, 2146, 2146, 2150, 2150, 2150]);
    const oneYear = makeCriteria({ lookback: { years: 1, referenceYear: null } });
    expect(filterCohort(encounters, oneYear)).toHaveLength(3);
  });

  it('needs the newest start year to judge one encounter without a reference year', () => {
    const criteria = makeCriteria({ lookback: { years: 5, referenceYear: null } });
    expect(() => matchesCriteria(encounters[0]!, criteria)).toThrow(RangeError);
    expect(matchesCriteria(encounters[0]!, criteria, 2144)).toBe(true);
    expect(matchesCriteria(encounters[0]!, criteria, 2145)).toBe(false);
  });

  it('is not applied without a rules value', () => {
    expect(strictestCriteria(makeFacts(), defaultRules, { referenceYear: 2146 }).lookback).toBeNull();
  });

  it('reaches selectCohort through its options', async () => {
    const outcome = await selectCohort(new InMemoryCohortSource(encounters), makeFacts(), rulesSchema.parse({ lookbackYears: 5, minCohortSize: 3, minCellSize: 3 }), {
      referenceYear: 2145,
    });
    expect(outcome.kind === 'selected' && outcome.selection.statistics.size).toBe(9);
  });
});

describe('sites', () => {
  it('keeps prior encounters of the listed sites only', async () => {
    const source = new InMemoryCohortSource([...makeEncounters(12, { site: 'north' }), ...makeEncounters(12, { site: 'south' })]);
    const rules = rulesSchema.parse({ sites: ['north'] });
    expect(strictestCriteria(makeFacts(), rules).sites).toEqual(['north']);
    const outcome = await selectCohort(source, makeFacts(), rules);
    expect(outcome.kind === 'selected' && outcome.selection.statistics.size).toBe(12);
    const every = await selectCohort(source, makeFacts(), defaultRules);
    expect(every.kind === 'selected' && every.selection.statistics.size).toBe(24);
  });
});
