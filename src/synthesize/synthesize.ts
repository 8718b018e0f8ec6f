/**
 * Synthetic ED cohorts of any size for scale tests, written as FHIR R4 NDJSON in the Bulk Data layout (one
 * file per resource type) that the ingest reads. Never a source of quality claims: every synthetic visit
 * is a real demo visit replayed with noise, so the cohort holds no clinical knowledge the demo does not.
 *
 * Design: whole patients are resampled, not single visits, so that what belongs to a patient's trajectory
 * stays real: 72-hour returns, repeat visits with the same complaint, and the problem list (earlier
 * encounters' diagnoses). The template patients are taken in rounds: each round is a fresh random
 * permutation of all of them, so every complaint, diagnosis set and outcome recurs at its demo frequency
 * (a complaint seen in 1 of 222 demo visits is 1 in 222 synthetic visits, give or take the last round).
 * Each replay gets fresh ids and this noise (see `noise`):
 * - dates: the patient's whole timeline (ED stays, hospital encounters, every time inside them) moves by
 *   a uniform 1 day to 2 years, earlier or later, to the minute; the birth date moves with it and by up to
 *   ±3 more years (so ages change), and never by less than two days in all. The source's shifted years
 *   (MIMIC's 2100s) stay roughly where they were; no synthetic date is a source date of the same patient;
 * - the other administrative sex with a small probability, when no diagnosis or complaint is sex-specific;
 * - ED lengths of stay and the gaps between visits stretched or shrunk a little, never across the 72-hour
 *   or 30-day return limits, with every time inside a stay moved along with it;
 * - each lab draw, order or medication dropped with a small probability and replaced by one of the same
 *   kind borrowed from another demo visit with the same primary complaint (so additions follow the
 *   complaint cohort's own frequencies);
 * - triage acuity one level off with a small probability;
 * - clinicians: each source clinician (ServiceRequest requester, medication or procedure performer) becomes
 *   `cliniciansPerTemplateClinician` synthetic ones with identifiers of a synthetic system; a replayed
 *   patient draws one of them, so a synthetic clinician orders as the source one did, for many patients.
 * Nothing free-text is copied: complaints are rewritten (see ComplaintRewriter in templates.ts), ids and
 * identifiers are minted from the seed and counters.
 *
 * Deterministic: one seeded generator drives every choice in a fixed order, and the files are written in
 * fixed-size chunks, so a seed gives the same bytes (gzip included) on every run. Streaming: lines are
 * written as each patient is made; memory does not grow with the number of encounters. Every file lists
 * its resources by synthetic patient, in the same patient order.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ingredientForMedication } from '../ingest/medication.js';
import { NdjsonSink } from './ndjson-sink.js';
import { createRandom, seedTag, shuffleInPlace, type Random } from './random.js';
import type { EncounterLink, ItemGroupKind, TemplateItemGroup, TemplatePatient, TemplateSet, TemplateVisit } from './templates.js';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const year = 365.25 * day;

/** The noise added to each replayed patient. */
export const noise = {
  /** The whole timeline moves by up to this much either way. */
  timelineShiftMs: 2 * year,
  /** The birth date moves by up to this much more either way: the age at every visit changes with it. */
  ageShiftMs: 3 * year,
  /** Chance that a patient without sex-specific diagnoses or complaints is given the other sex. */
  sexSwap: 0.03,
  /** ED length of stay × exp(N(0, σ)), clamped. */
  lengthOfStaySigma: 0.15,
  lengthOfStayFactor: [0.7, 1.4] as const,
  /** Gap between a departure and the next arrival × exp(N(0, σ)), clamped; never moved across a return limit. */
  gapSigma: 0.1,
  gapFactor: [0.8, 1.25] as const,
  /** Chance that a lab draw, order or medication is dropped and replaced by one from the complaint cohort. */
  itemSwap: 0.12,
  /** Donor candidates drawn per swapped group; the best fit wins (see writeVisit). */
  donorCandidates: 4,
  /** Chance that triage acuity is one level higher or lower (within 1–5). */
  acuityShift: 0.05,
  /** Each template clinician becomes this many synthetic ones (one per visit, drawn at random). */
  cliniciansPerTemplateClinician: 20,
} as const;

/** Limits that a changed gap must not cross, so returns within 72 hours and 30 days stay what they were. */
const returnLimitsMs = [0, 72 * hour, 30 * day] as const;

/** Synthetic identifiers live in a namespace of their own; codes (LOINC, ICD, lab items, GSN) stay the source's. */
const identifierBase = 'https://cohort-cds.invalid/synthetic';
/** The ingest tells hospital records of class EMER from ED stays by this suffix, as MIMIC's identifiers have it. */
const hospitalIdentifierSystem = `${identifierBase}/encounter-hosp`;
const specimenSystem = `${identifierBase}/specimen`;
const clinicianSystem = `${identifierBase}/clinician`;
/** HL7 v3 ActReason HTEST, "test health data": every synthetic Patient and ED Encounter says what it is. */
const testDataLabel = '{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"HTEST","display":"test health data"}]}';
const emergencyClass = '{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"EMER","display":"emergency"}';
const laboratoryCategory = '[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}]';
const surveyCategory = '[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"survey"}]}]';
const diagnosisCategory = '[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":"encounter-diagnosis"}]}]';
const complaintCode = '{"coding":[{"system":"http://loinc.org","code":"8661-1","display":"Chief complaint - Reported"}]}';
const acuityCode = '{"coding":[{"system":"http://loinc.org","code":"56839-4","display":"Acuity assessment Narrative"}]}';

