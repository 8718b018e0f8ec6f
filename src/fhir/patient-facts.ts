/**
 * FHIR resources of one hook call → the PatientFacts the cohort engine matches on. Pure: the clock, the
 * complaint vocabulary and the ICD-9 map are passed in. The resources come from an EHR and are only
 * shape-checked at `resourceType`, so every field is read as if it could be missing or of the wrong type.
 */
import type { Condition, Encounter, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { conceptsForComplaint, type ComplaintVocabulary } from '../cohort/complaint.js';
import type { DraftOrder, PatientFacts, Sex } from '../cohort/types.js';
import { icd10CodesFromCodings, type Icd9ToIcd10Map } from './icd.js';

/** The FHIR data one hook call has about its patient (what the context resolver returns). */
export interface FhirPatientContext {
  readonly patient: Patient;
  readonly encounter?: Encounter | undefined;
  /** context.encounterId, known even when the Encounter resource could not be had. */
  readonly encounterId?: string | undefined;
  readonly conditions: readonly Condition[];
  readonly observations: readonly Observation[];
  readonly draftOrders: readonly Resource[];
}

export interface PatientFactsOptions {
  readonly vocabulary: ComplaintVocabulary;
  readonly icd9Map: Icd9ToIcd10Map;
  /** The reference date for the age when the encounter has no start. */
  readonly now: Date;
}

export const loincSystem = 'http://loinc.org';
/** LOINC "Chief complaint - Reported". */
export const chiefComplaintLoinc = '8661-1';
/** LOINC "Acuity assessment", which carries the ESI triage level in ED data such as MIMIC-IV-ED. */
export const acuityLoinc = '56839-4';

/** Caps on what one request can put into the facts, whatever the EHR sends. */
export const factLimits = Object.freeze({
  complaintLength: 500,
  complaintConcepts: 10,
  icd10Codes: 100,
  draftOrders: 100,
  codesPerOrder: 20,
  textsPerOrder: 20,
  textLength: 200,
  maximumAgeYears: 120,
});

type Json = Readonly<Record<string, unknown>>;

interface SimpleCoding {
  readonly system: string;
  readonly code: string;
  readonly display: string | undefined;
}

interface CalendarDate {
  readonly year: number;
  readonly month: number | undefined;
  readonly day: number | undefined;
}

function asObject(value: unknown): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined;
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function asText(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.replace(/\s+/g, ' ').trim();
  return text === '' ? undefined : text;
}

function codingsOf(concept: unknown): SimpleCoding[] {
  return asArray(asObject(concept)?.['coding']).flatMap((item) => {
    const coding = asObject(item);
    const system = asText(coding?.['system']);
    const code = asText(coding?.['code']);
    const display = asText(coding?.['display']);
    if (system === undefined && code === undefined && display === undefined) return [];
    return [{ system: system ?? '', code: code ?? '', display }];
  });
}

/** The text a CodeableConcept shows: its text, else the display of its codings. */
function conceptText(concept: unknown): string | undefined {
  const text = asText(asObject(concept)?.['text']);
  if (text !== undefined) return text;
  const displays = codingsOf(concept).flatMap((coding) => (coding.display === undefined ? [] : [coding.display]));
  return displays.length > 0 ? [...new Set(displays)].join(', ') : undefined;
}

/** One compiled pattern per resource type, not one per reference read. */
const referencePatterns = new Map<string, RegExp>();

function referencedId(reference: unknown, resourceType: string): string | undefined {
  const value = asText(asObject(reference)?.['reference']);
  if (value === undefined) return undefined;
  let pattern = referencePatterns.get(resourceType);
  if (pattern === undefined) referencePatterns.set(resourceType, (pattern = new RegExp(`(?:^|/)${resourceType}/([^/]+)(?:/_history/[^/]+)?$`)));
  return pattern.exec(value)?.[1];
}

// --- age -------------------------------------------------------------------------------------------------

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** A FHIR date (YYYY, YYYY-MM, YYYY-MM-DD) or the date part of a dateTime, as written (no time-zone shift). */
function calendarDate(value: unknown, allowTime: boolean): CalendarDate | null {
  if (typeof value !== 'string') return null;
  const pattern = allowTime ? /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T.*)?$/ : /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/;
  const match = pattern.exec(value.trim());
  if (!match) return null;
  const year = Number(match[1]);
  const month = match[2] === undefined ? undefined : Number(match[2]);
  const day = match[3] === undefined ? undefined : Number(match[3]);
  if (month !== undefined && (month < 1 || month > 12)) return null;
  if (day !== undefined && month !== undefined && (day < 1 || day > daysInMonth(year, month))) return null;
  return { year, month, day };
}

/**
 * Whole years from birth to the reference date. A partial birthDate counts from the start of the period it
 * names (1 January, the 1st of the month), so the age is at most one year too high, never negative by accident.
 */
