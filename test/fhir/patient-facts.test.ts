import { describe, expect, it } from '@jest/globals';
import type { Condition, Encounter, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { defaultComplaintConcepts, normalizeComplaintPhrase } from '../../src/cohort/complaint.js';
import { factLimits, patientFactsFromContext, type FhirPatientContext, type PatientFactsOptions } from '../../src/fhir/patient-facts.js';
import { hookRequestSchema } from '../../src/hooks/cds-hooks.schema.js';
import { resolveHookContext } from '../../src/hooks/context-resolver.js';
import { loadServiceRegistry } from '../../src/hooks/service-registry.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';

const vocabulary = new Map(
  Object.entries(defaultComplaintConcepts).flatMap(([concept, [, ...phrases]]) => phrases.map((phrase) => [normalizeComplaintPhrase(phrase), concept] as const)),
);
const options: PatientFactsOptions = { vocabulary, icd9Map: new Map([['78900', ['R109']]]), now: new Date('2025-06-15T12:00:00Z') };

const loinc = 'http://loinc.org';

function context(overrides: Partial<FhirPatientContext> = {}): FhirPatientContext {
  return {
    patient: { resourceType: 'Patient', id: 'p', gender: 'female', birthDate: '1960-06-20' },
    conditions: [],
    observations: [],
    draftOrders: [],
    ...overrides,
  };
}

function encounter(start?: string, extra: Partial<Encounter> = {}): Encounter {
  return { resourceType: 'Encounter', id: 'enc-now', status: 'in-progress', class: { code: 'EMER' }, ...(start === undefined ? {} : { period: { start } }), ...extra };
}

function observation(code: string, value: Partial<Observation>, encounterId?: string, effectiveDateTime?: string): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: loinc, code }] },
    ...(encounterId === undefined ? {} : { encounter: { reference: `Encounter/${encounterId}` } }),
    ...(effectiveDateTime === undefined ? {} : { effectiveDateTime }),
    ...value,
  };
}

const complaint = (text: string, encounterId?: string, when?: string) => observation('8661-1', { valueString: text }, encounterId, when);
const acuity = (value: Partial<Observation>, encounterId?: string, when?: string) => observation('56839-4', value, encounterId, when);

/** Codings are typed loosely on purpose: EHR data is not always what the FHIR types promise. */
function condition(codings: { system: string; code: unknown }[], statuses: { clinical?: string; verification?: string } = {}): Condition {
  return {
    resourceType: 'Condition',
    subject: { reference: 'Patient/p' },
    code: { coding: codings },
    ...(statuses.clinical === undefined ? {} : { clinicalStatus: { coding: [{ code: statuses.clinical }] } }),
    ...(statuses.verification === undefined ? {} : { verificationStatus: { coding: [{ code: statuses.verification }] } }),
  } as unknown as Condition;
}

const facts = (overrides: Partial<FhirPatientContext> = {}) => patientFactsFromContext(context(overrides), options);
const patientBorn = (birthDate: unknown): Patient => ({ resourceType: 'Patient', birthDate } as Patient);

describe('age', () => {
  it('counts whole years to the start of the encounter', () => {
    expect(facts({ encounter: encounter('2020-06-19T10:00:00Z') }).ageYears).toBe(59);
    expect(facts({ encounter: encounter('2020-06-20T10:00:00Z') }).ageYears).toBe(60);
  });

  it('uses the local date the encounter start is written in, not UTC', () => {
    // 23:30 at -05:00 on the 19th is the 20th in UTC; the patient is still 59 where they are.
    expect(facts({ encounter: encounter('2020-06-19T23:30:00-05:00') }).ageYears).toBe(59);
  });

  it('falls back to now without an encounter start', () => {
    expect(facts().ageYears).toBe(64);
    expect(facts({ encounter: encounter() }).ageYears).toBe(64);
    expect(facts({ encounter: encounter('garbage') }).ageYears).toBe(64);
  });

  it('accepts partial birth dates, counting from the start of the year or month', () => {
    expect(facts({ patient: patientBorn('1960') }).ageYears).toBe(65);
    expect(facts({ patient: patientBorn('1960-07') }).ageYears).toBe(64);
    expect(facts({ patient: patientBorn('1960-06') }).ageYears).toBe(65);
  });

  it('handles a 29 February birthday', () => {
    expect(facts({ patient: patientBorn('2000-02-29'), encounter: encounter('2021-02-28') }).ageYears).toBe(20);
    expect(facts({ patient: patientBorn('2000-02-29'), encounter: encounter('2021-03-01') }).ageYears).toBe(21);
  });

  it('gives 0 for a newborn', () => {
    expect(facts({ patient: patientBorn('2025-06-01') }).ageYears).toBe(0);
  });

  it.each([
    ['a birth date in the future', '2025-06-16'],
    ['an age over 120', '1904-01-01'],
    ['an impossible date', '1960-02-30'],
    ['a month 13', '1960-13-01'],
    ['a date with a time', '1960-06-20T00:00:00Z'],
    ['a number', 1960],
    ['nothing', undefined],
  ])('is null for %s', (_name, birthDate) => {
    expect(facts({ patient: patientBorn(birthDate) }).ageYears).toBeNull();
  });

  it('allows exactly 120', () => {
    expect(facts({ patient: patientBorn('1905-01-01') }).ageYears).toBe(120);
  });
});