/** Synthetic times are written in one fixed zone, like the source's local times. */
const zoneOffsetMinutes = -4 * 60;

export type SyntheticResourceType =
  | 'Patient'
  | 'Encounter'
  | 'Condition'
  | 'Observation'
  | 'ServiceRequest'
  | 'MedicationDispense'
  | 'MedicationAdministration'
  | 'MedicationRequest'
  | 'Procedure';

export interface SynthesizeProgress {
  readonly encounters: number;
  readonly encountersAsked: number;
  readonly patients: number;
  /** Uncompressed bytes written so far. */
  readonly bytes: number;
  readonly elapsedMs: number;
}

export interface SynthesizeOptions {
  readonly templates: TemplateSet;
  /** ED encounters to write (exactly). */
  readonly encounters: number;
  readonly seed: number;
  readonly outDirectory: string;
  /** Write `.ndjson.gz` (this zlib level; 1 is fastest) instead of `.ndjson`. */
  readonly gzipLevel?: number | null;
  /** Remove earlier NDJSON files from the folder first instead of refusing. */
  readonly overwrite?: boolean;
  /** What the templates were learnt from, recorded in synthesis.json (no absolute paths: the bytes stay the same). */
  readonly sourceLabel?: string;
  /** Called about every `progressIntervalMs`, and once at the end. */
  readonly onProgress?: (progress: SynthesizeProgress) => void;
  readonly progressIntervalMs?: number;
}

export interface SynthesizeReport {
  readonly encounters: number;
  readonly patients: number;
  readonly files: ReadonlyArray<{ readonly file: string; readonly resourceType: SyntheticResourceType; readonly resources: number; readonly bytes: number }>;
  readonly resources: number;
  /** Uncompressed bytes. */
  readonly bytes: number;
  readonly durationMs: number;
}

export class OutputNotEmptyError extends Error {
  override name = 'OutputNotEmptyError';
}

// ---------------------------------------------------------------------------------------------------------
// Timeline of one replayed patient

interface Timeline {
  readonly starts: number[];
  readonly ends: number[];
  readonly factors: number[];
  readonly gapFactors: number[];
}

function clamp(value: number, [low, high]: readonly [number, number]): number {
  return Math.min(high, Math.max(low, value));
}

function sameSideOfLimits(a: number, b: number): boolean {
  return returnLimitsMs.every((limit) => a <= limit === b <= limit);
}

function planTimeline(template: TemplatePatient, shiftMs: number, random: Random): Timeline {
  const { visits } = template;
  const starts: number[] = [];
  const ends: number[] = [];
  const factors: number[] = [];
  const gapFactors: number[] = [];
  let start = (visits[0] as TemplateVisit).startMs + shiftMs;
  for (let index = 0; index < visits.length; index += 1) {
    const visit = visits[index] as TemplateVisit;
    const factor = clamp(Math.exp(noise.lengthOfStaySigma * random.normal()), noise.lengthOfStayFactor);
    const end = start + Math.round(((visit.endMs - visit.startMs) * factor) / minute) * minute;
    starts.push(start);
    ends.push(end);
    factors.push(factor);
    const next = visits[index + 1];
    if (next) {
      const gap = next.startMs - visit.endMs;
      let gapFactor = clamp(Math.exp(noise.gapSigma * random.normal()), noise.gapFactor);
      const changed = Math.round((gap * gapFactor) / minute) * minute;
      if (!sameSideOfLimits(gap, changed) || gap <= 0) gapFactor = 1;
      gapFactors.push(gapFactor);
      start = end + (gapFactor === 1 ? gap : changed);
    }
  }
  return { starts, ends, factors, gapFactors };
}

/** A time of the stay at `index`, given as an offset from the template's arrival, on the new timeline. */
function timeInVisit(timeline: Timeline, visit: TemplateVisit, index: number, offsetMs: number): number {
  const start = timeline.starts[index] as number;
  const length = visit.endMs - visit.startMs;
  if (offsetMs <= 0) return start + offsetMs;
  if (offsetMs <= length) return start + offsetMs * (timeline.factors[index] as number);
  return (timeline.ends[index] as number) + (offsetMs - length);
}

/**
 * Any other time of the patient (hospital encounters) on the new timeline: warped like the stays and gaps
 * around it, so that what came before or after a visit still does.
 */
