import { describe, expect, it } from '@jest/globals';
import type {
  Condition,
  Encounter,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  Procedure,
  Observation,
  Patient,
  ServiceRequest,
} from '@medplum/fhirtypes';
import { normalizeComplaintPhrase } from '../../src/cohort/complaint.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import {
  classifyServiceRequest,
  cohortRecordsForPatient,
  type CohortConversionContext,
  type PatientResources,
} from '../../src/ingest/fhir-to-cohort.js';

const hasher = createKeyHasher('a-test-secret-that-is-long-enough-for-hmac');
const vocabulary = new Map([
  [normalizeComplaintPhrase('chest pain'), 'chest-pain'],
  [normalizeComplaintPhrase('transfer'), 'transfer'],
  [normalizeComplaintPhrase('abd pain'), 'abdominal-pain'],
]);
const icd9Map = new Map([['78650', ['R079']]]);
const context: CohortConversionContext = { hasher, vocabulary, icd9Map };

const mimic = 'http://mimic.mit.edu/fhir/mimic';
const patientRef = { reference: 'Patient/p1' };

function patient(overrides: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    id: 'p1',
    gender: 'female',
    birthDate: '2080-06-15',
    name: [{ family: 'Patient_10007795' }],
    identifier: [{ system: `${mimic}/identifier/patient`, value: '10007795' }],
    ...overrides,
  };
}

function edStay(id: string, start: string, end: string, options: { disposition?: string; partOf?: string } = {}): Encounter {
  return {
    resourceType: 'Encounter',
    id,
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER', display: 'emergency' },
    subject: patientRef,
    period: { start, end },
    identifier: [{ system: `${mimic}/identifier/encounter-ed`, value: `ed-${id}` }],
    ...(options.partOf ? { partOf: { reference: `Encounter/${options.partOf}` } } : {}),
    ...(options.disposition
      ? { hospitalization: { dischargeDisposition: { coding: [{ system: `${mimic}/CodeSystem/mimic-discharge-disposition`, code: options.disposition }] } } }
      : {}),
  };
}

function hospitalStay(id: string, start: string, end: string, classCode = 'IMP'): Encounter {
  return {
    resourceType: 'Encounter',
    id,
    status: 'finished',
    class: { code: classCode },
    subject: patientRef,
    period: { start, end },
    identifier: [{ system: `${mimic}/identifier/encounter-hosp`, value: `hosp-${id}` }],
  };
}

function lab(code: string, display: string, time: string, options: { encounter?: string; specimen?: string } = {}): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: `${mimic}/CodeSystem/mimic-d-labitems`, code, display }], text: display },
    subject: patientRef,
    effectiveDateTime: time,
    ...(options.encounter ? { encounter: { reference: `Encounter/${options.encounter}` } } : {}),
    ...(options.specimen ? { specimen: { identifier: { system: `${mimic}/identifier/specimen`, value: options.specimen } } } as object : {}),
  };
}

function triage(encounter: string, loincCode: string, value: Partial<Observation>): Observation {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: loincCode }] },
    subject: patientRef,
    encounter: { reference: `Encounter/${encounter}` },
    ...value,
  };
}

function condition(encounter: string, system: 'icd9' | 'icd10', code: string): Condition {
  return {
    resourceType: 'Condition',
    subject: patientRef,
    encounter: { reference: `Encounter/${encounter}` },
    code: { coding: [{ system: `${mimic}/CodeSystem/mimic-diagnosis-${system}`, code }] },
  };
}

function dispense(encounter: string | undefined, text: string, time: string): MedicationDispense {
  return {
    resourceType: 'MedicationDispense',
    status: 'unknown',
    subject: patientRef,
    ...(encounter ? { context: { reference: `Encounter/${encounter}` } } : {}),
    whenHandedOver: time,
    medicationCodeableConcept: { text },
  };
}

function order(encounter: string, category: string, text: string, time: string, requester?: string): ServiceRequest {
  return {
    resourceType: 'ServiceRequest',
    status: 'completed',
    intent: 'order',
    subject: patientRef,
    encounter: { reference: `Encounter/${encounter}` },
    category: [{ text: category }],
    code: { coding: [{ system: `${mimic}/CodeSystem/mimic-poe-order-subtype`, code: text, display: text }], text },
    authoredOn: time,
    ...(requester ? { requester: { identifier: { system: `${mimic}/identifier/provider`, value: requester } } } : {}),
  };
}