describe('sex', () => {
  it.each(['female', 'male', 'other', 'unknown'] as const)('takes %s from Patient.gender', (gender) => {
    expect(facts({ patient: { resourceType: 'Patient', gender } }).sex).toBe(gender);
  });

  it.each([undefined, 'F', 42])('is null for %j', (gender) => {
    expect(facts({ patient: { resourceType: 'Patient', gender } as unknown as Patient }).sex).toBeNull();
  });
});

describe('chief complaint', () => {
  it('maps the complaint text to concepts', () => {
    const result = facts({ observations: [complaint('Abd pain, N/V')] });
    expect(result.chiefComplaintText).toBe('Abd pain, N/V');
    expect(result.complaintConcepts).toEqual(['abdominal-pain', 'nausea-vomiting']);
  });

  it("prefers this encounter's complaint over a later one linked to no encounter", () => {
    const observations = [complaint('chest pain', undefined, '2025-06-15T11:00:00Z'), complaint('fall', 'enc-now', '2025-06-15T09:00:00Z')];
    expect(facts({ encounter: encounter('2025-06-15T08:00:00Z'), observations }).chiefComplaintText).toBe('fall');
  });

  it("ignores another encounter's complaint when the encounter is known", () => {
    const observations = [complaint('chest pain', 'enc-old', '2025-06-15T11:00:00Z'), complaint('dizzy', undefined, '2024-01-01T00:00:00Z')];
    expect(facts({ encounterId: 'enc-now', observations }).chiefComplaintText).toBe('dizzy');
  });

  it('takes the latest when no encounter is known', () => {
    const observations = [complaint('fall', 'a', '2024-01-01T00:00:00Z'), complaint('syncope', 'b', '2025-01-01T00:00:00Z'), complaint('cough', 'c')];
    expect(facts({ observations }).chiefComplaintText).toBe('syncope');
  });

  it('reads valueCodeableConcept text, then its codings display', () => {
    expect(facts({ observations: [observation('8661-1', { valueCodeableConcept: { text: 'Back pain' } })] }).complaintConcepts).toEqual(['back-pain']);
    const coded = observation('8661-1', { valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '21522001', display: 'Abdominal pain' }] } });
    expect(facts({ observations: [coded] }).chiefComplaintText).toBe('Abdominal pain');
  });

  it('skips observations entered in error, other codes and other systems', () => {
    const observations = [
      { ...complaint('chest pain'), status: 'entered-in-error' as const },
      observation('8661-1', { valueString: 'fever', code: { coding: [{ system: 'http://example.org/local', code: '8661-1' }] } }),
      observation('8302-2', { valueString: 'cough' }),
    ];
    expect(facts({ observations }).chiefComplaintText).toBeNull();
  });

  it('falls back to Encounter.reasonCode', () => {
    const reasons = encounter('2025-06-15T08:00:00Z', { reasonCode: [{ text: 'Chest pain' }, { coding: [{ display: 'Shortness of breath' }] }] });
    const result = facts({ encounter: reasons });
    expect(result.chiefComplaintText).toBe('Chest pain, Shortness of breath');
    expect(result.complaintConcepts).toEqual(['chest-pain', 'dyspnea']);
  });

  it('falls back to the reason when the observation has no value', () => {
    expect(facts({ encounter: encounter(undefined, { reasonCode: [{ text: 'fall' }] }), observations: [complaint('  ')] }).chiefComplaintText).toBe('fall');
  });

  it('is null with no concepts when nothing names it', () => {
    const result = facts();
    expect(result.chiefComplaintText).toBeNull();
    expect(result.complaintConcepts).toEqual([]);
  });

  it('caps the text', () => {
    expect(facts({ observations: [complaint('x'.repeat(2000))] }).chiefComplaintText).toHaveLength(factLimits.complaintLength);
  });
});