function warpTime(template: TemplatePatient, timeline: Timeline, ms: number): number {
  const { visits } = template;
  let index = -1;
  for (let candidate = 0; candidate < visits.length && (visits[candidate] as TemplateVisit).startMs <= ms; candidate += 1) index = candidate;
  if (index === -1) return ms + ((timeline.starts[0] as number) - (visits[0] as TemplateVisit).startMs);
  const visit = visits[index] as TemplateVisit;
  if (ms <= visit.endMs) return timeInVisit(timeline, visit, index, ms - visit.startMs);
  const next = visits[index + 1];
  const gapFactor = timeline.gapFactors[index] ?? 1;
  const gap = next ? next.startMs - visit.endMs : 0;
  if (next && gap > 0 && ms < next.startMs) return (timeline.ends[index] as number) + (ms - visit.endMs) * gapFactor;
  return (timeline.ends[index] as number) + (ms - visit.endMs);
}

// ---------------------------------------------------------------------------------------------------------

const fragment = (text: string): Buffer => Buffer.from(text, 'utf8');

/** The JSON that never changes, as bytes; the comments show where ids and times go. */
const json = {
  patient: fragment('{"resourceType":"Patient","id":"'), // id
  patientGender: fragment(`","meta":${testDataLabel},"gender":`), // "gender"
  patientBirth: fragment(',"birthDate":"'), // date
  quoteBrace: fragment('"}'),
  subject: fragment(',"subject":{"reference":"Patient/'), // id, quoteBrace
  encounter: fragment('{"resourceType":"Encounter","id":"'), // id
  hospitalIdentifier: fragment(`","identifier":[{"system":"${hospitalIdentifierSystem}","value":"`), // hex
  hospitalStatus: fragment('"}],"status":'),
  stayHead: fragment(`","meta":${testDataLabel},"status":"finished","class":${emergencyClass}`),
  partOf: fragment(',"partOf":{"reference":"Encounter/'), // id, quoteBrace
  periodStart: fragment(',"period":{"start":"'), // dateTime
  periodEnd: fragment('","end":"'), // dateTime
  periodOnlyEnd: fragment(',"period":{"end":"'),
  periodClose: fragment('"}'),
  encounterReference: fragment(',"encounter":{"reference":"Encounter/'), // id, quoteBrace
  contextReference: fragment(',"context":{"reference":"Encounter/'), // id, quoteBrace
  condition: fragment('{"resourceType":"Condition","id":"'), // id, code
  observation: fragment('{"resourceType":"Observation","id":"'), // id
  effective: fragment(',"effectiveDateTime":"'), // dateTime
  specimen: fragment(`","specimen":{"identifier":{"system":"${specimenSystem}","value":"`), // hex
  serviceRequest: fragment('{"resourceType":"ServiceRequest","id":"'),
  procedure: fragment('{"resourceType":"Procedure","id":"'),
  performed: fragment(',"performedDateTime":"'),
  authoredOn: fragment(',"authoredOn":"'),
  clinician: fragment(`{"identifier":{"system":"${clinicianSystem}","value":"`), // text, quoteBrace + }
  requester: fragment(',"requester":'),
  performer: fragment(',"performer":[{"actor":'),
  closeQuote: fragment('"'),
  closeBrace: fragment('}'),
  closeActor: fragment('}]'),
  nothing: Buffer.alloc(0),
  acuityLevels: [1, 2, 3, 4, 5].map((level) => fragment(`","valueString":"${level}"}`)),
} as const;

const medicationFields: Record<'MedicationDispense' | 'MedicationAdministration' | 'MedicationRequest', { head: Buffer; time: Buffer; reference: Buffer; who: Buffer }> = {
  MedicationDispense: { head: fragment('{"resourceType":"MedicationDispense","id":"'), time: fragment(',"whenHandedOver":"'), reference: json.contextReference, who: json.performer },
  MedicationAdministration: { head: fragment('{"resourceType":"MedicationAdministration","id":"'), time: fragment(',"effectiveDateTime":"'), reference: json.contextReference, who: json.performer },
  MedicationRequest: { head: fragment('{"resourceType":"MedicationRequest","id":"'), time: fragment(',"authoredOn":"'), reference: json.encounterReference, who: json.requester },
};

/** An item group with its JSON made into bytes once, and the cohort items it gives (as numbers, see ItemIndex). */
type CompiledGroup = { readonly items: readonly number[] } & (
  | { readonly source: Extract<TemplateItemGroup, { kind: 'lab' }>; readonly analytes: ReadonlyArray<{ readonly deltaMs: number; readonly head: Buffer; readonly tail: Buffer }> }
  | { readonly source: Exclude<TemplateItemGroup, { kind: 'lab' }>; readonly head: Buffer; readonly tail: Buffer }
);

/**
 * Numbers for the items a group gives the cohort, as the ingest counts them (one per lab analyte code, per
 * medication ingredient, per order), so that swapping groups can keep a visit's number of items.
 */
class ItemIndex {
  private readonly numbers = new Map<string, number>();
  get size(): number {
    return this.numbers.size;
  }
  of(key: string): number {
    let number = this.numbers.get(key);
    if (number === undefined) {
      number = this.numbers.size;
      this.numbers.set(key, number);
    }
    return number;
  }
  ofGroup(group: TemplateItemGroup): number[] {
    const keys = new Set<string>();
    switch (group.kind) {
      case 'lab':
        for (const analyte of group.analytes) keys.add(`lab:${analyte.codeJson}`);
        break;
      case 'medication': {
        const concept = JSON.parse(group.medicationJson) as { text?: string; coding?: Array<{ display?: string; code?: string }> };
        const name = concept.text ?? concept.coding?.find((coding) => coding.display)?.display ?? concept.coding?.[0]?.code ?? '';
        keys.add(`med:${ingredientForMedication(name).code}`);
        break;
      }
      case 'order':
      case 'procedure':
        keys.add(`${group.kind}:${group.codeJson}`);
        break;
    }
    return [...keys].map((key) => this.of(key));
  }
}

