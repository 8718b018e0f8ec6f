import type {
  Condition,
  Encounter,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  Observation,
  Patient,
  Procedure,
  ServiceRequest,
} from '@medplum/fhirtypes';
import { primaryConcept } from '../../src/cohort/complaint.js';
import { cohortRecordsForPatient, type CohortEncounterRecord } from '../../src/ingest/fhir-to-cohort.js';
import { readNdjson } from '../../src/ingest/ndjson-reader.js';
import { seedComplaintVocabulary } from '../../src/synthesize/templates.js';
import { patientIdOfResource } from '../../src/ingest/batch-work.js';

/** What the distribution tests compare, computed with the ingest's own conversion (no database). */
export interface CohortSummary {
  readonly encounters: number;
  /** ED stays the conversion found but did not turn into rows. */
  readonly skippedEncounters: number;
  /** Primary complaint concept ('' for none) → share of encounters. */
  readonly complaintShares: ReadonlyMap<string, number>;
  readonly admissionRate: number;
  readonly return72hRate: number;
  readonly femaleShare: number;
  readonly meanAge: number;
  /** Ten-year age band ('0-9', '10-19', …) → share of encounters. */
  readonly ageBandShares: ReadonlyMap<string, number>;
  /** Share of patients with two or more ED encounters. */
  readonly patientsWithSeveralEncountersShare: number;
  /** Share of encounters with at least one earlier diagnosis (problem list). */
  readonly withHistoryShare: number;
  readonly meanItems: number;
  /** Mean items per encounter by kind (lab, imaging, medication, …). */
  readonly meanItemsByKind: ReadonlyMap<string, number>;
}

interface Resources {
  patient: Patient | undefined;
  encounters: Encounter[];
  conditions: Condition[];
  observations: Observation[];
  serviceRequests: ServiceRequest[];
  medications: Array<MedicationDispense | MedicationAdministration | MedicationRequest>;
  procedures: Procedure[];
}


/** Converts every ED stay under `paths` as the ingest does (seed complaint vocabulary, no ICD-9 map). */
export async function convertCohort(paths: readonly string[]): Promise<{ records: CohortEncounterRecord[]; emergencyStays: number }> {
  const byPatient = new Map<string, Resources>();
  const of = (id: string): Resources => {
    let entry = byPatient.get(id);
    if (!entry) {
      entry = { patient: undefined, encounters: [], conditions: [], observations: [], serviceRequests: [], medications: [], procedures: [] };
      byPatient.set(id, entry);
    }
    return entry;
  };
  for await (const { resource } of readNdjson(paths)) {
    const value = resource as Record<string, unknown>;
    if (resource.resourceType === 'Patient') {
      of(value.id as string).patient = value as unknown as Patient;
      continue;
    }
    const patient = patientIdOfResource(value);
    if (!patient) continue;
    switch (resource.resourceType) {
      case 'Encounter':
        of(patient).encounters.push(value as unknown as Encounter);
        break;
      case 'Condition':
        of(patient).conditions.push(value as unknown as Condition);
        break;
      case 'Observation': {
        // Vital signs and pain scores are not read by the conversion; leaving them out saves memory.
        const code = JSON.stringify(value.code ?? '');
        if (JSON.stringify(value.category ?? '').includes('laboratory') || code.includes('8661-1') || code.includes('56839-4')) {
          of(patient).observations.push(value as unknown as Observation);
        }
        break;
      }
      case 'ServiceRequest':
        of(patient).serviceRequests.push(value as unknown as ServiceRequest);
        break;
      case 'MedicationDispense':
      case 'MedicationAdministration':
      case 'MedicationRequest':
        of(patient).medications.push(value as unknown as MedicationDispense);
        break;
      case 'Procedure':
        of(patient).procedures.push(value as unknown as Procedure);
        break;
      default:
    }
  }
  const context = { hasher: (kind: string, value: string) => `${kind}:${value}`, vocabulary: seedComplaintVocabulary(), icd9Map: new Map<string, string[]>() };
  const records: CohortEncounterRecord[] = [];
  let emergencyStays = 0;
  for (const id of [...byPatient.keys()].sort()) {
    const conversion = cohortRecordsForPatient(byPatient.get(id) as Resources, context);
    emergencyStays += conversion.emergencyStays;
    records.push(...conversion.records);
    byPatient.delete(id);
  }
  return { records, emergencyStays };
}

/** The figures the distribution tests compare. */
export function summarize({ records, emergencyStays }: { records: readonly CohortEncounterRecord[]; emergencyStays: number }): CohortSummary {
  const count = records.length;
  const share = (predicate: (record: CohortEncounterRecord) => boolean) => records.filter(predicate).length / count;
  const complaints = new Map<string, number>();
  const byKind = new Map<string, number>();
  const bands = new Map<string, number>();
  const encountersByPatient = new Map<string, number>();
  let items = 0;
  for (const record of records) {
    const band = Math.floor(record.encounter.ageYears / 10) * 10;
    const bandName = `${band}-${band + 9}`;
    bands.set(bandName, (bands.get(bandName) ?? 0) + 1);
    encountersByPatient.set(record.encounter.patientKey, (encountersByPatient.get(record.encounter.patientKey) ?? 0) + 1);
    const concept = primaryConcept(record.encounter.complaintConcepts) ?? '';
    complaints.set(concept, (complaints.get(concept) ?? 0) + 1);
    items += record.items.length;
    for (const item of record.items) byKind.set(item.kind, (byKind.get(item.kind) ?? 0) + 1);
  }
  return {
    encounters: count,
    skippedEncounters: emergencyStays - count,
    complaintShares: new Map([...complaints].map(([concept, seen]) => [concept, seen / count])),
    admissionRate: share((record) => record.encounter.admitted),
    return72hRate: share((record) => record.encounter.returned72h),
    femaleShare: share((record) => record.encounter.sex === 'female'),
    meanAge: records.reduce((sum, record) => sum + record.encounter.ageYears, 0) / count,
    ageBandShares: new Map([...bands].map(([band, seen]) => [band, seen / count])),
    patientsWithSeveralEncountersShare: [...encountersByPatient.values()].filter((seen) => seen >= 2).length / encountersByPatient.size,
    withHistoryShare: share((record) => record.encounter.historyIcd10Codes.length > 0),
    meanItems: items / count,
    meanItemsByKind: new Map([...byKind].map(([kind, seen]) => [kind, seen / count])),
  };
}