describe('acuity', () => {
  it.each([
    ['valueString "3"', { valueString: '3' }, 3],
    ['valueString "2.0"', { valueString: '2.0' }, 2],
    ['valueString "ESI 4"', { valueString: 'ESI 4' }, 4],
    ['valueString "ESI level 1"', { valueString: 'ESI level 1' }, 1],
    ['valueInteger 2', { valueInteger: 2 }, 2],
    ['valueCodeableConcept code', { valueCodeableConcept: { coding: [{ system: 'http://example.org/esi', code: '5' }] } }, 5],
    ['valueCodeableConcept text', { valueCodeableConcept: { text: 'Level 3' } }, 3],
    ['valueString "6"', { valueString: '6' }, null],
    ['valueString "12"', { valueString: '12' }, null],
    ['valueInteger 0', { valueInteger: 0 }, null],
    ['valueString "urgent"', { valueString: 'urgent' }, null],
  ])('reads %s', (_name, value, expected) => {
    expect(facts({ observations: [acuity(value as Partial<Observation>)] }).acuity).toBe(expected);
  });

  it("prefers this encounter's acuity and skips unreadable values", () => {
    const observations = [acuity({ valueString: '1' }, 'enc-old', '2025-06-15T11:00:00Z'), acuity({ valueString: 'pending' }, 'enc-now'), acuity({ valueString: '3' }, 'enc-now', '2025-06-15T09:00:00Z')];
    expect(facts({ encounterId: 'enc-now', observations }).acuity).toBe(3);
  });

  it('is null without an acuity observation', () => {
    expect(facts({ observations: [complaint('fall')] }).acuity).toBeNull();
  });
});