interface CompiledVisit {
  readonly source: TemplateVisit;
  readonly tail: Buffer;
  /** One tail per spelling of the complaint; a visit uses one spelling for all its complaint observations. */
  readonly complaints: ReadonlyArray<{ readonly offsetMs: number; readonly head: Buffer; readonly tails: readonly Buffer[] }>;
  readonly acuities: ReadonlyArray<{ readonly offsetMs: number; readonly head: Buffer; readonly tail: Buffer; readonly level: number | null }>;
  readonly diagnoses: readonly Buffer[];
  readonly groups: readonly CompiledGroup[];
}

interface CompiledPatient {
  readonly source: TemplatePatient;
  readonly visits: readonly CompiledVisit[];
  readonly hospitals: ReadonlyArray<{ readonly head: Buffer; readonly tail: Buffer; readonly diagnoses: readonly Buffer[] }>;
}

function compileGroup(group: TemplateItemGroup, index: ItemIndex): CompiledGroup {
  const items = index.ofGroup(group);
  switch (group.kind) {
    case 'lab':
      return {
        items,
        source: group,
        analytes: group.analytes.map((analyte) => ({
          deltaMs: analyte.deltaMs,
          head: fragment(`","status":${JSON.stringify(analyte.status)},"category":${laboratoryCategory},"code":${analyte.codeJson}`),
          tail: fragment(`"}}${analyte.valueJson}}`),
        })),
      };
    case 'order':
      return {
        items,
        source: group,
        head: fragment(`","status":${JSON.stringify(group.status)},"intent":${JSON.stringify(group.intent)}${group.categoryJson},"code":${group.codeJson}`),
        tail: json.closeBrace,
      };
    case 'medication':
      return {
        items,
        source: group,
        head: fragment(`","status":${JSON.stringify(group.status)}${group.resourceType === 'MedicationRequest' ? `,"intent":${JSON.stringify(group.intent ?? 'order')}` : ''}`),
        tail: fragment(`,"medicationCodeableConcept":${group.medicationJson}}`),
      };
    case 'procedure':
      return {
        items,
        source: group,
        head: fragment(`","status":${JSON.stringify(group.status)},"code":${group.codeJson}`),
        tail: json.closeBrace,
      };
  }
}

function compilePatient(patient: TemplatePatient, index: ItemIndex): CompiledPatient {
  const diagnosis = (code: string) => fragment(`","category":${diagnosisCategory},"code":${code}`);
  return {
    source: patient,
    hospitals: patient.hospitals.map((hospital) => ({
      head: fragment(`${JSON.stringify(hospital.status)},"class":${hospital.classJson}`),
      tail: fragment(`${hospital.hospitalizationJson ? `,"hospitalization":${hospital.hospitalizationJson}` : ''}}`),
      diagnoses: hospital.diagnoses.map(diagnosis),
    })),
    visits: patient.visits.map((visit) => ({
      source: visit,
      tail: fragment(
        `${visit.reasonCodeJson ? `,"reasonCode":${visit.reasonCodeJson}` : ''}${visit.hospitalizationJson ? `,"hospitalization":${visit.hospitalizationJson}` : ''}}`,
      ),
      complaints: visit.complaints.map((complaint) => ({
        offsetMs: complaint.offsetMs,
        head: fragment(`","status":${JSON.stringify(complaint.status)},"category":${surveyCategory},"code":${complaintCode}`),
        tails: complaint.variants.map((text) => fragment(`","valueString":${JSON.stringify(text)}}`)),
      })),
      acuities: visit.acuities.map((acuity) => {
        const level = /^,"valueString":"([1-5])"$/.exec(acuity.valueJson);
        return {
          offsetMs: acuity.offsetMs,
          head: fragment(`","status":${JSON.stringify(acuity.status)},"category":${surveyCategory},"code":${acuityCode}`),
          tail: fragment(`"${acuity.valueJson}}`),
          level: level ? Number(level[1]) : null,
        };
      }),
      diagnoses: visit.diagnoses.map(diagnosis),
      groups: visit.groups.map((group) => compileGroup(group, index)),
    })),
  };
}

interface DonorGroup {
  readonly visit: TemplateVisit;
  readonly group: CompiledGroup;
}