function ageInYears(birthDate: unknown, reference: CalendarDate): number | null {
  const birth = calendarDate(birthDate, false);
  if (birth === null) return null;
  const birthMonth = birth.month ?? 1;
  const birthDay = birth.day ?? 1;
  const referenceMonth = reference.month ?? 12;
  const referenceDay = reference.day ?? 31;
  const beforeBirthday = referenceMonth < birthMonth || (referenceMonth === birthMonth && referenceDay < birthDay);
  const age = reference.year - birth.year - (beforeBirthday ? 1 : 0);
  return age < 0 || age > factLimits.maximumAgeYears ? null : age;
}

function referenceDate(encounter: Encounter | undefined, now: Date): CalendarDate {
  const start = calendarDate(asObject(asObject(encounter)?.['period'])?.['start'], true);
  return start ?? { year: now.getUTCFullYear(), month: now.getUTCMonth() + 1, day: now.getUTCDate() };
}

// --- sex -------------------------------------------------------------------------------------------------

const sexes: ReadonlySet<string> = new Set<Sex>(['female', 'male', 'other', 'unknown']);

function sexOf(patient: Patient): Sex | null {
  const gender = asObject(patient)?.['gender'];
  return typeof gender === 'string' && sexes.has(gender) ? (gender as Sex) : null;
}

// --- observations: chief complaint and acuity ------------------------------------------------------------

const unusableObservationStatuses: ReadonlySet<string> = new Set(['entered-in-error', 'cancelled']);

function observationTime(observation: Json): number {
  const candidates = [observation['effectiveDateTime'], observation['effectiveInstant'], asObject(observation['effectivePeriod'])?.['start'], observation['issued']];
  for (const candidate of candidates) {
    if (typeof candidate !== 'string') continue;
    const time = Date.parse(candidate);
    if (!Number.isNaN(time)) return time;
  }
  return Number.NEGATIVE_INFINITY;
}

/**
 * Observations with this LOINC code, best first: those of this encounter, then those linked to no encounter,
 * each latest first. When the encounter is known, an observation of another encounter is a previous visit's
 * and is left out.
 */
function rankedObservations(observations: readonly Observation[], loincCode: string, encounterId: string | undefined): Json[] {
  return observations
    .flatMap((item) => {
      const observation = asObject(item);
      if (observation === undefined) return [];
      const status = observation['status'];
      if (typeof status === 'string' && unusableObservationStatuses.has(status)) return [];
      if (!codingsOf(observation['code']).some((coding) => coding.system === loincSystem && coding.code === loincCode)) return [];
      const linkedEncounter = referencedId(observation['encounter'], 'Encounter');
      if (encounterId !== undefined && linkedEncounter !== undefined && linkedEncounter !== encounterId) return [];
      const rank = encounterId !== undefined && linkedEncounter === encounterId ? 0 : 1;
      return [{ observation, rank, time: observationTime(observation) }];
    })
    .sort((a, b) => a.rank - b.rank || b.time - a.time)
    .map(({ observation }) => observation);
}

function observationText(observation: Json): string | undefined {
  return asText(observation['valueString']) ?? conceptText(observation['valueCodeableConcept']);
}

function complaintText(observations: readonly Json[], encounter: Encounter | undefined): string | null {
  for (const observation of observations) {
    const text = observationText(observation);
    if (text !== undefined) return text.slice(0, factLimits.complaintLength);
  }
  // Encounter.reasonCode is where EHRs without a triage Observation put the reason for the visit.
  const reasons = asArray(asObject(encounter)?.['reasonCode']).flatMap((concept) => conceptText(concept) ?? []);
  return reasons.length > 0 ? reasons.join(', ').slice(0, factLimits.complaintLength) : null;
}

/** "2", "2.0", "ESI 2", "ESI-2", "Level 2", "ESI level 2" → 2. */
function parseAcuity(value: unknown): number | null {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 5 ? value : null;
  const text = asText(value);
  if (text === undefined) return null;
  const match = /^(?:(?:esi|triage)?\s*(?:level)?)?\s*[-:]?\s*([1-5])(?:\.0+)?$/i.exec(text);
  return match ? Number(match[1]) : null;
}

function acuityOf(observation: Json): number | null {
  const concept = observation['valueCodeableConcept'];
  const candidates = [
    observation['valueInteger'],
    observation['valueString'],
    asObject(observation['valueQuantity'])?.['value'],
    asObject(concept)?.['text'],
    ...codingsOf(concept).flatMap((coding) => [coding.code, coding.display]),
  ];
  for (const candidate of candidates) {
    const acuity = parseAcuity(candidate);
    if (acuity !== null) return acuity;
  }
  return null;
}

// --- conditions ------------------------------------------------------------------------------------------

/** https://hl7.org/fhir/R4/valueset-condition-ver-status.html: these say the diagnosis is not the patient's. */
const excludedVerificationStatuses: ReadonlySet<string> = new Set(['entered-in-error', 'refuted']);
/** https://hl7.org/fhir/R4/valueset-condition-clinical.html: over, so not a diagnosis to match on. */
const excludedClinicalStatuses: ReadonlySet<string> = new Set(['inactive', 'resolved']);

