/**
 * The CPU-heavy parts of an ingest, as plain functions of plain data so that they run the same on the main
 * thread and in worker threads (ingest-worker.ts): turning chunks of NDJSON lines into staged lines by patient
 * batch, and converting a staged batch of patients into cohort rows.
 */
import type { Medication, Reference } from '@medplum/fhirtypes';
import type { ComplaintVocabulary } from '../cohort/complaint.js';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';
import { readResearchConsent } from '../privacy/consent.js';
import { cachingKeyHasher, type KeyHasher } from './deidentify.js';
import {
  cohortRecordsForPatient,
  medicationNameOf,
  reduceForConversion,
  type CohortConversionContext,
  type CohortEncounterRecord,
  type ResourceLike,
} from './fhir-to-cohort.js';
import { parseResourceLine } from './ndjson-reader.js';
import { readStagedBatch } from './staging.js';

/** What one chunk of input lines becomes. */
export interface StagedChunk {
  /** Text to append to each batch file, by batch. */
  readonly batches: Array<[number, string]>;
  /** Lines for the medication names file (Medication resources). */
  readonly medications: string;
  readonly resources: number;
  readonly byResourceType: Record<string, number>;
  /** Resources the conversion would read but that name no patient. */
  readonly withoutPatient: number;
  /** Consents refusing research use whose patient cannot be told (no `Patient/<id>` reference). */
  readonly unresolvedConsents: number;
  readonly malformed: Array<{ readonly line: number; readonly message: string }>;
}

/** FNV-1a over the UTF-16 code units: stable across runs and platforms, which the resume relies on. */
export function batchOfPatient(patientId: string, batchCount: number): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < patientId.length; index += 1) {
    hash ^= patientId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % batchCount;
}

function patientIdOf(reference: unknown): string | null {
  const text = (reference as Reference | undefined)?.reference;
  if (typeof text !== 'string') return null;
  const match = /(?:^|\/)Patient\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(text);
  return match?.[1] ?? null;
}

/**
 * The Patient a resource belongs to: its own id for a Patient, else the Patient its `subject` or `patient` names;
 * null for resources of no patient (Location, Organization, Medication). How the ingest stages by patient.
 */
export function patientIdOfResource(resource: { readonly resourceType?: unknown; readonly id?: unknown; readonly subject?: unknown; readonly patient?: unknown }): string | null {
  if (resource.resourceType === 'Patient') return typeof resource.id === 'string' ? resource.id : null;
  return patientIdOf(resource.subject) ?? patientIdOf(resource.patient);
}

function isBlank(text: string): boolean {
  return text.length === 0 || (text.charCodeAt(0) <= 32 && text.trim().length === 0);
}

/**
 * Parses a chunk of lines (`firstLine` is the number of the first) and routes each resource the conversion
 * reads, reduced to the fields it reads, to the batch of its patient: `[patientId, resource]` as one JSON line.
 */
export function stageLines(lines: readonly string[], firstLine: number, batchCount: number): StagedChunk {
  const perBatch = new Map<number, string[]>();
  const medications: string[] = [];
  const byResourceType: Record<string, number> = {};
  const malformed: Array<{ line: number; message: string }> = [];
  let resources = 0;
  let withoutPatient = 0;
  let unresolvedConsents = 0;
  for (let index = 0; index < lines.length; index += 1) {
    const text = lines[index]!;
    if (isBlank(text)) continue;
    const parsed = parseResourceLine(text);
    if (typeof parsed === 'string') {
      malformed.push({ line: firstLine + index, message: parsed });
      continue;
    }
    resources += 1;
    byResourceType[parsed.resourceType] = (byResourceType[parsed.resourceType] ?? 0) + 1;
    if (parsed.resourceType === 'Medication') {
      const name = medicationNameOf(parsed as unknown as Medication);
      if (typeof parsed.id === 'string' && name !== null) medications.push(`${JSON.stringify([parsed.id, name])}\n`);
      continue;
    }
    let reduced: ResourceLike | null;
    let patientId: string | null;
    if (parsed.resourceType === 'Consent') {
      // A refusal of research use goes to its patient's batch as a bare marker; other consents are not kept.
      const reading = readResearchConsent(parsed);
      if (!reading.excludes) continue;
      if (reading.patientId === null) {
        unresolvedConsents += 1;
        continue;
      }
      reduced = { resourceType: 'Consent' };
      patientId = reading.patientId;
    } else {
      reduced = reduceForConversion(parsed);
      if (reduced === null) continue;
      patientId = patientIdOfResource(parsed);
    }
    if (patientId === null) {
      // A Patient without an id is of no use and was never counted; other resources are.
      if (parsed.resourceType !== 'Patient') withoutPatient += 1;
      continue;
    }
    const batch = batchOfPatient(patientId, batchCount);
    let entries = perBatch.get(batch);
    if (!entries) {
      entries = [];
      perBatch.set(batch, entries);
    }
    entries.push(`${JSON.stringify([patientId, reduced])}\n`);
  }
  return {
    batches: [...perBatch.entries()].map(([batch, entries]) => [batch, entries.join('')]),
    medications: medications.join(''),
    resources,
    byResourceType,
    withoutPatient,
    unresolvedConsents,
    malformed,
  };
}