/** For each complaint stratum and kind, every item group of the demo visits in it: donors for additions. */
function buildDonorPools(patients: readonly CompiledPatient[]): (visit: TemplateVisit, kind: ItemGroupKind) => readonly DonorGroup[] {
  const byStratum = new Map<string, DonorGroup[]>();
  const visitsInStratum = new Map<string, number>();
  const add = (key: string, donor: DonorGroup) => {
    const list = byStratum.get(key) ?? [];
    list.push(donor);
    byStratum.set(key, list);
  };
  for (const patient of patients) {
    for (const { source: visit, groups } of patient.visits) {
      visitsInStratum.set(visit.stratum, (visitsInStratum.get(visit.stratum) ?? 0) + 1);
      for (const group of groups) {
        add(`complaint:${visit.stratum}|${group.source.kind}`, { visit, group });
        add(`admitted:${visit.admitted}|${group.source.kind}`, { visit, group });
      }
    }
  }
  return (visit, kind) => {
    // A complaint seen once (or without a concept) borrows from visits with the same outcome instead.
    const useComplaint = visit.stratum !== '' && (visitsInStratum.get(visit.stratum) ?? 0) >= 2;
    const key = useComplaint ? `complaint:${visit.stratum}|${kind}` : `admitted:${visit.admitted}|${kind}`;
    return byStratum.get(key) ?? [];
  };
}

type IdKind = 'patient' | 'encounter' | 'condition' | 'observation' | 'serviceRequest' | 'medication' | 'procedure' | 'specimen' | 'hospital';
const idKinds: readonly IdKind[] = ['patient', 'encounter', 'condition', 'observation', 'serviceRequest', 'medication', 'procedure', 'specimen', 'hospital'];

/** What every line of one visit shares. */
interface VisitContext {
  readonly patient: number;
  readonly stay: number;
  readonly hospitals: readonly number[];
  readonly clinicianVariant: number;
}

/** Writes synthetic patients; one instance per run. */
class CohortWriter {
  private readonly sinks = new Map<SyntheticResourceType, NdjsonSink>();
  /** UUID-shaped ids: the seed's tag, the kind, a counter. Unique per seed and kind, cheap to write. */
  private readonly prefixes: Record<IdKind, Buffer>;
  private readonly counters: Record<IdKind, number>;
  private readonly donors: (visit: TemplateVisit, kind: ItemGroupKind) => readonly DonorGroup[];
  private readonly compiled: readonly CompiledPatient[];
  /** How often each item occurs in the visit being written; all zero between visits. */
  private readonly itemCounts: Int32Array;
  encounters = 0;
  patients = 0;

  constructor(
    templates: TemplateSet,
    private readonly random: Random,
    tag: string,
    private readonly directory: string,
    private readonly gzipLevel: number | null,
  ) {
    this.prefixes = Object.fromEntries(idKinds.map((kind, index) => [kind, fragment(`${tag}-${(index + 1).toString(16).padStart(4, '0')}-4000-8000-`)])) as Record<IdKind, Buffer>;
    this.counters = Object.fromEntries(idKinds.map((kind) => [kind, 0])) as Record<IdKind, number>;
    const items = new ItemIndex();
    this.compiled = templates.patients.map((patient) => compilePatient(patient, items));
    this.itemCounts = new Int32Array(items.size);
    this.donors = buildDonorPools(this.compiled);
  }

  /** Uncompressed bytes made so far. */
  get bytes(): number {
    let total = 0;
    for (const sink of this.sinks.values()) total += sink.bytes;
    return total;
  }

  private sink(type: SyntheticResourceType): NdjsonSink {
    let sink = this.sinks.get(type);
    if (!sink) {
      sink = new NdjsonSink(path.join(this.directory, `${type}.ndjson${this.gzipLevel === null ? '' : '.gz'}`), this.gzipLevel);
      this.sinks.set(type, sink);
    }
    return sink;
  }

  private next(kind: IdKind): number {
    this.counters[kind] += 1;
    return this.counters[kind];
  }

  /** Writes out the chunks that are full; call between patients. */
  async flushFull(): Promise<void> {
    for (const sink of this.sinks.values()) if (sink.full) await sink.flush();
  }

  async close(): Promise<SynthesizeReport['files']> {
    const files: Array<SynthesizeReport['files'][number]> = [];
    for (const [resourceType, sink] of [...this.sinks].sort(([a], [b]) => (a < b ? -1 : 1))) {
      await sink.close();
      files.push({ file: path.basename(sink.path), resourceType, resources: sink.lines, bytes: sink.bytes });
    }
    return files;
  }

  abort(): void {
    for (const sink of this.sinks.values()) sink.abort();
  }

  private subject(sink: NdjsonSink, patient: number): void {
    sink.raw(json.subject).id(this.prefixes.patient, patient).raw(json.quoteBrace);
  }