function hasStatusIn(concept: unknown, statuses: ReadonlySet<string>): boolean {
  for (const item of asArray(asObject(concept)?.['coding'])) {
    const code = asText(asObject(item)?.['code']);
    if (code !== undefined && statuses.has(code)) return true;
  }
  return false;
}

/** The system and code of each coding that has both (icd10CodesFromCodings passes over the others). */
function systemCodesOf(concept: unknown, into: { system: string; code: string }[]): void {
  for (const item of asArray(asObject(concept)?.['coding'])) {
    const coding = asObject(item);
    const system = asText(coding?.['system']);
    const code = asText(coding?.['code']);
    if (system !== undefined && code !== undefined) into.push({ system, code });
  }
}

/**
 * ICD-10-CM codes of every Condition except those entered in error, refuted, inactive or resolved; a
 * Condition without statuses (as in MIMIC) counts. Problem-list items and encounter diagnoses are treated alike.
 */
function icd10CodesOf(conditions: readonly Condition[], icd9Map: Icd9ToIcd10Map): string[] {
  const codings: { system: string; code: string }[] = [];
  for (const item of conditions) {
    const condition = asObject(item);
    if (condition === undefined) continue;
    if (hasStatusIn(condition['verificationStatus'], excludedVerificationStatuses)) continue;
    if (hasStatusIn(condition['clinicalStatus'], excludedClinicalStatuses)) continue;
    systemCodesOf(condition['code'], codings);
  }
  return icd10CodesFromCodings(codings, icd9Map).slice(0, factLimits.icd10Codes);
}

// --- draft orders ----------------------------------------------------------------------------------------

/** Where request resources keep what is ordered (ServiceRequest, MedicationRequest, DeviceRequest, …). */
const orderedItemFields = ['code', 'medicationCodeableConcept', 'codeCodeableConcept', 'productCodeableConcept', 'vaccineCode'] as const;
const nonOrderResourceTypes: ReadonlySet<string> = new Set(['Bundle', 'OperationOutcome', 'Patient', 'Encounter']);

function containedResource(resource: Json, reference: unknown): Json | undefined {
  const target = asText(asObject(reference)?.['reference']);
  if (target === undefined || !target.startsWith('#')) return undefined;
  return asArray(resource['contained']).map(asObject).find((contained) => contained?.['id'] === target.slice(1));
}

function normalizedText(text: string): string {
  return text.toLowerCase().slice(0, factLimits.textLength);
}

function draftOrderOf(item: unknown): DraftOrder | null {
  const resource = asObject(item);
  const resourceType = asText(resource?.['resourceType']);
  if (resource === undefined || resourceType === undefined || nonOrderResourceTypes.has(resourceType)) return null;
  const concepts: unknown[] = orderedItemFields.map((field) => resource[field]);
  const medicationReference = resource['medicationReference'];
  concepts.push(containedResource(resource, medicationReference)?.['code']);

  const codes = new Set<string>();
  const texts = new Set<string>();
  for (const concept of concepts) {
    const text = asText(asObject(concept)?.['text']);
    if (text !== undefined) texts.add(normalizedText(text));
    for (const coding of codingsOf(concept)) {
      if (coding.system !== '' && coding.code !== '') codes.add(`${coding.system}|${coding.code}`);
      if (coding.display !== undefined) texts.add(normalizedText(coding.display));
    }
  }
  const referenceDisplay = asText(asObject(medicationReference)?.['display']);
  if (referenceDisplay !== undefined) texts.add(normalizedText(referenceDisplay));
  if (codes.size === 0 && texts.size === 0) return null;
  return {
    resourceType,
    codes: [...codes].slice(0, factLimits.codesPerOrder),
    texts: [...texts].slice(0, factLimits.textsPerOrder),
  };
}

// ---------------------------------------------------------------------------------------------------------

/** The facts the cohort engine matches on, from the FHIR data of one hook call. */
export function patientFactsFromContext(context: FhirPatientContext, options: PatientFactsOptions): PatientFacts {
  const encounterId = context.encounterId ?? asText(asObject(context.encounter)?.['id']);
  const complaintObservations = rankedObservations(context.observations, chiefComplaintLoinc, encounterId);
  const chiefComplaintText = complaintText(complaintObservations, context.encounter);
  const acuityObservations = rankedObservations(context.observations, acuityLoinc, encounterId);
  const acuity = acuityObservations.reduce<number | null>((found, observation) => found ?? acuityOf(observation), null);
  const draftOrders = context.draftOrders.flatMap((resource) => draftOrderOf(resource) ?? []).slice(0, factLimits.draftOrders);

  return {
    ageYears: ageInYears(asObject(context.patient)?.['birthDate'], referenceDate(context.encounter, options.now)),
    sex: sexOf(context.patient),
    chiefComplaintText,
    complaintConcepts: conceptsForComplaint(chiefComplaintText, options.vocabulary).concepts.slice(0, factLimits.complaintConcepts),
    icd10Codes: icd10CodesOf(context.conditions, options.icd9Map),
    acuity,
    draftOrders,
  };
}