/** What a conversion needs besides the staged resources; plain data, so that it can be sent to a thread. */
export interface ConversionSettings {
  readonly vocabulary: ComplaintVocabulary;
  readonly icd9Map: Icd9ToIcd10Map;
  readonly site: string;
  readonly labLeadMinutes?: number;
  readonly medicationNames: ReadonlyMap<string, string>;
  /** See CohortConversionContext.clinicalWords. */
  readonly clinicalWords?: ReadonlySet<string>;
  /** Patient keys of patient_opt_out when the run started: their resources are not converted. */
  readonly optedOutPatientKeys: readonly string[];
}

export interface ConvertedBatch {
  readonly records: CohortEncounterRecord[];
  /** patients, emergencyStays, consentRefusals and `skipped.<reason>`. */
  readonly counts: Record<string, number>;
  /** Patient keys of the batch's patients whose Consent refuses research use (see privacy/consent.ts). */
  readonly consentRefusalKeys: string[];
}

/** After this long converting without a pause, `pause` is awaited (on the main thread: let a COPY in flight go on). */
const sliceMs = 15;

/**
 * Converts every patient of one staged batch. A patient whose resources make the conversion throw is
 * counted and skipped; `log` hears why.
 */
export async function convertStagedBatch(
  directory: string,
  batch: number,
  hasher: KeyHasher,
  settings: ConversionSettings,
  options: { readonly log?: (message: string) => void; readonly pause?: () => Promise<void> } = {},
): Promise<ConvertedBatch> {
  const patients = readStagedBatch(directory, batch);
  // Keys repeat within a batch (each result of a draw names its specimen): compute each once.
  const keys = cachingKeyHasher(hasher);
  const context: CohortConversionContext = {
    hasher: keys.hasher,
    vocabulary: settings.vocabulary,
    icd9Map: settings.icd9Map,
    site: settings.site,
    medicationNames: settings.medicationNames,
    ...(settings.labLeadMinutes === undefined ? {} : { labLeadMinutes: settings.labLeadMinutes }),
    ...(settings.clinicalWords === undefined ? {} : { clinicalWords: settings.clinicalWords }),
  };
  const records: CohortEncounterRecord[] = [];
  const counts: Record<string, number> = { patients: patients.length, emergencyStays: 0 };
  const count = (key: string, by: number) => {
    counts[key] = (counts[key] ?? 0) + by;
  };
  const optedOut = new Set(settings.optedOutPatientKeys);
  const consentRefusalKeys: string[] = [];
  let sliceStarted = Date.now();
  for (const [patientId, resources, refusesResearch] of patients) {
    // The key cohortRecordsForPatient gives the patient's rows (and opt-out.ts patientKeyFor).
    const patientKey = hasher('patient', patientId);
    if (refusesResearch || optedOut.has(patientKey)) {
      // Their encounters are never converted: an excluded patient is not even briefly in the cohort.
      if (refusesResearch) consentRefusalKeys.push(patientKey);
      count('skipped.patient-opted-out', 1);
      continue;
    }
    try {
      const conversion = cohortRecordsForPatient(resources, context);
      count('emergencyStays', conversion.emergencyStays);
      for (const [reason, skipped] of Object.entries(conversion.skipped)) count(`skipped.${reason}`, skipped);
      for (const record of conversion.records) records.push(record);
    } catch (error) {
      // One patient's odd resources must not stop the run; the cause goes to the log, not the report.
      count('skipped.patient-conversion-error', 1);
      options.log?.(`could not convert one patient's resources: ${(error as Error).message}`);
    }
    if (options.pause && Date.now() - sliceStarted >= sliceMs) {
      await options.pause();
      sliceStarted = Date.now();
    }
  }
  counts.consentRefusals = consentRefusalKeys.length;
  return { records, counts, consentRefusalKeys };
}

export type { ResourceLike };
