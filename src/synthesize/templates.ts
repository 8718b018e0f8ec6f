/**
 * Real patients as templates for the synthesizer: each patient of a small source cohort (the bundled
 * MIMIC-IV-ED demo) with the ED stays, hospital encounters, diagnoses, triage, labs, orders and medications
 * that the ingest would read, every time kept relative to the ED stay it belongs to.
 *
 * Resources are assigned to ED stays by the ingest's own rules (src/ingest/fhir-to-cohort.ts): by their
 * encounter reference, through the hospital admission an ED stay is part of, else by time (labs up to
 * `labLeadMinutes` before arrival). What the ingest would skip is left out of the templates.
 *
 * The whole source is held in memory: it is meant to be a demo-sized cohort (hundreds of visits).
 */
import type {
  CodeableConcept,
  Coding,
  Condition,
  Encounter,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  Observation,
  Patient,
  Procedure,
  Reference,
  ServiceRequest,
} from '@medplum/fhirtypes';
import { conceptsForComplaint, defaultComplaintConcepts, normalizeComplaintPhrase, primaryConcept, splitComplaint, type ComplaintVocabulary } from '../cohort/complaint.js';
import { readNdjson, type FhirResource } from '../ingest/ndjson-reader.js';
import { patientIdOfResource } from '../ingest/batch-work.js';
import {
  asArray,
  codings,
  conceptText,
  hasCoding,
  isEnteredInError,
  isLaboratory,
  observationTime,
  parseFhirTime as parseTime,
  referencedId,
  referenceKey,
} from '../fhir/resource-readers.js';

const minute = 60_000;
const loinc = 'http://loinc.org';
const chiefComplaintLoinc = '8661-1';
const acuityLoinc = '56839-4';
/** The ingest's default lab lead window (CohortConversionContext.labLeadMinutes). */
export const defaultLabLeadMinutes = 60;

/** Where a resource's encounter reference points in the synthetic output. */
export type EncounterLink = { readonly to: 'none' } | { readonly to: 'stay' } | { readonly to: 'hospital'; readonly hospital: number };

/** One lab result of a draw: its code and value as JSON fragments, ready to be written. */
export interface TemplateAnalyte {
  /** Milliseconds after the draw's first result. */
  readonly deltaMs: number;
  readonly status: string;
  /** `{"coding":[…],"text":…}` */
  readonly codeJson: string;
  /** `,"valueQuantity":{…}`, `,"valueString":"…"` or empty. */
  readonly valueJson: string;
}

/** What an ED stay did, in units that are dropped or added whole: one specimen draw, one order, one medication. */
export type TemplateItemGroup =
  | { readonly kind: 'lab'; readonly offsetMs: number; readonly link: EncounterLink; readonly analytes: readonly TemplateAnalyte[] }
  | {
      readonly kind: 'order';
      readonly offsetMs: number;
      readonly link: EncounterLink;
      readonly status: string;
      readonly intent: string;
      /** `,"category":[…]` or empty. */
      readonly categoryJson: string;
      readonly codeJson: string;
      /** Index into the template set's providers, or -1. */
      readonly requester: number;
    }
  | {
      readonly kind: 'medication';
      readonly resourceType: 'MedicationDispense' | 'MedicationAdministration' | 'MedicationRequest';
      readonly offsetMs: number;
      readonly link: EncounterLink;
      readonly status: string;
      /** `{"coding":[…],"text":…}` of medicationCodeableConcept. */
      readonly medicationJson: string;
      readonly intent: string | null;
      readonly requester: number;
    }
  | {
      readonly kind: 'procedure';
      readonly offsetMs: number;
      readonly link: EncounterLink;
      readonly status: string;
      readonly codeJson: string;
      readonly performer: number;
    };

export type ItemGroupKind = TemplateItemGroup['kind'];