  /** Replays template patient `index` with noise; writes at most `maxVisits` ED stays. Returns the stays written. */
  writePatient(index: number, maxVisits: number): number {
    const compiled = this.compiled[index] as CompiledPatient;
    const template = compiled.source;
    const random = this.random;
    // At least a day either way, so that no synthetic date is a source date.
    const shiftMagnitude = Math.round(random.between(day, noise.timelineShiftMs) / minute) * minute;
    const shiftMs = random.chance(0.5) ? shiftMagnitude : -shiftMagnitude;
    let ageShiftMs = Math.round(random.between(-noise.ageShiftMs, noise.ageShiftMs) / day) * day;
    if (Math.abs(shiftMs + ageShiftMs) < 2 * day) ageShiftMs += shiftMs + ageShiftMs >= 0 ? 2 * day : -2 * day;
    const swapSex = template.sexSwappable && random.chance(noise.sexSwap);
    const gender = swapSex && template.gender === 'male' ? 'female' : swapSex && template.gender === 'female' ? 'male' : template.gender;
    const timeline = planTimeline(template, shiftMs, random);
    const clinicianVariant = random.below(noise.cliniciansPerTemplateClinician);

    const patient = this.next('patient');
    // Never born after the first visit, whatever the age shift.
    const birthMs = Math.min(template.birthMs + shiftMs + ageShiftMs, (timeline.starts[0] as number) - day);
    const patients = this.sink('Patient');
    patients.raw(json.patient).id(this.prefixes.patient, patient).raw(json.patientGender).text(JSON.stringify(gender));
    patients.raw(json.patientBirth).date(birthMs).raw(json.quoteBrace).endLine();
    this.patients += 1;

    // Hospital encounters: admissions from these ED stays and the patient's other hospital history.
    const encounters = this.sink('Encounter');
    const conditions = this.sink('Condition');
    const hospitals = compiled.hospitals.map((hospital, position) => {
      const source = template.hospitals[position] as TemplatePatient['hospitals'][number];
      const id = this.next('hospital');
      encounters.raw(json.encounter).id(this.prefixes.hospital, id).raw(json.hospitalIdentifier).hex12(id).raw(json.hospitalStatus).raw(hospital.head);
      this.subject(encounters, patient);
      if (source.startMs !== null) {
        encounters.raw(json.periodStart).dateTime(warpTime(template, timeline, source.startMs), zoneOffsetMinutes);
        if (source.endMs !== null) encounters.raw(json.periodEnd).dateTime(warpTime(template, timeline, source.endMs), zoneOffsetMinutes);
        encounters.raw(json.periodClose);
      } else if (source.endMs !== null) {
        encounters.raw(json.periodOnlyEnd).dateTime(warpTime(template, timeline, source.endMs), zoneOffsetMinutes).raw(json.periodClose);
      }
      encounters.raw(hospital.tail).endLine();
      for (const code of hospital.diagnoses) {
        conditions.raw(json.condition).id(this.prefixes.condition, this.next('condition')).raw(code);
        this.subject(conditions, patient);
        conditions.raw(json.encounterReference).id(this.prefixes.hospital, id).raw(json.quoteBrace).raw(json.closeBrace).endLine();
      }
      return id;
    });

    const visitCount = Math.min(maxVisits, template.visits.length);
    for (let position = 0; position < visitCount; position += 1) {
      const context: VisitContext = { patient, stay: this.next('encounter'), hospitals, clinicianVariant };
      this.writeVisit(compiled.visits[position] as CompiledVisit, position, timeline, context);
    }
    this.encounters += visitCount;
    return visitCount;
  }