function resources(overrides: Partial<PatientResources>): PatientResources {
  return { patient: patient(), encounters: [], conditions: [], observations: [], serviceRequests: [], medications: [], procedures: [], ...overrides };
}

const key = (id: string) => hasher('encounter', id);

describe('cohortRecordsForPatient', () => {
  it('assigns a lab without an encounter to the ED stay whose period contains its time', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00-05:00', '2150-01-01T14:00:00-05:00'), edStay('e2', '2150-03-01T10:00:00-05:00', '2150-03-01T16:00:00-05:00')],
        observations: [
          lab('50912', 'Creatinine', '2150-03-01T11:30:00-05:00', { specimen: 'S1' }),
          lab('50971', 'Potassium', '2150-03-01T11:30:00-05:00', { specimen: 'S1' }),
          lab('50912', 'Creatinine', '2150-03-01T13:00:00-05:00', { specimen: 'S2' }),
          lab('51222', 'Hemoglobin', '2150-02-01T12:00:00-05:00'),
        ],
      }),
      context,
    );
    const [first, second] = conversion.records;
    expect(first?.items).toEqual([]);
    expect(second?.items.map((item) => [item.itemCode, item.offsetMinutes, item.category, item.kind])).toEqual([
      ['lab:50912', 90, 'workup', 'lab'],
      ['lab:50971', 90, 'workup', 'lab'],
    ]);
    expect(second?.items[0]).toMatchObject({ display: 'Creatinine', codeSystem: `${mimic}/CodeSystem/mimic-d-labitems`, code: '50912' });
    // Three results on two draws: S1 with both analytes, and one more.
    expect(second?.draws).toHaveLength(2);
    expect(second?.draws.flatMap((draw) => draw.analyteCodes)).toHaveLength(3);
    const s1 = hasher('specimen', `${mimic}/identifier/specimen|S1`);
    expect(second?.draws.find((draw) => draw.drawKey === s1)?.analyteCodes).toEqual(['lab:50912', 'lab:50971']);
    expect(conversion.skipped['lab-outside-ed-stay']).toBe(1);
  });

  it('counts a lab charted shortly before ED arrival, unless the lead window is 0', () => {
    const input = resources({
      encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
      observations: [lab('50912', 'Creatinine', '2150-01-01T09:25:00Z')],
    });
    expect(cohortRecordsForPatient(input, context).records[0]?.items[0]?.offsetMinutes).toBe(-35);
    const strict = cohortRecordsForPatient(input, { ...context, labLeadMinutes: 0 });
    expect(strict.records[0]?.items).toEqual([]);
    expect(strict.skipped['lab-outside-ed-stay']).toBe(1);
  });

  it('assigns a lab linked to the hospital admission to the ED stay that is part of it, within the ED period', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z', { partOf: 'h1' }), hospitalStay('h1', '2150-01-01T13:00:00Z', '2150-01-05T13:00:00Z', 'EMER')],
        observations: [
          lab('50912', 'Creatinine', '2150-01-01T12:00:00Z', { encounter: 'h1' }),
          lab('51222', 'Hemoglobin', '2150-01-03T12:00:00Z', { encounter: 'h1' }),
        ],
      }),
      context,
    );
    expect(conversion.records).toHaveLength(1);
    expect(conversion.records[0]?.items.map((item) => item.itemCode)).toEqual(['lab:50912']);
    expect(conversion.skipped['lab-outside-ed-stay']).toBe(1);
  });

  it('maps ICD-9 diagnoses to ICD-10 and adds the categories', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        conditions: [condition('e1', 'icd9', '78650'), condition('e1', 'icd10', 'I10'), condition('e1', 'icd9', '99999')],
      }),
      context,
    ).records;
    expect(record?.encounter.icd10Codes).toEqual(['I10', 'R079']);
    expect(record?.encounter.icd10Categories).toEqual(['I10', 'R07']);
  });

  it('takes the history from encounters that ended before this visit, never from its own admission', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [
          hospitalStay('h0', '2149-05-01T10:00:00Z', '2149-05-04T10:00:00Z'),
          edStay('e0', '2149-12-01T10:00:00Z', '2149-12-01T12:00:00Z', { disposition: 'HOME' }),
          edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z', { partOf: 'h1', disposition: 'ADMITTED' }),
          hospitalStay('h1', '2150-01-01T13:00:00Z', '2150-01-05T13:00:00Z'),
          hospitalStay('h2', '2151-01-01T13:00:00Z', '2151-01-05T13:00:00Z'),
        ],
        conditions: [condition('h0', 'icd10', 'E119'), condition('e0', 'icd9', '78650'), condition('h1', 'icd10', 'N179'), condition('h2', 'icd10', 'J189')],
      }),
      context,
    );
    const e1 = conversion.records.find((record) => record.encounter.encounterKey === key('e1'));
    expect(e1?.encounter.historyIcd10Codes).toEqual(['E119', 'R079']);
    const e0 = conversion.records.find((record) => record.encounter.encounterKey === key('e0'));
    expect(e0?.encounter.historyIcd10Codes).toEqual(['E119']);
  });

  it('reports ages above 89 as 90', () => {
    const [record] = cohortRecordsForPatient(
      resources({ patient: patient({ birthDate: '2050-01-01' }), encounters: [edStay('e1', '2145-01-01T10:00:00Z', '2145-01-01T14:00:00Z')] }),
      context,
    ).records;
    expect(record?.encounter.ageYears).toBe(90);
    expect(record?.encounter.startYear).toBe(2145);
  });

  it('finds a return within 72 hours and within 30 days of departure', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [
          edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T20:00:00Z'),
          edStay('e2', '2150-01-04T19:00:00Z', '2150-01-04T23:00:00Z'),
          edStay('e3', '2150-01-20T10:00:00Z', '2150-01-20T12:00:00Z'),
          edStay('e4', '2150-06-20T10:00:00Z', '2150-06-20T12:00:00Z'),
        ],
      }),
      context,
    );
    const flags = conversion.records.map((record) => [record.encounter.returned72h, record.encounter.returned30d]);
    expect(flags).toEqual([
      [true, true],
      [false, true],
      [false, false],
      [false, false],
    ]);
    expect(conversion.records[0]?.encounter.edLosMinutes).toBe(600);
  });

  it('counts an admission from the disposition, or from partOf when the ED gives none', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [
          edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z', { partOf: 'h1' }),
          hospitalStay('h1', '2150-01-01T13:00:00Z', '2150-01-03T13:00:00Z'),
          edStay('e2', '2150-03-01T10:00:00Z', '2150-03-01T14:00:00Z', { partOf: 'h2', disposition: 'HOME' }),
          hospitalStay('h2', '2150-03-01T12:00:00Z', '2150-03-01T14:00:00Z', 'OBSENC'),
          edStay('e3', '2150-05-01T10:00:00Z', '2150-05-01T14:00:00Z', { disposition: 'ADMITTED' }),
        ],
      }),
      context,
    );
    expect(conversion.emergencyStays).toBe(3);
    expect(conversion.records.map((record) => [record.encounter.admitted, record.encounter.disposition, record.encounter.hospitalLosMinutes])).toEqual([
      [true, null, 2880],
      [false, 'HOME', null],
      [true, 'ADMITTED', null],
    ]);
  });

  it('does not take a hospital admission of class EMER for an ED stay', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [
          edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z', { partOf: 'h1' }),
          // Told apart by being the target of partOf…
          { ...hospitalStay('h1', '2150-01-01T13:00:00Z', '2150-01-03T13:00:00Z', 'EMER'), identifier: [] },
          // …or by MIMIC's hospital identifier system.
          hospitalStay('h2', '2150-05-01T13:00:00Z', '2150-05-03T13:00:00Z', 'EMER'),
        ],
      }),
      context,
    );
    expect(conversion.records.map((record) => record.encounter.encounterKey)).toEqual([key('e1')]);
  });

  it('accepts class code "emergency" and a reason code when there is no triage complaint', () => {
    const stay: Encounter = {
      ...edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z'),
      class: { code: 'emergency' },
      identifier: [],
      reasonCode: [{ text: 'Chest pain' }],
    };
    const [record] = cohortRecordsForPatient(resources({ encounters: [stay] }), context).records;
    expect(record?.encounter.chiefComplaintText).toBe('Chest pain');
    expect(record?.encounter.complaintConcepts).toEqual(['chest-pain']);
  });

  it('reads the triage complaint and acuity of the stay', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        observations: [
          triage('e1', '8661-1', { valueString: '  Transfer, CHEST PAIN ', effectiveDateTime: '2150-01-01T10:05:00Z' }),
          triage('e1', '56839-4', { valueString: '2', effectiveDateTime: '2150-01-01T10:05:00Z' }),
          triage('e9', '8661-1', { valueString: 'abd pain' }),
        ],
      }),
      context,
    ).records;
    expect(record?.encounter.chiefComplaintText).toBe('Transfer, CHEST PAIN');
    expect(record?.encounter.complaintConcepts).toEqual(['chest-pain', 'transfer']);
    expect(record?.encounter.acuity).toBe(2);
  });

  it('keeps at most 200 characters of the complaint', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        observations: [triage('e1', '8661-1', { valueString: `chest pain, ${'pain '.repeat(100)}` })],
      }),
      context,
    ).records;
    expect(record?.encounter.chiefComplaintText).toHaveLength(200);
    expect(record?.encounter.complaintConcepts).toEqual(['chest-pain']);
  });

  it('counts medications by ingredient, once per stay at the earliest time, and by time without a context', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        medications: [
          dispense('e1', 'Morphine Sulfat 4mg/1mL 1mL VIAL', '2150-01-01T11:00:00Z'),
          dispense('e1', 'Morphine', '2150-01-01T10:30:00Z'),
          dispense(undefined, 'Vancomyci 1000mg/200mL 200mL BAG', '2150-01-01T12:00:00Z'),
        ],
      }),
      context,
    ).records;
    expect(record?.items).toEqual([
      {
        encounterKey: key('e1'),
        itemCode: 'med:morphine',
        category: 'treatment',
        kind: 'medication',
        display: 'Morphine',
        codeSystem: 'urn:cohort-cds:ingredient',
        code: 'morphine',
        offsetMinutes: 30,
        clinicianKey: null,
      },
      expect.objectContaining({ itemCode: 'med:vancomycin', offsetMinutes: 120 }),
    ]);
  });

  it('classifies orders and hashes the requester', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        serviceRequests: [
          order('e1', 'Radiology', 'Radiology: CT Scan', '2150-01-01T10:45:00Z', 'P62GDL'),
          order('e1', 'Blood Bank', 'Blood Bank: Blood tests', '2150-01-01T10:50:00Z'),
          order('e1', 'Blood Bank', 'Blood Bank: Red Cell Product Order', '2150-01-01T11:00:00Z'),
          order('e1', 'Respiratory', 'Respiratory: Oxygen Therapy', '2150-01-01T11:10:00Z'),
          order('e1', 'Cardiology', 'Cardiology: Echo', '2150-01-01T11:20:00Z'),
          order('e1', 'Consults', 'Consults: Physical Therapy', '2150-01-01T11:30:00Z'),
        ],
      }),
      context,
    ).records;
    expect(record?.items.map((item) => [item.itemCode, item.category, item.kind])).toEqual([
      ['order:blood-bank-blood-tests', 'workup', 'blood-test'],
      ['order:blood-bank-red-cell-product-order', 'treatment', 'procedure'],
      ['order:cardiology-echo', 'workup', 'cardiology'],
      ['order:consults-physical-therapy', 'treatment', 'procedure'],
      ['order:radiology-ct-scan', 'workup', 'imaging'],
      ['order:respiratory-oxygen-therapy', 'treatment', 'procedure'],
    ]);
    const ct = record?.items.find((item) => item.itemCode === 'order:radiology-ct-scan');
    expect(ct).toMatchObject({ offsetMinutes: 45, code: 'Radiology: CT Scan', clinicianKey: hasher('clinician', `${mimic}/identifier/provider|P62GDL`) });
    expect(classifyServiceRequest(order('e1', 'Radiology', 'Radiology: Interventional Radiology', '2150-01-01T11:30:00Z'))).toEqual({
      category: 'treatment',
      kind: 'procedure',
    });
  });

  it('hashes the clinician of every source that names one, never storing the reference, and skips non-clinician performers', () => {
    const stay = edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z');
    const encounter = { reference: 'Encounter/e1' };
    const practitioner = (id: string) => ({ reference: `Practitioner/${id}`, display: `Dr. ${id}` });
    const laboratory = { reference: 'Organization/central-lab', display: 'Central laboratory' };
    const troponin = { ...lab('51003', 'Troponin T', '2150-01-01T10:20:00Z', { encounter: 'e1' }), performer: [laboratory, practitioner('lab-doc-7')] };
    // An identifier-only performer (as MIMIC's providers): known by system|value.
    const lactate = { ...lab('50813', 'Lactate', '2150-01-01T10:25:00Z', { encounter: 'e1' }), performer: [{ identifier: { system: `${mimic}/identifier/provider`, value: 'P4LAB9' } }] };
    const orgOnly = { ...lab('50912', 'Creatinine', '2150-01-01T10:30:00Z', { encounter: 'e1' }), performer: [laboratory] };
    const request: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: 'completed',
      intent: 'order',
      subject: patientRef,
      encounter,
      authoredOn: '2150-01-01T10:40:00Z',
      medicationCodeableConcept: { text: 'Aspirin 325 mg' },
      requester: practitioner('med-req-1'),
    };
    const dispensed: MedicationDispense = { ...dispense('e1', 'Morphine', '2150-01-01T10:50:00Z'), performer: [{ actor: practitioner('pharm-2') }] };
    const administered: MedicationAdministration = {
      resourceType: 'MedicationAdministration',
      status: 'completed',
      subject: patientRef,
      context: encounter,
      effectiveDateTime: '2150-01-01T11:00:00Z',
      medicationCodeableConcept: { text: 'Ondansetron 4 mg' },
      performer: [{ actor: { reference: 'Device/pump-1' } }, { actor: practitioner('nurse-3') }],
    };
    const procedure: Procedure = {
      resourceType: 'Procedure',
      status: 'completed',
      subject: patientRef,
      encounter,
      code: { coding: [{ system: 'http://snomed.info/sct', code: '29303009' }], text: 'ECG' },
      performedDateTime: '2150-01-01T11:10:00Z',
      performer: [{ actor: practitioner('cardio-4') }],
    };
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [stay],
        observations: [troponin, lactate, orgOnly],
        serviceRequests: [order('e1', 'Radiology', 'Radiology: CT Scan', '2150-01-01T10:45:00Z', 'P62GDL')],
        medications: [request, dispensed, administered],
        procedures: [procedure],
      }),
      context,
    );
    const clinicianOf = new Map(conversion.records[0]!.items.map((item) => [item.itemCode, item.clinicianKey]));
    expect(Object.fromEntries(clinicianOf)).toEqual({
      'lab:51003': hasher('clinician', 'Practitioner/lab-doc-7'),
      'lab:50813': hasher('clinician', `${mimic}/identifier/provider|P4LAB9`),
      'lab:50912': null,
      'med:aspirin': hasher('clinician', 'Practitioner/med-req-1'),
      'med:morphine': hasher('clinician', 'Practitioner/pharm-2'),
      'med:ondansetron': hasher('clinician', 'Practitioner/nurse-3'),
      'order:radiology-ct-scan': hasher('clinician', `${mimic}/identifier/provider|P62GDL`),
      'procedure:29303009': hasher('clinician', 'Practitioner/cardio-4'),
    });
    // Keyed: another secret gives other keys; and no identifier, reference or name is in the rows.
    expect(createKeyHasher('another-secret-that-is-long-enough-for-hmac')('clinician', 'Practitioner/lab-doc-7')).not.toBe(clinicianOf.get('lab:51003'));
    const stored = JSON.stringify(conversion.records);
    for (const raw of ['lab-doc-7', 'P4LAB9', 'med-req-1', 'pharm-2', 'nurse-3', 'P62GDL', 'cardio-4', 'Practitioner', 'central-lab', 'Dr. ']) {
      expect(stored).not.toContain(raw);
    }
  });

  it('stores the complaint without names or numbers that are not clinical language, and still maps it', () => {
    const clinicalWords = new Set(['chest', 'pain', 'at', 'wife', 'of', 'radiating', 'to', 'arm', 'smith']);
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        observations: [
          triage('e1', '8661-1', { valueString: 'Chest pain, radiating to L arm x 2 days, wife Philomena Quackenbush at bedside, acct XK55219087, plan HPN-4471X, Dr Smith' }),
        ],
      }),
      { ...context, clinicalWords },
    ).records;
    expect(record?.encounter.complaintConcepts).toEqual(['chest-pain']);
    // Names, account and health-plan numbers go; "Smith" is a word of the ICD-10 descriptions (Smith's fracture) and stays.
    expect(record?.encounter.chiefComplaintText).toBe('Chest pain, radiating to L arm x 2 days, wife [removed] at bedside, [removed] Smith');
  });

  it('records a procedure of the stay as a treatment', () => {
    const [record] = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        procedures: [
          {
            resourceType: 'Procedure',
            status: 'completed',
            subject: patientRef,
            encounter: { reference: 'Encounter/e1' },
            code: { coding: [{ system: 'http://snomed.info/sct', code: '71388002', display: 'Procedure' }], text: 'Splinting' },
            performedDateTime: '2150-01-01T12:00:00Z',
          },
        ],
      }),
      context,
    ).records;
    expect(record?.items).toEqual([expect.objectContaining({ itemCode: 'procedure:71388002', category: 'treatment', kind: 'procedure', display: 'Splinting', offsetMinutes: 120 })]);
  });

  it('skips and counts stays of a patient without gender, birth date or Patient resource', () => {
    const stays = [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')];
    expect(cohortRecordsForPatient(resources({ patient: patient({ gender: undefined }), encounters: stays }), context).skipped).toEqual({ 'encounter-no-gender': 1 });
    expect(cohortRecordsForPatient(resources({ patient: patient({ birthDate: undefined }), encounters: stays }), context).skipped).toEqual({ 'encounter-no-birth-date': 1 });
    const orphan = cohortRecordsForPatient(resources({ patient: undefined, encounters: stays }), context);
    expect(orphan.records).toEqual([]);
    expect(orphan.skipped).toEqual({ 'encounter-no-patient': 1 });
  });

  it('stores no identifier, name or date', () => {
    const conversion = cohortRecordsForPatient(
      resources({
        encounters: [edStay('e1', '2150-01-01T10:00:00Z', '2150-01-01T14:00:00Z')],
        observations: [lab('50912', 'Creatinine', '2150-01-01T11:00:00Z', { specimen: '79775396' })],
        serviceRequests: [order('e1', 'Radiology', 'Radiology: CT Scan', '2150-01-01T10:45:00Z', 'P62GDL')],
      }),
      context,
    );
    const text = JSON.stringify(conversion.records);
    for (const id of ['p1', 'e1', 'ed-e1']) expect(text).not.toContain(`"${id}"`);
    for (const identifier of ['10007795', 'Patient_10007795', '79775396', 'P62GDL']) expect(text).not.toContain(identifier);
    expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}/);
  });
});

describe('specimen handling results', () => {
  it('are not workup items', async () => {
    const { isSpecimenHandling } = await import('../../src/ingest/fhir-to-cohort.js');
    for (const display of ['Green Top Hold (plasma)', 'Blue Top Hold', 'Uhold', 'H', 'I', 'L', 'Length of Urine Collection', 'Specimen Type', 'Voided Specimen']) {
      expect(isSpecimenHandling(display)).toBe(true);
    }
    for (const display of ['Lactate', 'Hemoglobin', 'pH', 'PT', 'Lipase', 'Cholesterol, HDL']) expect(isSpecimenHandling(display)).toBe(false);
  });
});