describe('ICD-10 codes', () => {
  it('collects ICD-10-CM codes and maps ICD-9-CM ones, sorted and unique', () => {
    const conditions = [
      condition([{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10' }]),
      condition([{ system: 'http://hl7.org/fhir/sid/icd-9-cm', code: '789.00' }]),
      condition([{ system: 'http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-diagnosis-icd10', code: 'E119' }, { system: 'http://snomed.info/sct', code: '44054006' }]),
      condition([{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'i10' }]),
    ];
    expect(facts({ conditions }).icd10Codes).toEqual(['E119', 'I10', 'R109']);
  });

  it('leaves out refuted, entered-in-error, inactive and resolved conditions', () => {
    const icd = (code: string) => [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code }];
    const conditions = [
      condition(icd('A01'), { verification: 'refuted' }),
      condition(icd('A02'), { verification: 'entered-in-error' }),
      condition(icd('A03'), { clinical: 'inactive' }),
      condition(icd('A04'), { clinical: 'resolved' }),
      condition(icd('A05'), { clinical: 'active', verification: 'confirmed' }),
      condition(icd('A06'), { clinical: 'remission', verification: 'provisional' }),
      condition(icd('A07'), { clinical: 'recurrence', verification: 'unconfirmed' }),
    ];
    expect(facts({ conditions }).icd10Codes).toEqual(['A05', 'A06', 'A07']);
  });

  it('ignores codes of the wrong type or shape', () => {
    const conditions = [condition([{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 10 }, { system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'not a code' }])];
    conditions.push({ resourceType: 'Condition', subject: {}, code: 'R10.9' } as unknown as Condition);
    expect(facts({ conditions }).icd10Codes).toEqual([]);
  });

  it('caps the list', () => {
    const conditions = Array.from({ length: 150 }, (_, index) => condition([{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: `R${String(index).padStart(3, '0')}` }]));
    expect(facts({ conditions }).icd10Codes).toHaveLength(factLimits.icd10Codes);
  });
});

describe('draft orders', () => {
  it('takes system|code and lower-cased texts from requests', () => {
    const draftOrders: Resource[] = [
      {
        resourceType: 'ServiceRequest',
        status: 'draft',
        intent: 'order',
        subject: { reference: 'Patient/p' },
        code: { coding: [{ system: loinc, code: '3040-3', display: 'Lipase [Enzymatic activity/volume] in Serum or Plasma' }], text: 'Lipase' },
      },
      {
        resourceType: 'MedicationRequest',
        status: 'draft',
        intent: 'order',
        subject: { reference: 'Patient/p' },
        medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1234', display: 'Ondansetron 4 MG' }], text: 'ondansetron 4 mg' },
      },
    ];
    expect(facts({ draftOrders }).draftOrders).toEqual([
      { resourceType: 'ServiceRequest', codes: ['http://loinc.org|3040-3'], texts: ['lipase', 'lipase [enzymatic activity/volume] in serum or plasma'] },
      { resourceType: 'MedicationRequest', codes: ['http://www.nlm.nih.gov/research/umls/rxnorm|1234'], texts: ['ondansetron 4 mg'] },
    ]);
  });

  it('reads medicationReference: its display, and a contained Medication', () => {
    const draftOrders = [
      { resourceType: 'MedicationRequest', status: 'draft', intent: 'order', subject: {}, medicationReference: { reference: 'Medication/m1', display: 'MORPHINE 4 MG/ML IV' } },
      {
        resourceType: 'MedicationRequest',
        status: 'draft',
        intent: 'order',
        subject: {},
        contained: [{ resourceType: 'Medication', id: 'med', code: { coding: [{ system: 'http://example.org/gsn', code: '004080' }], text: 'Morphine' } }],
        medicationReference: { reference: '#med' },
      },
    ] as unknown as Resource[];
    expect(facts({ draftOrders }).draftOrders).toEqual([
      { resourceType: 'MedicationRequest', codes: [], texts: ['morphine 4 mg/ml iv'] },
      { resourceType: 'MedicationRequest', codes: ['http://example.org/gsn|004080'], texts: ['morphine'] },
    ]);
  });

  it('skips resources that name nothing, and non-orders', () => {
    const draftOrders = [
      { resourceType: 'ServiceRequest', status: 'draft', intent: 'order', subject: {} },
      { resourceType: 'OperationOutcome', issue: [] },
      { resourceType: 'Patient', id: 'p' },
      'garbage',
      null,
    ] as unknown as Resource[];
    expect(facts({ draftOrders }).draftOrders).toEqual([]);
  });

  it('caps orders, codes and text length', () => {
    const codings = Array.from({ length: 40 }, (_, index) => ({ system: 'http://example.org', code: `c${index}`, display: `D${index} ${'x'.repeat(300)}` }));
    const order = { resourceType: 'ServiceRequest', status: 'draft', intent: 'order', subject: {}, code: { coding: codings } } as Resource;
    const result = facts({ draftOrders: Array.from({ length: 150 }, () => order) }).draftOrders;
    expect(result).toHaveLength(factLimits.draftOrders);
    expect(result[0]?.codes).toHaveLength(factLimits.codesPerOrder);
    expect(result[0]?.texts).toHaveLength(factLimits.textsPerOrder);
    expect(result[0]?.texts[0]).toHaveLength(factLimits.textLength);
  });
});

describe('the example requests, resolved and turned into facts', () => {
  const registry = loadServiceRegistry();
  const factsFor = async (hook: 'encounter-start' | 'order-select' | 'patient-view') => {
    const request = hookRequestSchema.parse(readExampleRequest(hook));
    const service = registry.findService(hook);
    if (service === undefined) throw new Error('no service');
    const resolved = await resolveHookContext(service, request, { timeoutMs: 1000, fhirClientFactory: () => ({ request: () => Promise.reject(new Error('no fetch expected')) }) });
    return patientFactsFromContext(resolved, options);
  };

  it('encounter-start', async () => {
    expect(await factsFor('encounter-start')).toEqual({
      ageYears: 67,
      sex: 'female',
      chiefComplaintText: 'Abd pain, N/V',
      complaintConcepts: ['abdominal-pain', 'nausea-vomiting'],
      icd10Codes: ['E119', 'I10', 'R109'],
      acuity: 3,
      draftOrders: [],
    });
  });

  it('order-select', async () => {
    const result = await factsFor('order-select');
    expect(result.draftOrders.map((order) => order.codes)).toEqual([
      ['http://loinc.org|3040-3'],
      ['https://ehr.example.org/fhir/CodeSystem/order-catalog|CT-ABD-PEL-IV'],
      ['https://ehr.example.org/fhir/CodeSystem/medication-catalog|ONDANSETRON-4MG-IV'],
    ]);
  });

  it('patient-view, without an encounter: age from now, the latest complaint, no acuity', async () => {
    const result = await factsFor('patient-view');
    expect(result).toMatchObject({ ageYears: 68, chiefComplaintText: 'abd pain', complaintConcepts: ['abdominal-pain'], acuity: null });
  });
});