export interface TemplateVisit {
  readonly startMs: number;
  readonly endMs: number;
  /** `{"admitSource":…,"dischargeDisposition":…}` or null. */
  readonly hospitalizationJson: string | null;
  /** `[{"text":…}]` of Encounter.reasonCode (rewritten like the complaints), or null. */
  readonly reasonCodeJson: string | null;
  /** Index of the hospital encounter this stay is `partOf`, or -1. */
  readonly partOf: number;
  /**
   * The chief complaint said again in words of the seed vocabulary (a few spellings to pick from), never
   * the source's free text; see ComplaintRewriter.
   */
  readonly complaints: ReadonlyArray<{ readonly offsetMs: number; readonly variants: readonly string[]; readonly status: string }>;
  readonly acuities: ReadonlyArray<{ readonly offsetMs: number; readonly valueJson: string; readonly status: string }>;
  /** Condition.code of each diagnosis, as JSON. */
  readonly diagnoses: readonly string[];
  readonly groups: readonly TemplateItemGroup[];
  /** The primary complaint concept ('' when the complaint maps to none): the stratum items are borrowed from. */
  readonly stratum: string;
  readonly admitted: boolean;
}

export interface TemplateHospitalEncounter {
  readonly startMs: number | null;
  readonly endMs: number | null;
  readonly status: string;
  /** Encounter.class as JSON. */
  readonly classJson: string;
  readonly hospitalizationJson: string | null;
  readonly diagnoses: readonly string[];
}

export interface TemplatePatient {
  readonly gender: string;
  /** Midnight UTC of the birth date. */
  readonly birthMs: number;
  readonly visits: readonly TemplateVisit[];
  readonly hospitals: readonly TemplateHospitalEncounter[];
  /** False when a diagnosis or complaint is specific to the recorded sex (pregnancy, prostate, …). */
  readonly sexSwappable: boolean;
}

export interface TemplateSet {
  readonly patients: readonly TemplatePatient[];
  /** How many clinicians (requesters, performers) the source names; synthetic ones are derived from these. */
  readonly providers: number;
  readonly visits: number;
  /** Resources of the source that no template uses (home medications, vitals, results outside ED stays, …). */
  readonly unused: number;
}

// ---------------------------------------------------------------------------------------------------------

function isEmergencyClass(encounter: Encounter): boolean {
  const raw = (encounter as { class?: unknown }).class;
  return asArray(raw as unknown[] | unknown).some((entry) => {
    if (typeof entry !== 'object' || entry === null) return false;
    const value = entry as Coding & CodeableConcept;
    const codes = [value.code, value.display, ...codings(value).map((coding) => coding.code)];
    return codes.some((code) => typeof code === 'string' && /^(?:emer|emergency)$/i.test(code));
  });
}

function isHospitalIdentifier(encounter: Encounter): boolean {
  return asArray(encounter.identifier).some((identifier) => typeof identifier?.system === 'string' && identifier.system.endsWith('/encounter-hosp'));
}

// Sex-specific diagnoses: pregnancy and childbirth, and the genital organs and their cancers (ICD-10-CM
// chapters O, N40–N53 / N70–N98, C51–C63, Z33–Z39; ICD-9-CM 600–608, 614–679, 179–187, V22–V28).
const sexSpecificIcd10 = /^(?:O|N4\d|N5[0-3]|N[7-9]\d|C5[1-8]|C6[0-3]|D2[5-8]|D39|D40|Z3[3-9]|R86|R87)/;
const sexSpecificIcd9 = /^(?:60[0-8]|6[1-7]\d|179|18[0-7]|V2[2-8])/;
const sexSpecificComplaint = /pregnan|vagin|uter|ovar|testic|scrot|penil|penis|prostat|breast|menstru|miscarr|labor\b|post ?partum|gyn/i;

function isSexSpecificDiagnosis(codeJson: string): boolean {
  const code = JSON.parse(codeJson) as CodeableConcept;
  return codings(code).some((coding) => {
    const value = (coding.code ?? '').replace(/\./g, '').toUpperCase();
    if (/icd-?10|icd10/i.test(coding.system ?? '')) return sexSpecificIcd10.test(value);
    if (/icd-?9|icd9/i.test(coding.system ?? '')) return sexSpecificIcd9.test(value);
    return false;
  });
}

/** Normalized phrase → concept from the seed vocabulary, as a new database starts with it. */
export function seedComplaintVocabulary(): ComplaintVocabulary {
  const vocabulary = new Map<string, string>();
  for (const [concept, [, ...phrases]] of Object.entries(defaultComplaintConcepts)) {
    for (const phrase of phrases) {
      const normalized = normalizeComplaintPhrase(phrase);
      if (normalized && !vocabulary.has(normalized)) vocabulary.set(normalized, concept);
    }
  }
  return vocabulary;
}

