import type { InMemoryEncounter } from '../../src/cohort/in-memory-source.js';
import type { CohortCriteria, PatientFacts } from '../../src/cohort/types.js';

/** Hand-made patient facts: a 50-year-old woman with abdominal pain unless overridden. */
export function makeFacts(overrides: Partial<PatientFacts> = {}): PatientFacts {
  return {
    ageYears: 50,
    sex: 'female',
    chiefComplaintText: 'abd pain',
    complaintConcepts: ['abdominal-pain'],
    icd10Codes: [],
    acuity: null,
    draftOrders: [],
    ...overrides,
  };
}

/** `count` identical hand-made encounters. */
export function makeEncounters(count: number, overrides: Partial<InMemoryEncounter> = {}): InMemoryEncounter[] {
  return Array.from({ length: count }, () => ({
    sex: 'female',
    ageYears: 50,
    acuity: 3,
    complaintConcepts: ['abdominal-pain'],
    icd10Codes: ['R1084'],
    site: 'default',
    startYear: 2150,
    admitted: false,
    returned72h: false,
    edLosMinutes: 300,
    hospitalLosMinutes: null,
    items: [],
    ...overrides,
  }));
}

/** Criteria that constrain nothing unless overridden. */
export function makeCriteria(overrides: Partial<CohortCriteria> = {}): CohortCriteria {
  return {
    sex: null,
    ageMin: null,
    ageMax: null,
    acuity: null,
    complaintConcept: null,
    otherComplaintConcepts: [],
    icd10: null,
    sites: null,
    lookback: null,
    ...overrides,
  };
}
