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
import { readStagedBatch, stagedLinePrefix, type StagedMalformedLine } from './staging.js';

/** What one chunk of input lines becomes. */
export interface StagedChunk {
  /** The staged lines of every batch, one batch after another (see stagedLine for a line's layout). */
  readonly data: Uint8Array;
  /** [batch, byte length] pairs, in the order the batches' lines follow each other in `data`. */
  readonly spans: number[];
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
 * Resource types routed without being parsed when their line has the usual compact shape: each names its
 * patient in `subject` and nowhere else at its top level, and holds no element called `subject` deeper down
 * (in FHIR R4), so one `"subject":{"reference":"…"}` in a line without contained resources is the resource's own.
 */
const fastPathTypes = new Set([
  'Encounter',
  'Condition',
  'Observation',
  'ServiceRequest',
  'MedicationDispense',
  'MedicationAdministration',
  'MedicationRequest',
  'Procedure',
]);
const resourceTypeKey = Buffer.from('"resourceType"');
const subjectKey = Buffer.from('"subject"');
const referenceKey = Buffer.from('"reference"');
const containedKey = Buffer.from('"contained"');
const openBrace = 0x7b;
const colon = 0x3a;
const quote = 0x22;
const backslash = 0x5c;
const newline = 0x0a;

/** The index of the first byte at or after `at` that is not JSON whitespace. */
function skipSpace(line: Buffer, at: number): number {
  let index = at;
  while (index < line.length) {
    const byte = line[index]!;
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) break;
    index += 1;
  }
  return index;
}

/** After `key` at `at`: the index just past `"key" : "`, or -1 when the bytes there are not that. */
function afterKey(line: Buffer, at: number, key: Buffer, then: number): number {
  if (line.compare(key, 0, key.length, at, at + key.length) !== 0) return -1;
  let index = skipSpace(line, at + key.length);
  if (line[index] !== colon) return -1;
  index = skipSpace(line, index + 1);
  return line[index] === then ? index + 1 : -1;
}

/** The text of a JSON string starting at `start` (just past its opening quote) without escapes; null if it has any. */
function plainString(line: Buffer, start: number, encoding: 'latin1' | 'utf8'): { readonly text: string; readonly end: number } | null {
  const end = line.indexOf(quote, start);
  if (end === -1) return null;
  const escape = line.indexOf(backslash, start);
  if (escape !== -1 && escape < end) return null;
  return { text: line.toString(encoding, start, end), end };
}

/**
 * The resource type and patient id of a line, read from its bytes without parsing it, when the line has the
 * usual shape (`{…, "resourceType": "<one of fastPathTypes>", …, "subject": {"reference": "…Patient/<id>"…}…}`,
 * keys in any order, any JSON whitespace, one "resourceType" and one "subject" key, no contained resources, no
 * escapes in the two values); null whenever
 * there is any doubt, and the line is then parsed. The patient id is the one patientIdOfResource finds in the
 * parsed resource.
 */
function routeWithoutParsing(line: Buffer): { readonly resourceType: string; readonly patientId: string } | null {
  if (line[skipSpace(line, 0)] !== openBrace) return null;
  // A quoted key cannot occur inside a JSON string (its quotes would be escaped), so with one "resourceType",
  // one "subject" and no contained resources, both are the resource's own, whatever the order of its keys.
  const typeAt = line.indexOf(resourceTypeKey);
  if (typeAt === -1 || line.indexOf(resourceTypeKey, typeAt + resourceTypeKey.length) !== -1 || line.indexOf(containedKey) !== -1) return null;
  const typeStart = afterKey(line, typeAt, resourceTypeKey, quote);
  if (typeStart === -1) return null;
  const type = plainString(line, typeStart, 'latin1');
  if (type === null || !fastPathTypes.has(type.text)) return null;
  const at = line.indexOf(subjectKey);
  if (at === -1 || line.indexOf(subjectKey, at + subjectKey.length) !== -1) return null;
  const inside = afterKey(line, at, subjectKey, openBrace);
  if (inside === -1) return null;
  const referenceStart = afterKey(line, skipSpace(line, inside), referenceKey, quote);
  if (referenceStart === -1) return null;
  const reference = plainString(line, referenceStart, 'utf8');
  if (reference === null) return null;
  const patientId = patientIdOf({ reference: reference.text });
  return patientId === null ? null : { resourceType: type.text, patientId };
}