  private writeVisit(compiled: CompiledVisit, index: number, timeline: Timeline, context: VisitContext): void {
    const random = this.random;
    const visit = compiled.source;
    const { patient, stay } = context;
    const prefixes = this.prefixes;
    const encounters = this.sink('Encounter');
    encounters.raw(json.encounter).id(prefixes.encounter, stay).raw(json.stayHead);
    this.subject(encounters, patient);
    if (visit.partOf >= 0) encounters.raw(json.partOf).id(prefixes.hospital, context.hospitals[visit.partOf] as number).raw(json.quoteBrace);
    encounters.raw(json.periodStart).dateTime(timeline.starts[index] as number, zoneOffsetMinutes);
    encounters.raw(json.periodEnd).dateTime(timeline.ends[index] as number, zoneOffsetMinutes).raw(json.periodClose).raw(compiled.tail).endLine();
    const at = (offsetMs: number) => timeInVisit(timeline, visit, index, offsetMs);

    const observations = this.sink('Observation');
    const spelling = random.below(3);
    for (const complaint of compiled.complaints) {
      observations.raw(json.observation).id(prefixes.observation, this.next('observation')).raw(complaint.head);
      this.subject(observations, patient);
      observations.raw(json.encounterReference).id(prefixes.encounter, stay).raw(json.quoteBrace);
      const tail = complaint.tails[spelling % complaint.tails.length] as Buffer;
      observations.raw(json.effective).dateTime(at(complaint.offsetMs), zoneOffsetMinutes).raw(tail).endLine();
    }
    for (const acuity of compiled.acuities) {
      let tail = acuity.tail;
      if (acuity.level !== null && random.chance(noise.acuityShift)) {
        const level = Math.min(5, Math.max(1, acuity.level + (random.chance(0.5) ? 1 : -1)));
        tail = json.acuityLevels[level - 1] as Buffer;
      }
      observations.raw(json.observation).id(prefixes.observation, this.next('observation')).raw(acuity.head);
      this.subject(observations, patient);
      observations.raw(json.encounterReference).id(prefixes.encounter, stay).raw(json.quoteBrace);
      observations.raw(json.effective).dateTime(at(acuity.offsetMs), zoneOffsetMinutes).raw(tail).endLine();
    }

    const conditions = this.sink('Condition');
    for (const code of compiled.diagnoses) {
      conditions.raw(json.condition).id(prefixes.condition, this.next('condition')).raw(code);
      this.subject(conditions, patient);
      conditions.raw(json.encounterReference).id(prefixes.encounter, stay).raw(json.quoteBrace).raw(json.closeBrace).endLine();
    }

    // Items: some groups are swapped for groups of the same kind from the complaint cohort. Among a few
    // candidates the one whose new items best make up for what the drop took away wins, so a visit keeps
    // about as many items (a dropped repeat draw takes nothing away; a borrowed one may add nothing).
    const counts = this.itemCounts;
    const groups = compiled.groups;
    for (const group of groups) for (const item of group.items) counts[item] = (counts[item] as number) + 1;
    // undefined: the group is kept; otherwise what replaces it (up to two groups when one cannot make up for it).
    const replacements: Array<DonorGroup[] | undefined> = groups.map(() => undefined);
    groups.forEach((group, position) => {
      if (!random.chance(noise.itemSwap)) return;
      replacements[position] = [];
      for (const item of group.items) counts[item] = (counts[item] as number) - 1;
    });
    const newItems = (group: CompiledGroup) => group.items.reduce((sum, item) => sum + (counts[item] === 0 ? 1 : 0), 0);
    groups.forEach((group, position) => {
      const donors = replacements[position];
      if (!donors) return;
      let lost = newItems(group);
      for (let round = 0; round < 2 && (round === 0 || lost > 0); round += 1) {
        const donor = this.pickDonor(visit, group.source.kind, lost);
        if (!donor) break;
        lost -= newItems(donor.group);
        donors.push(donor);
        for (const item of donor.group.items) counts[item] = (counts[item] as number) + 1;
      }
    });
    for (const group of groups) for (const item of group.items) counts[item] = 0;
    for (const donors of replacements) for (const donor of donors ?? []) for (const item of donor.group.items) counts[item] = 0;

    const length = visit.endMs - visit.startMs;
    groups.forEach((group, position) => {
      const donors = replacements[position];
      if (donors === undefined) {
        this.writeGroup(group, at(group.source.offsetMs), group.source.link, context);
        return;
      }
      for (const donor of donors) {
        // Borrowed items keep their place in the donor's stay, scaled to this one; they point at this stay.
        const donorLength = donor.visit.endMs - donor.visit.startMs;
        const offset = donor.group.source.offsetMs;
        const time = at(offset <= 0 ? offset : donorLength > 0 ? Math.min(1, offset / donorLength) * length : 0);
        this.writeGroup(donor.group, time, donor.group.source.kind === 'lab' ? { to: 'none' } : { to: 'stay' }, context);
      }
    });
  }

  /** Of `noise.donorCandidates` groups drawn from the complaint cohort (other visits first), the one adding closest to `lost` new items. */
  private pickDonor(visit: TemplateVisit, kind: ItemGroupKind, lost: number): DonorGroup | null {
    const pool = this.donors(visit, kind);
    if (pool.length === 0) return null;
    const counts = this.itemCounts;
    let best: DonorGroup | null = null;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let candidate = 0; candidate < noise.donorCandidates; candidate += 1) {
      let donor = pool[this.random.below(pool.length)] as DonorGroup;
      if (donor.visit === visit) donor = pool[this.random.below(pool.length)] as DonorGroup;
      const gained = donor.group.items.reduce((sum, item) => sum + (counts[item] === 0 ? 1 : 0), 0);
      const score = Math.abs(gained - lost) + (donor.visit === visit ? 0.5 : 0);
      if (score < bestScore) {
        best = donor;
        bestScore = score;
      }
    }
    return best;
  }

  private reference(sink: NdjsonSink, link: EncounterLink, field: Buffer, context: VisitContext): void {
    switch (link.to) {
      case 'none':
        return;
      case 'stay':
        sink.raw(field).id(this.prefixes.encounter, context.stay).raw(json.quoteBrace);
        return;
      case 'hospital':
        sink.raw(field).id(this.prefixes.hospital, context.hospitals[link.hospital] as number).raw(json.quoteBrace);
        return;
    }
  }

  private clinician(sink: NdjsonSink, field: Buffer, close: Buffer, template: number, context: VisitContext): void {
    if (template < 0) return;
    sink.raw(field).raw(json.clinician).text(`${template}.${context.clinicianVariant}`).raw(json.quoteBrace).raw(json.closeBrace).raw(close);
  }

  private writeGroup(group: CompiledGroup, time: number, link: EncounterLink, context: VisitContext): void {
    const prefixes = this.prefixes;
    if ('analytes' in group) {
      const observations = this.sink('Observation');
      const specimen = this.next('specimen');
      for (const analyte of group.analytes) {
        observations.raw(json.observation).id(prefixes.observation, this.next('observation')).raw(analyte.head);
        this.subject(observations, context.patient);
        this.reference(observations, link, json.encounterReference, context);
        observations.raw(json.effective).dateTime(time + analyte.deltaMs, zoneOffsetMinutes).raw(json.specimen).hex12(specimen).raw(analyte.tail).endLine();
      }
      return;
    }
    const source = group.source;
    switch (source.kind) {
      case 'order': {
        const requests = this.sink('ServiceRequest');
        requests.raw(json.serviceRequest).id(prefixes.serviceRequest, this.next('serviceRequest')).raw(group.head);
        this.subject(requests, context.patient);
        this.reference(requests, link, json.encounterReference, context);
        requests.raw(json.authoredOn).dateTime(time, zoneOffsetMinutes).raw(json.closeQuote);
        this.clinician(requests, json.requester, json.nothing, source.requester, context);
        requests.raw(group.tail).endLine();
        return;
      }
      case 'medication': {
        const fields = medicationFields[source.resourceType];
        const medications = this.sink(source.resourceType);
        medications.raw(fields.head).id(prefixes.medication, this.next('medication')).raw(group.head);
        this.reference(medications, link, fields.reference, context);
        this.subject(medications, context.patient);
        medications.raw(fields.time).dateTime(time, zoneOffsetMinutes).raw(json.closeQuote);
        this.clinician(medications, fields.who, fields.who === json.performer ? json.closeActor : json.nothing, source.requester, context);
        medications.raw(group.tail).endLine();
        return;
      }
      case 'procedure': {
        const procedures = this.sink('Procedure');
        procedures.raw(json.procedure).id(prefixes.procedure, this.next('procedure')).raw(group.head);
        this.subject(procedures, context.patient);
        this.reference(procedures, link, json.encounterReference, context);
        procedures.raw(json.performed).dateTime(time, zoneOffsetMinutes).raw(json.closeQuote);
        this.clinician(procedures, json.performer, json.closeActor, source.performer, context);
        procedures.raw(group.tail).endLine();
        return;
      }
    }
  }
}