/**
 * Chief complaints without the source's free text. Each part of a complaint ("R Wrist pain, s/p Fall") that
 * the vocabulary maps is written as a phrase of the seed vocabulary for the same concept ("wrist pain, fall"),
 * in a few spellings (as given, an alternative phrase, upper case) so that synonym matching is exercised; a
 * part that maps to nothing becomes "unlisted complaint N", N numbering the distinct unmapped phrases of the
 * source. So the concepts, their order (the primary concept) and how often each unmapped phrase recurs stay
 * the source's, and no triage note is copied.
 */
export class ComplaintRewriter {
  private readonly unlisted = new Map<string, number>();
  private readonly phrases = new Map<string, string[]>();

  constructor(private readonly vocabulary: ComplaintVocabulary) {
    for (const [concept, [, ...phrases]] of Object.entries(defaultComplaintConcepts)) {
      // Only phrases that map back to this concept (a phrase listed under two concepts goes to the first).
      const own = phrases.filter((phrase) => vocabulary.get(normalizeComplaintPhrase(phrase)) === concept);
      if (own.length > 0) this.phrases.set(concept, own);
    }
  }

  /** Spellings of `text` in synthetic words, the first the plainest; empty when nothing is left. */
  variants(text: string): string[] {
    const parts = splitComplaint(text).map((part) => {
      const concept = conceptsForComplaint(part, this.vocabulary).concepts[0];
      const phrases = concept === undefined ? undefined : this.phrases.get(concept);
      if (phrases) return phrases;
      let number = this.unlisted.get(part);
      if (number === undefined) {
        number = this.unlisted.size + 1;
        this.unlisted.set(part, number);
      }
      return [`unlisted complaint ${number}`];
    });
    if (parts.length === 0) return [];
    const spellings = [
      parts.map((phrases) => phrases[0] as string).join(', '),
      parts.map((phrases) => phrases[1 % phrases.length] as string).join(', '),
      parts.map((phrases) => (phrases[0] as string).toUpperCase()).join(', '),
    ];
    return [...new Set(spellings)];
  }
}

/** Keeps the JSON of a value[x] (and nothing else of the observation) for the synthetic copy. */
function valueJsonOf(observation: Observation): string {
  for (const field of ['valueQuantity', 'valueString', 'valueCodeableConcept', 'valueInteger', 'valueBoolean'] as const) {
    let value: unknown = observation[field];
    // The source has quantities with a blank unit, which R4 forbids (a string needs non-whitespace content).
    if (field === 'valueQuantity' && typeof value === 'object' && value !== null) {
      value = Object.fromEntries(Object.entries(value).filter(([, part]) => !(typeof part === 'string' && part.trim() === '')));
    }
    if (value !== undefined && value !== null) return `,"${field}":${JSON.stringify(value)}`;
  }
  return '';
}

/** admitSource and dischargeDisposition only: other fields (preAdmissionIdentifier, …) may identify. */
function hospitalizationJsonOf(hospitalization: Encounter['hospitalization']): string | null {
  if (!hospitalization) return null;
  const kept: Record<string, CodeableConcept> = {};
  if (hospitalization.admitSource) kept.admitSource = hospitalization.admitSource;
  if (hospitalization.dischargeDisposition) kept.dischargeDisposition = hospitalization.dischargeDisposition;
  return Object.keys(kept).length > 0 ? JSON.stringify(kept) : null;
}

interface Stay {
  readonly encounter: Encounter;
  readonly id: string;
  readonly start: number;
  readonly end: number;
  readonly partOf: string | null;
}

interface SourcePatient {
  patient: Patient | undefined;
  encounters: Encounter[];
  conditions: Condition[];
  observations: Observation[];
  serviceRequests: ServiceRequest[];
  medications: Array<MedicationDispense | MedicationAdministration | MedicationRequest>;
  procedures: Procedure[];
}

function emptySource(): SourcePatient {
  return { patient: undefined, encounters: [], conditions: [], observations: [], serviceRequests: [], medications: [], procedures: [] };
}