/**
 * Stages a chunk of whole NDJSON lines (`firstLine` is the number of the first, in input file `fileIndex`): each
 * resource the conversion reads goes to the batch of its patient (stagedLinePrefix). Lines of the usual compact
 * shape are routed from their bytes (routeWithoutParsing) and staged as they are, unparsed: JSON.parse runs once
 * per resource, at conversion. Every other line is parsed here, counted and reduced to what the conversion reads.
 * The staged lines are written into `output` when it is given and large enough (`data` is then a view of it).
 */
export function stageBytes(bytes: Uint8Array, firstLine: number, fileIndex: number, batchCount: number, output?: Uint8Array): StagedChunk {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const perBatch = new Map<number, Array<Buffer | string>>();
  const medications: string[] = [];
  const byResourceType: Record<string, number> = {};
  const malformed: Array<{ line: number; message: string }> = [];
  let resources = 0;
  let withoutPatient = 0;
  let unresolvedConsents = 0;
  let size = 0;
  const stage = (patientId: string, line: number, resource: Buffer | string) => {
    const batch = batchOfPatient(patientId, batchCount);
    let entries = perBatch.get(batch);
    if (!entries) {
      entries = [];
      perBatch.set(batch, entries);
    }
    const prefix = stagedLinePrefix(fileIndex, line, patientId);
    entries.push(prefix, resource, '\n');
    size += Buffer.byteLength(prefix) + (typeof resource === 'string' ? Buffer.byteLength(resource) : resource.length) + 1;
  };

  let line = firstLine;
  for (let start = 0; start < buffer.length; line += 1) {
    let end = buffer.indexOf(newline, start);
    if (end === -1) end = buffer.length;
    const next = end + 1;
    if (end > start && buffer[end - 1] === 0x0d) end -= 1;
    const raw = buffer.subarray(start, end);
    start = next;
    if (raw.length === 0) continue;
    const route = routeWithoutParsing(raw);
    if (route) {
      resources += 1;
      byResourceType[route.resourceType] = (byResourceType[route.resourceType] ?? 0) + 1;
      stage(route.patientId, line, raw);
      continue;
    }
    const text = raw.toString('utf8');
    if (isBlank(text)) continue;
    const parsed = parseResourceLine(text);
    if (typeof parsed === 'string') {
      malformed.push({ line, message: parsed });
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
    stage(patientId, line, JSON.stringify(reduced));
  }

  // Into the caller's memory when it is large enough (a worker's shared slot, ingest-processor.ts); else never from
  // Buffer's shared pool: a worker hands this memory over (transfers it) to the main thread.
  const data = output && size <= output.length ? Buffer.from(output.buffer, output.byteOffset, size) : Buffer.allocUnsafeSlow(size);
  const spans: number[] = [];
  let offset = 0;
  for (const [batch, entries] of perBatch) {
    const batchStart = offset;
    for (const entry of entries) offset += typeof entry === 'string' ? data.write(entry, offset) : entry.copy(data, offset);
    spans.push(batch, offset - batchStart);
  }
  return { data, spans, medications: medications.join(''), resources, byResourceType, withoutPatient, unresolvedConsents, malformed };
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
  /** Staged lines that were not resources after all (staged unparsed; see stageBytes). */
  readonly malformed: StagedMalformedLine[];
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
  const staged = readStagedBatch(directory, batch);
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
  const counts: Record<string, number> = { patients: 0, emergencyStays: 0 };
  const count = (key: string, by: number) => {
    counts[key] = (counts[key] ?? 0) + by;
  };
  const optedOut = new Set(settings.optedOutPatientKeys);
  const consentRefusalKeys: string[] = [];
  let sliceStarted = Date.now();
  for (const [patientId, resources, refusesResearch] of staged.patients()) {
    count('patients', 1);
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
  // Staging counted these lines as resources of their declared type: the run's report takes them back.
  const { malformed } = staged;
  if (malformed.length > 0) counts.malformedLines = malformed.length;
  for (const { declaredType } of malformed) count(`malformedLines.${declaredType ?? 'unknown'}`, 1);
  return { records, counts, consentRefusalKeys, malformed };
}

export type { ResourceLike };