const ndjsonName = /\.(?:ndjson|jsonl)(?:\.gz)?(?:\.part)?$/i;

async function prepareDirectory(directory: string, overwrite: boolean): Promise<void> {
  await mkdir(directory, { recursive: true });
  const earlier = (await readdir(directory)).filter((name) => ndjsonName.test(name) || name === 'synthesis.json');
  if (earlier.length === 0) return;
  if (!overwrite) {
    throw new OutputNotEmptyError(`${directory} already holds NDJSON files (${earlier.slice(0, 3).join(', ')}${earlier.length > 3 ? ', …' : ''}); choose an empty folder or pass --overwrite`);
  }
  for (const name of earlier) await rm(path.join(directory, name), { force: true });
}

/** Writes a synthetic cohort of exactly `encounters` ED stays; see the module comment for the design. */
export async function synthesizeCohort(options: SynthesizeOptions): Promise<SynthesizeReport> {
  const started = Date.now();
  const { templates, encounters: asked, seed } = options;
  if (!Number.isSafeInteger(asked) || asked < 1) throw new RangeError('encounters must be a whole number ≥ 1');
  if (templates.patients.length === 0) throw new Error('no template patients');
  const gzipLevel = options.gzipLevel ?? null;
  await prepareDirectory(options.outDirectory, options.overwrite ?? false);

  const random = createRandom(seed, 'synthesize');
  const writer = new CohortWriter(templates, random, seedTag(seed), options.outDirectory, gzipLevel);
  const order = templates.patients.map((_patient, index) => index);
  let position = order.length;
  const interval = options.progressIntervalMs ?? 1000;
  let lastProgress = started;
  const progress = () =>
    options.onProgress?.({ encounters: writer.encounters, encountersAsked: asked, patients: writer.patients, bytes: writer.bytes, elapsedMs: Date.now() - started });

  let files: SynthesizeReport['files'];
  try {
    while (writer.encounters < asked) {
      // Rounds: each a new permutation of all template patients, so frequencies stay those of the source.
      if (position === order.length) {
        shuffleInPlace(order, random);
        position = 0;
      }
      writer.writePatient(order[position] as number, asked - writer.encounters);
      position += 1;
      await writer.flushFull();
      if ((writer.patients & 63) === 0 && Date.now() - lastProgress >= interval) {
        lastProgress = Date.now();
        progress();
      }
    }
    files = await writer.close();
  } catch (error) {
    writer.abort();
    throw error;
  }
  progress();

  const report: SynthesizeReport = {
    encounters: writer.encounters,
    patients: writer.patients,
    files,
    resources: files.reduce((sum, file) => sum + file.resources, 0),
    bytes: files.reduce((sum, file) => sum + file.bytes, 0),
    durationMs: Date.now() - started,
  };
  const description = {
    generator: 'cohort-cds synthesize',
    purpose: 'Synthetic data for scale and load tests only. Every visit is a real demo visit replayed with noise: never a source of quality claims.',
    licence:
      'Derived from the MIMIC-IV Clinical Database Demo (on FHIR), Open Database License 1.0: attribution required; a database made from these files and published must stay under the ODbL.',
    seed,
    encounters: report.encounters,
    patients: report.patients,
    source: { label: options.sourceLabel ?? 'templates', patients: templates.patients.length, visits: templates.visits },
    noise,
    files: files.map(({ file, resourceType, resources }) => ({ file, type: resourceType, count: resources })),
  };
  await writeFile(path.join(options.outDirectory, 'synthesis.json'), `${JSON.stringify(description, null, 2)}\n`);
  return report;
}