/** Groups the resources the templates use by patient; returns how many were of no use. */
export function groupByPatient(resources: Iterable<FhirResource>): { byPatient: Map<string, SourcePatient>; unused: number } {
  const byPatient = new Map<string, SourcePatient>();
  let unused = 0;
  const of = (id: string) => {
    let entry = byPatient.get(id);
    if (!entry) {
      entry = emptySource();
      byPatient.set(id, entry);
    }
    return entry;
  };
  for (const resource of resources) {
    if (resource.resourceType === 'Patient') {
      const patient = resource as unknown as Patient;
      if (typeof patient.id === 'string') of(patient.id).patient = patient;
      else unused += 1;
      continue;
    }
    const patientId = patientIdOfResource(resource);
    if (patientId === null) {
      unused += 1;
      continue;
    }
    switch (resource.resourceType) {
      case 'Encounter':
        of(patientId).encounters.push(resource as unknown as Encounter);
        break;
      case 'Condition':
        of(patientId).conditions.push(resource as unknown as Condition);
        break;
      case 'Observation':
        of(patientId).observations.push(resource as unknown as Observation);
        break;
      case 'ServiceRequest':
        of(patientId).serviceRequests.push(resource as unknown as ServiceRequest);
        break;
      case 'MedicationDispense':
      case 'MedicationAdministration':
      case 'MedicationRequest':
        of(patientId).medications.push(resource as unknown as MedicationDispense | MedicationAdministration | MedicationRequest);
        break;
      case 'Procedure':
        of(patientId).procedures.push(resource as unknown as Procedure);
        break;
      default:
        unused += 1;
    }
  }
  return { byPatient, unused };
}

class ProviderIndex {
  private readonly indexes = new Map<string, number>();
  get size(): number {
    return this.indexes.size;
  }
  of(reference: Reference | undefined): number {
    const key = referenceKey(reference);
    if (key === null) return -1;
    let index = this.indexes.get(key);
    if (index === undefined) {
      index = this.indexes.size;
      this.indexes.set(key, index);
    }
    return index;
  }
}

interface Counter {
  unused: number;
}

