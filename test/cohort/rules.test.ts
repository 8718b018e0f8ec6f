import { describe, expect, it } from '@jest/globals';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema } from '../../src/cohort/rules.js';
import { makeFacts } from './fixtures.js';

/** Version 1 as the seed stored it before acuity, overlap, complaint match, look-back and sites existed. */
const storedBeforeTheseFields = {
  ageWindowYears: 10,
  widenedAgeWindowYears: 20,
  matchSex: true,
  icd10Level: 'category',
  relaxationOrder: ['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex'],
  minCohortSize: 11,
  minCellSize: 11,
  minItemShare: 0.1,
  routineBaselineShare: 0.85,
  maxItemsPerCard: 5,
  admissionWarningRate: 0.5,
  returnWarningRate: 0.1,
};

/** The zod issues of a rules draft, as the console shows them: field path → message. */
function issuesOf(draft: Record<string, unknown>): Record<string, string> {
  const result = rulesSchema.safeParse(draft);
  if (result.success) return {};
  return Object.fromEntries(result.error.issues.map((issue) => [issue.path.join('.'), issue.message]));
}

describe('rules defaults', () => {
  it('fill the new fields of an older stored version with what that version did', () => {
    const rules = rulesSchema.parse(storedBeforeTheseFields);
    expect(rules).toMatchObject({
      acuityMatch: 'ignore',
      icd10Overlap: 'any',
      icd10MinJaccard: 0.5,
      complaintMatch: 'primary',
      lookbackYears: null,
      sites: null,
      relaxationOrder: storedBeforeTheseFields.relaxationOrder,
    });
  });

  it('give an older version the same ladder as before, even for a patient with an acuity', () => {
    const facts = makeFacts({ acuity: 2, icd10Codes: ['K5730', 'R1084'], complaintConcepts: ['abdominal-pain', 'nausea-vomiting'] });
    const older = buildCohortLadder(facts, rulesSchema.parse(storedBeforeTheseFields));
    const current = buildCohortLadder(facts, defaultRules);
    expect(current).toEqual(older);
    expect(older.every((plan) => plan.criteria.acuity === null && plan.criteria.otherComplaintConcepts.length === 0)).toBe(true);
  });

  it('list ignore-acuity last in the default order, where it changes nothing while acuity is ignored', () => {
    expect(defaultRules.relaxationOrder).toEqual(['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex', 'ignore-acuity']);
  });

  it('accept every new option', () => {
    const rules = rulesSchema.parse({
      acuityMatch: 'within-1',
      icd10Overlap: 'jaccard',
      icd10MinJaccard: 1,
      complaintMatch: 'any',
      lookbackYears: 1,
      sites: ['north', 'south'],
      relaxationOrder: ['ignore-acuity', 'ignore-icd10'],
    });
    expect(rules).toMatchObject({ acuityMatch: 'within-1', icd10Overlap: 'jaccard', lookbackYears: 1, sites: ['north', 'south'] });
  });
});

describe('rules validation', () => {
  it('names the field and what it accepts', () => {
    expect(issuesOf({ acuityMatch: 'sometimes' })).toEqual({ acuityMatch: "one of 'ignore', 'exact', 'within-1'" });
    expect(issuesOf({ icd10Overlap: 'most' })).toEqual({ icd10Overlap: "one of 'any', 'all', 'jaccard'" });
    expect(issuesOf({ complaintMatch: 'all' })).toEqual({ complaintMatch: "one of 'primary', 'any'" });
    expect(issuesOf({ relaxationOrder: ['ignore-acuity', 'drop-everything'] })).toEqual({
      'relaxationOrder.1': "one of 'icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex', 'ignore-acuity'",
    });
    expect(issuesOf({ relaxationOrder: ['ignore-acuity', 'ignore-acuity'] })).toEqual({ relaxationOrder: 'a step may appear once' });
  });

  it('bounds the Jaccard threshold', () => {
    expect(issuesOf({ icd10MinJaccard: 0 })).toEqual({ icd10MinJaccard: 'must be above 0 (0 would match encounters sharing nothing)' });
    expect(issuesOf({ icd10MinJaccard: 1.5 })).toEqual({ icd10MinJaccard: 'must be at most 1' });
    expect(issuesOf({ icd10MinJaccard: '0.5' })).toEqual({ icd10MinJaccard: 'a share between 0 and 1' });
  });

  it('takes a look-back of whole years, or null', () => {
    expect(issuesOf({ lookbackYears: null })).toEqual({});
    expect(issuesOf({ lookbackYears: 0 })).toEqual({ lookbackYears: 'at least 1 (the reference year only), or null for no limit' });
    expect(issuesOf({ lookbackYears: 2.5 })).toEqual({ lookbackYears: 'a whole number of years' });
    expect(issuesOf({ lookbackYears: 'five' })).toEqual({ lookbackYears: 'a whole number of years, or null for no limit' });
    expect(issuesOf({ lookbackYears: 500 })).toEqual({ lookbackYears: 'at most 200 years' });
  });

  it('takes a list of distinct, non-empty sites, or null', () => {
    expect(issuesOf({ sites: null })).toEqual({});
    expect(issuesOf({ sites: [] })).toEqual({ sites: 'list at least one site, or null for every site' });
    expect(issuesOf({ sites: ['north', 'north'] })).toEqual({ sites: 'a site may appear once' });
    expect(issuesOf({ sites: ['north', ''] })).toEqual({ 'sites.1': 'a site name may not be empty' });
    expect(issuesOf({ sites: ['north', 7] })).toEqual({ 'sites.1': 'a site name' });
  });
});
