import { describe, expect, it } from '@jest/globals';
import { InMemoryCohortSource } from '../../src/cohort/in-memory-source.js';
import { buildCohortLadder, selectCohort, strictestCriteria } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema } from '../../src/cohort/rules.js';
import { makeEncounters, makeFacts } from './fixtures.js';

describe('cohort criteria', () => {
  it('starts from sex, age band, primary complaint and ICD-10 at the rules level', () => {
    const criteria = strictestCriteria(makeFacts({ icd10Codes: ['K5730'] }), defaultRules);
    expect(criteria).toEqual({
      sex: 'female',
      ageMin: 40,
      ageMax: 60,
      complaintConcept: 'abdominal-pain',
      icd10: { level: 'category', codes: ['K5730'] },
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