function buildPatient(
  source: SourcePatient,
  vocabulary: ComplaintVocabulary,
  rewriter: ComplaintRewriter,
  providers: ProviderIndex,
  labLead: number,
  counter: Counter,
): TemplatePatient | null {
  const patient = source.patient;
  const birth = typeof patient?.birthDate === 'string' ? Date.parse(`${patient.birthDate.slice(0, 10)}T00:00:00Z`) : NaN;
  if (!patient || !patient.gender || Number.isNaN(birth)) return null;

  const encountersById = new Map<string, Encounter>();
  for (const encounter of source.encounters) if (typeof encounter.id === 'string') encountersById.set(encounter.id, encounter);
  const partOfTargets = new Set<string>();
  for (const encounter of source.encounters) {
    const parent = referencedId(encounter.partOf, 'Encounter');
    if (parent) partOfTargets.add(parent);
  }

  const stays: Stay[] = [];
  const hospitalEncounters: Encounter[] = [];
  for (const encounter of source.encounters) {
    if (typeof encounter.id !== 'string' || isEnteredInError(encounter)) continue;
    const isStay = isEmergencyClass(encounter) && !partOfTargets.has(encounter.id) && !isHospitalIdentifier(encounter);
    if (!isStay) {
      hospitalEncounters.push(encounter);
      continue;
    }
    const start = parseTime(encounter.period?.start);
    const end = parseTime(encounter.period?.end) ?? start;
    // A stay the ingest could not date is of no use as a template.
    if (start === null || end === null || end < start) continue;
    stays.push({ encounter, id: encounter.id, start, end, partOf: referencedId(encounter.partOf, 'Encounter') });
  }
  if (stays.length === 0) return null;
  stays.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
  hospitalEncounters.sort((a, b) => (parseTime(a.period?.start) ?? 0) - (parseTime(b.period?.start) ?? 0) || ((a.id ?? '') < (b.id ?? '') ? -1 : 1));
  const stayIndex = new Map(stays.map((stay, index) => [stay.id, index]));
  const hospitalIndex = new Map(hospitalEncounters.map((encounter, index) => [encounter.id as string, index]));

  const stayAt = (candidates: readonly number[], time: number, lead: number): number => {
    let leading = -1;
    for (const index of candidates) {
      const stay = stays[index] as Stay;
      if (time >= stay.start && time <= stay.end) return index;
      if (leading === -1 && time < stay.start && time >= stay.start - lead) leading = index;
    }
    return leading;
  };
  const allStays = stays.map((_stay, index) => index);
  /** The stay a resource belongs to (as the ingest decides) and how its encounter reference is to be written. */
  const resolve = (reference: Reference | undefined, time: number | null, lead: number): { stay: number; link: EncounterLink } | null => {
    const referenced = referencedId(reference, 'Encounter');
    if (referenced !== null) {
      const direct = stayIndex.get(referenced);
      if (direct !== undefined) return { stay: direct, link: { to: 'stay' } };
      if (partOfTargets.has(referenced)) {
        if (time === null) return null;
        const stay = stayAt(allStays.filter((index) => stays[index]?.partOf === referenced), time, lead);
        const hospital = hospitalIndex.get(referenced);
        return stay === -1 || hospital === undefined ? null : { stay, link: { to: 'hospital', hospital } };
      }
      if (encountersById.has(referenced)) return null;
    }
    if (time === null) return null;
    const stay = stayAt(allStays, time, lead);
    return stay === -1 ? null : { stay, link: { to: 'none' } };
  };

  const visits = stays.map((stay) => ({
    complaints: [] as Array<{ offsetMs: number; text: string; status: string }>,
    acuities: [] as Array<{ offsetMs: number; valueJson: string; status: string }>,
    diagnoses: [] as string[],
    groups: [] as TemplateItemGroup[],
    draws: new Map<string, { offsetMs: number; link: EncounterLink; results: Array<{ time: number; analyte: Omit<TemplateAnalyte, 'deltaMs'> }> }>(),
    stay,
  }));
  const hospitals = hospitalEncounters.map((encounter) => ({ encounter, diagnoses: [] as string[] }));

  for (const observation of source.observations) {
    if (isEnteredInError(observation) || observation.status === 'cancelled') {
      counter.unused += 1;
      continue;
    }
    const time = observationTime(observation);
    const status = observation.status ?? 'final';
    if (hasCoding(observation.code, loinc, chiefComplaintLoinc) || hasCoding(observation.code, loinc, acuityLoinc)) {
      const index = stayIndex.get(referencedId(observation.encounter, 'Encounter') ?? '');
      const visit = index === undefined ? undefined : visits[index];
      if (!visit) {
        counter.unused += 1;
        continue;
      }
      const offsetMs = (time ?? visit.stay.start) - visit.stay.start;
      if (hasCoding(observation.code, loinc, chiefComplaintLoinc)) {
        const text = observation.valueString ?? conceptText(observation.valueCodeableConcept);
        if (typeof text === 'string' && text.trim()) visit.complaints.push({ offsetMs, text, status });
        else counter.unused += 1;
      } else {
        visit.acuities.push({ offsetMs, valueJson: valueJsonOf(observation), status });
      }
      continue;
    }
    const coding = codings(observation.code).find((candidate) => typeof candidate.code === 'string' && candidate.code.trim());
    if (!isLaboratory(observation) || !coding) {
      counter.unused += 1;
      continue;
    }
    const resolved = resolve(observation.encounter, time, labLead);
    const visit = resolved ? visits[resolved.stay] : undefined;
    if (!resolved || !visit || time === null) {
      counter.unused += 1;
      continue;
    }
    // Results without a specimen are one draw per minute, as the ingest groups them.
    const specimen = referenceKey(observation.specimen) ?? `time:${Math.floor(time / minute)}`;
    const drawKey = `${specimen}\u0000${JSON.stringify(resolved.link)}`;
    let draw = visit.draws.get(drawKey);
    if (!draw) {
      draw = { offsetMs: time - visit.stay.start, link: resolved.link, results: [] };
      visit.draws.set(drawKey, draw);
    }
    draw.results.push({
      time,
      analyte: { status: observation.status ?? 'final', codeJson: JSON.stringify(observation.code), valueJson: valueJsonOf(observation) },
    });
  }

  for (const request of source.serviceRequests) {
    if (isEnteredInError(request) || request.status === 'revoked' || request.intent === 'proposal' || request.intent === 'plan' || !conceptText(request.code)) {
      counter.unused += 1;
      continue;
    }
    const time = parseTime(request.authoredOn) ?? parseTime(request.occurrenceDateTime) ?? parseTime(request.occurrencePeriod?.start);
    const resolved = resolve(request.encounter, time, 0);
    const visit = resolved ? visits[resolved.stay] : undefined;
    if (!resolved || !visit || time === null) {
      counter.unused += 1;
      continue;
    }
    const category = asArray(request.category);
    visit.groups.push({
      kind: 'order',
      offsetMs: time - visit.stay.start,
      link: resolved.link,
      status: request.status ?? 'completed',
      intent: request.intent ?? 'order',
      categoryJson: category.length > 0 ? `,"category":${JSON.stringify(category)}` : '',
      codeJson: JSON.stringify(request.code),
      requester: providers.of(request.requester),
    });
  }

  for (const medication of source.medications) {
    const concept = medication.medicationCodeableConcept;
    if (isEnteredInError(medication) || ['cancelled', 'declined', 'not-done', 'draft'].includes(medication.status ?? '') || !conceptText(concept)) {
      // Medications named only through a Medication resource are not replayed (the demo names them inline).
      counter.unused += 1;
      continue;
    }
    let reference: Reference | undefined;
    let time: number | null;
    let requester = -1;
    let intent: string | null = null;
    switch (medication.resourceType) {
      case 'MedicationDispense':
        reference = medication.context;
        time = parseTime(medication.whenHandedOver) ?? parseTime(medication.whenPrepared);
        requester = providers.of(asArray(medication.performer)[0]?.actor);
        break;
      case 'MedicationAdministration':
        reference = medication.context ?? (medication as { encounter?: Reference }).encounter;
        time = parseTime(medication.effectiveDateTime) ?? parseTime(medication.effectivePeriod?.start);
        requester = providers.of(asArray(medication.performer)[0]?.actor);
        break;
      case 'MedicationRequest':
        reference = medication.encounter;
        time = parseTime(medication.authoredOn);
        requester = providers.of(medication.requester);
        intent = medication.intent ?? 'order';
        break;
    }
    const resolved = resolve(reference, time, 0);
    const visit = resolved ? visits[resolved.stay] : undefined;
    if (!resolved || !visit || time === null) {
      counter.unused += 1;
      continue;
    }
    visit.groups.push({
      kind: 'medication',
      resourceType: medication.resourceType,
      offsetMs: time - visit.stay.start,
      link: resolved.link,
      status: medication.status ?? 'completed',
      medicationJson: JSON.stringify(concept),
      intent,
      requester,
    });
  }

  for (const procedure of source.procedures) {
    const time = parseTime(procedure.performedDateTime) ?? parseTime(procedure.performedPeriod?.start);
    const resolved = isEnteredInError(procedure) || procedure.status === 'not-done' || !procedure.encounter || !conceptText(procedure.code) ? null : resolve(procedure.encounter, time, 0);
    const visit = resolved ? visits[resolved.stay] : undefined;
    if (!resolved || !visit || time === null) {
      counter.unused += 1;
      continue;
    }
    visit.groups.push({
      kind: 'procedure',
      offsetMs: time - visit.stay.start,
      link: resolved.link,
      status: procedure.status ?? 'completed',
      codeJson: JSON.stringify(procedure.code),
      performer: providers.of(asArray(procedure.performer)[0]?.actor),
    });
  }

  for (const condition of source.conditions) {
    const encounterId = referencedId(condition.encounter, 'Encounter');
    const entered = isEnteredInError(condition as { status?: string }) || condition.verificationStatus?.coding?.[0]?.code === 'entered-in-error';
    const stay = encounterId === null ? undefined : stayIndex.get(encounterId);
    const hospital = encounterId === null ? undefined : hospitalIndex.get(encounterId);
    // Diagnoses dated only by recordedDate/onset (no encounter) are not replayed; the demo has none.
    if (entered || !condition.code || (stay === undefined && hospital === undefined)) {
      counter.unused += 1;
      continue;
    }
    const codeJson = JSON.stringify(condition.code);
    if (stay !== undefined) visits[stay]?.diagnoses.push(codeJson);
    else if (hospital !== undefined) hospitals[hospital]?.diagnoses.push(codeJson);
  }

  let sexSwappable = true;
  const templateVisits: TemplateVisit[] = visits.map(({ stay, complaints, acuities, diagnoses, groups, draws }) => {
    for (const draw of draws.values()) {
      const results = draw.results.sort((a, b) => a.time - b.time);
      const first = results[0]?.time ?? 0;
      groups.push({
        kind: 'lab',
        offsetMs: draw.offsetMs < first - stay.start ? draw.offsetMs : first - stay.start,
        link: draw.link,
        analytes: results.map(({ time, analyte }) => ({ ...analyte, deltaMs: time - first })),
      });
    }
    groups.sort((a, b) => a.offsetMs - b.offsetMs);
    complaints.sort((a, b) => a.offsetMs - b.offsetMs);
    acuities.sort((a, b) => a.offsetMs - b.offsetMs);
    const reasonText = asArray(stay.encounter.reasonCode)
      .map((reason) => conceptText(reason) ?? '')
      .filter((text) => text.length > 0)
      .join(', ');
    const complaintText = complaints.length > 0 ? complaints.map((entry) => entry.text.trim()).join(', ') : reasonText;
    if (sexSpecificComplaint.test(complaintText) || diagnoses.some(isSexSpecificDiagnosis)) sexSwappable = false;
    const hospitalization = stay.encounter.hospitalization;
    const disposition = codings(hospitalization?.dischargeDisposition).find((coding) => coding.code)?.code ?? hospitalization?.dischargeDisposition?.text ?? null;
    // reasonCode is the complaint only when no triage observation gives one (as the ingest reads it).
    const reasonVariants = complaints.length === 0 && reasonText ? rewriter.variants(reasonText) : [];
    return {
      startMs: stay.start,
      endMs: stay.end,
      hospitalizationJson: hospitalizationJsonOf(hospitalization),
      reasonCodeJson: reasonVariants.length > 0 ? JSON.stringify([{ text: reasonVariants[0] }]) : null,
      partOf: stay.partOf === null ? -1 : (hospitalIndex.get(stay.partOf) ?? -1),
      complaints: complaints
        .map(({ offsetMs, text, status }) => ({ offsetMs, status, variants: rewriter.variants(text) }))
        .filter((complaint) => complaint.variants.length > 0),
      acuities,
      diagnoses,
      groups,
      stratum: primaryConcept(conceptsForComplaint(complaintText, vocabulary).concepts) ?? '',
      admitted: disposition !== null ? /^(?:admitted|admit|admission|inpatient)$/i.test(disposition.trim()) : stay.partOf !== null,
    };
  });
  const templateHospitals: TemplateHospitalEncounter[] = hospitals.map(({ encounter, diagnoses }) => {
    if (diagnoses.some(isSexSpecificDiagnosis)) sexSwappable = false;
    return {
      startMs: parseTime(encounter.period?.start),
      endMs: parseTime(encounter.period?.end),
      status: encounter.status ?? 'finished',
      classJson: JSON.stringify(encounter.class ?? { code: 'IMP' }),
      hospitalizationJson: hospitalizationJsonOf(encounter.hospitalization),
      diagnoses,
    };
  });
  return { gender: patient.gender, birthMs: birth, visits: templateVisits, hospitals: templateHospitals, sexSwappable };
}

