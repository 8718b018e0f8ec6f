import type {
  Condition,
  Encounter,
  Medication,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  Observation,
  Patient,
  Procedure,
  Reference,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type { Kysely } from 'kysely';
import type { ComplaintVocabulary } from '../cohort/complaint.js';
import { loadIcd9ToIcd10Map } from '../db/code-table.repository.js';
import { rebuildLabPanels, saveCohortEncounters } from '../db/cohort-encounter.repository.js';
import { loadComplaintVocabulary } from '../db/complaint.repository.js';
import type { Database } from '../db/database.js';
import { finishIngestRun, startIngestRun } from '../db/ingest-run.repository.js';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';
import type { KeyHasher } from './deidentify.js';
import {
  acuityLoinc,
  chiefComplaintLoinc,
  cohortRecordsForPatient,
  loinc,
  type CohortEncounterRecord,
  type PatientResources,
} from './fhir-to-cohort.js';
import { listNdjsonFiles, readNdjsonFile, type FhirResource, type MalformedLine } from './ndjson-reader.js';

export interface IngestProgress {
  readonly phase: 'reading' | 'loading' | 'panels' | 'done';
  /** The file being read, in the reading phase. */
  readonly file?: string;
  readonly filesRead: number;
  readonly filesTotal: number;
  readonly resourcesRead: number;
  readonly encountersLoaded: number;
}

export interface IngestOptions {
  readonly hasher: KeyHasher;
  /** Loaded from complaint_synonym when absent. */
  readonly vocabulary?: ComplaintVocabulary;
  /** Loaded from icd9_to_icd10 when absent. */
  readonly icd9Map?: Icd9ToIcd10Map;
  /** cohort_encounter.site of every row loaded. */
  readonly site?: string;
  /** See CohortConversionContext.labLeadMinutes. */
  readonly labLeadMinutes?: number;
  /** What ingest_run.source records; the paths by default. */
  readonly source?: string;
  /** Called per file and every few thousand resources; throttle in the caller. */
  readonly onProgress?: (progress: IngestProgress) => void;
  readonly log?: (message: string) => void;
}

export interface IngestReport {
  readonly ingestRunId: string;
  readonly read: {
    readonly files: number;
    readonly lines: number;
    readonly resources: number;
    readonly byResourceType: Record<string, number>;
  };
  readonly loaded: { readonly encounters: number; readonly items: number; readonly draws: number; readonly labPanels: number };
  readonly skipped: {
    /** Malformed lines. */
    readonly lines: number;
    /** ED stays found but not loaded. */
    readonly encounters: number;
    /** Every skip by reason: encounters, and resources that belong to no ED stay. */
    readonly reasons: Record<string, number>;
  };
  /** The malformed lines (the first 1,000), with file and line number. */
  readonly malformed: readonly MalformedLine[];
  readonly durationMs: number;
}

const maximumMalformedListed = 1000;
const recordsPerTransaction = 250;
const progressEveryResources = 5000;

interface MutablePatientResources {
  patient: Patient | undefined;
  encounters: Encounter[];
  conditions: Condition[];
  observations: Observation[];
  serviceRequests: ServiceRequest[];
  medications: Array<MedicationDispense | MedicationAdministration | MedicationRequest>;
  procedures: Procedure[];
}

function patientIdOf(reference: unknown): string | null {
  const text = (reference as Reference | undefined)?.reference;
  if (typeof text !== 'string') return null;
  const match = /(?:^|\/)Patient\/([^/]+)(?:\/_history\/[^/]+)?$/.exec(text);
  return match?.[1] ?? null;
}

function codesOf(observation: Observation): string[] {
  const coding = observation.code?.coding;
  return Array.isArray(coding) ? coding.filter((entry) => entry?.system === loinc).map((entry) => entry.code ?? '') : [];
}

/** Keeps, per patient, the resources the conversion reads; everything else is only counted. */
class PatientResourceCollector {
  readonly byPatient = new Map<string, MutablePatientResources>();
  readonly medicationNames = new Map<string, string>();
  ignoredWithoutPatient = 0;

  private resourcesOf(patientId: string): MutablePatientResources {
    let resources = this.byPatient.get(patientId);
    if (!resources) {
      resources = { patient: undefined, encounters: [], conditions: [], observations: [], serviceRequests: [], medications: [], procedures: [] };
      this.byPatient.set(patientId, resources);
    }
    return resources;
  }

  add(resource: FhirResource): void {
    switch (resource.resourceType) {
      case 'Patient': {
        const patient = resource as unknown as Patient;
        if (typeof patient.id === 'string') this.resourcesOf(patient.id).patient = patient;
        return;
      }
      case 'Medication': {
        const medication = resource as unknown as Medication;
        const name = medication.code?.text ?? medication.code?.coding?.find((coding) => coding.display)?.display;
        if (typeof medication.id === 'string' && typeof name === 'string') this.medicationNames.set(medication.id, name);
        return;
      }
      case 'Encounter':
      case 'Condition':
      case 'Observation':
      case 'ServiceRequest':
      case 'MedicationDispense':
      case 'MedicationAdministration':
      case 'MedicationRequest':
      case 'Procedure':
        break;
      default:
        // MedicationStatement (home medications), Location, Organization, …: not part of what the ED did.
        return;
    }
    const patientId = patientIdOf(resource.subject) ?? patientIdOf(resource.patient);
    if (patientId === null) {
      this.ignoredWithoutPatient += 1;
      return;
    }
    const resources = this.resourcesOf(patientId);
    switch (resource.resourceType) {
      case 'Encounter':
        resources.encounters.push(resource as unknown as Encounter);
        return;
      case 'Condition':
        resources.conditions.push(resource as unknown as Condition);
        return;
      case 'Observation': {
        const observation = resource as unknown as Observation;
        // Only labs and triage complaint/acuity are read; vitals and pain scores would only take memory.
        const isLab = observation.category?.some?.((category) => category?.coding?.some?.((coding) => coding?.code === 'laboratory'));
        const codes = codesOf(observation);
        if (isLab || codes.includes(chiefComplaintLoinc) || codes.includes(acuityLoinc)) resources.observations.push(observation);
        return;
      }
      case 'ServiceRequest':
        resources.serviceRequests.push(resource as unknown as ServiceRequest);
        return;
      case 'Procedure':
        resources.procedures.push(resource as unknown as Procedure);
        return;
      default:
        resources.medications.push(resource as unknown as MedicationDispense | MedicationAdministration | MedicationRequest);
    }
  }
}

function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/**
 * Reads FHIR NDJSON files or Bulk Data export folders, turns each ED stay into de-identified cohort rows and
 * stores them (idempotently), then rebuilds the lab panels. Each file is streamed once; the resources kept
 * are grouped by patient in memory until every file is read.
 */
export async function ingestPaths(db: Kysely<Database>, paths: readonly string[], options: IngestOptions): Promise<IngestReport> {
  const started = Date.now();
  const files = await listNdjsonFiles(paths);
  if (files.length === 0) throw new Error(`no NDJSON files (*.ndjson, *.ndjson.gz) in ${paths.join(', ')}`);
  const source = options.source ?? paths.join(', ');
  const ingestRunId = await startIngestRun(db, source);
  const vocabulary = options.vocabulary ?? (await loadComplaintVocabulary(db));
  const icd9Map = options.icd9Map ?? (await loadIcd9ToIcd10Map(db));

  const malformed: MalformedLine[] = [];
  let malformedCount = 0;
  const byResourceType: Record<string, number> = {};
  let lines = 0;
  let resourcesRead = 0;
  let filesRead = 0;
  const collector = new PatientResourceCollector();
  const progress = (phase: IngestProgress['phase'], extra: Partial<IngestProgress> = {}) =>
    options.onProgress?.({ phase, filesRead, filesTotal: files.length, resourcesRead, encountersLoaded: 0, ...extra });

  for (const file of files) {
    progress('reading', { file });
    const records = readNdjsonFile(file, {
      onMalformed: (line) => {
        malformedCount += 1;
        if (malformed.length < maximumMalformedListed) malformed.push(line);
      },
      onFileEnd: (_file, count) => {
        lines += count;
      },
    });
    for await (const { resource } of records) {
      resourcesRead += 1;
      increment(byResourceType, resource.resourceType);
      collector.add(resource);
      if (resourcesRead % progressEveryResources === 0) progress('reading', { file });
    }
    filesRead += 1;
  }
  options.log?.(`read ${resourcesRead} resources from ${files.length} files; converting ${collector.byPatient.size} patients`);

  const reasons: Record<string, number> = {};
  if (collector.ignoredWithoutPatient > 0) increment(reasons, 'resource-without-patient', collector.ignoredWithoutPatient);
  let emergencyStays = 0;
  const loaded = { encounters: 0, items: 0, draws: 0 };
  let pending: CohortEncounterRecord[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const saved = await db.transaction().execute((trx) => saveCohortEncounters(trx, batch));
    loaded.encounters += saved.encounters;
    loaded.items += saved.items;
    loaded.draws += saved.draws;
    progress('loading', { encountersLoaded: loaded.encounters });
  };

  const context = {
    hasher: options.hasher,
    vocabulary,
    icd9Map,
    site: options.site ?? 'default',
    medicationNames: collector.medicationNames,
    ...(options.labLeadMinutes === undefined ? {} : { labLeadMinutes: options.labLeadMinutes }),
  };
  const patientIds = [...collector.byPatient.keys()].sort();
  for (const patientId of patientIds) {
    const resources: PatientResources | undefined = collector.byPatient.get(patientId);
    if (!resources) continue;
    collector.byPatient.delete(patientId);
    let conversion;
    try {
      conversion = cohortRecordsForPatient(resources, context);
    } catch (error) {
      // One patient's odd resources must not stop the run; the cause goes to the log, not the report.
      increment(reasons, 'patient-conversion-error');
      options.log?.(`could not convert one patient's resources: ${(error as Error).message}`);
      continue;
    }
    emergencyStays += conversion.emergencyStays;
    for (const [reason, count] of Object.entries(conversion.skipped)) increment(reasons, reason, count);
    pending.push(...conversion.records);
    if (pending.length >= recordsPerTransaction) await flush();
  }
  await flush();

  progress('panels', { encountersLoaded: loaded.encounters });
  const panels = await rebuildLabPanels(db);
  const skippedEncounters = Object.entries(reasons)
    .filter(([reason]) => reason.startsWith('encounter-'))
    .reduce((sum, [, count]) => sum + count, 0);

  const report: IngestReport = {
    ingestRunId,
    read: { files: files.length, lines, resources: resourcesRead, byResourceType },
    loaded: { ...loaded, labPanels: panels.length },
    skipped: { lines: malformedCount, encounters: skippedEncounters, reasons },
    malformed,
    durationMs: Date.now() - started,
  };
  await finishIngestRun(db, ingestRunId, {
    files: files.length,
    lines,
    resources: resourcesRead,
    emergencyStays,
    encounters: loaded.encounters,
    items: loaded.items,
    draws: loaded.draws,
    labPanels: panels.length,
    skippedLines: malformedCount,
    skippedEncounters,
    ...Object.fromEntries(Object.entries(reasons).map(([reason, count]) => [`skipped.${reason}`, count])),
    durationMs: report.durationMs,
  });
  progress('done', { encountersLoaded: loaded.encounters });
  return report;
}