/** Templates from already parsed resources (tests use this with small hand-made cohorts). */
export function buildTemplates(resources: Iterable<FhirResource>, options: { readonly labLeadMinutes?: number } = {}): TemplateSet {
  const { byPatient, unused } = groupByPatient(resources);
  const counter: Counter = { unused };
  const vocabulary = seedComplaintVocabulary();
  const rewriter = new ComplaintRewriter(vocabulary);
  const providers = new ProviderIndex();
  const labLead = (options.labLeadMinutes ?? defaultLabLeadMinutes) * minute;
  const patients: TemplatePatient[] = [];
  // Sorted by patient id, so the same source gives the same templates whatever the file order.
  for (const patientId of [...byPatient.keys()].sort()) {
    const source = byPatient.get(patientId) as SourcePatient;
    const template = buildPatient(source, vocabulary, rewriter, providers, labLead, counter);
    if (template) patients.push(template);
    else counter.unused += source.encounters.length + source.conditions.length + source.observations.length + (source.patient ? 1 : 0);
  }
  return {
    patients,
    providers: providers.size,
    visits: patients.reduce((sum, patient) => sum + patient.visits.length, 0),
    unused: counter.unused,
  };
}

/** Reads the source cohort (files or Bulk Data folders of NDJSON, plain or gzip) and builds the templates. */
export async function loadTemplates(paths: readonly string[], options: { readonly labLeadMinutes?: number } = {}): Promise<TemplateSet> {
  const resources: FhirResource[] = [];
  for await (const { resource } of readNdjson(paths)) resources.push(resource);
  const templates = buildTemplates(resources, options);
  if (templates.visits === 0) throw new Error(`no ED stays with a dated patient in ${paths.join(', ')}: nothing to learn from`);
  return templates;
}
