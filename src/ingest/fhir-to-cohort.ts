/**
 * FHIR R4 resources of one patient → de-identified cohort rows, one per emergency-department stay. Pure:
 * no I/O, no clock; the hasher, the complaint vocabulary and the ICD-9 map come in.
 *
 * What leaves this module: keyed hashes instead of identifiers, the age (capped at 90), the year of the
 * visit, and times as minutes from the start of the ED stay. No names, addresses or dates.
 */
import type {
  CodeableConcept,
  Coding,
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
import { conceptsForComplaint, type ComplaintVocabulary } from '../cohort/complaint.js';
import type { ItemCategory, Sex } from '../cohort/types.js';
import { icd10Category, icd10CodesFromCodings, type Icd9ToIcd10Map } from '../fhir/icd.js';
import {
  asArray,
  codings,
  conceptText,
  hasCoding,
  isEnteredInError,
  isLaboratory,
  observationTime,
  parseFhirTime,
  referencedId,
  referenceKey,
} from '../fhir/resource-readers.js';
import { ageAtVisit, calendarDate, complaintWords, removeIdentifierShapes, scrubComplaintText, triageWords, type KeyHasher } from './deidentify.js';
import { ingredientCodeSystem, ingredientForMedication } from './medication.js';

export interface CohortEncounterRow {
  readonly encounterKey: string;
  readonly patientKey: string;
  readonly site: string;
  readonly ageYears: number;
  readonly sex: Sex;
  readonly acuity: number | null;
  readonly chiefComplaintText: string | null;
  readonly complaintConcepts: readonly string[];
  readonly icd10Codes: readonly string[];
  readonly icd10Categories: readonly string[];
  readonly historyIcd10Codes: readonly string[];
  readonly startYear: number;
  readonly disposition: string | null;
  readonly admitted: boolean;
  readonly edLosMinutes: number | null;
  readonly hospitalLosMinutes: number | null;
  readonly returned72h: boolean;
  readonly returned30d: boolean;
}

export interface EncounterItemRow {
  readonly encounterKey: string;
  readonly itemCode: string;
  readonly category: ItemCategory;
  readonly kind: string;
  readonly display: string;
  readonly codeSystem: string | null;
  readonly code: string | null;
  readonly offsetMinutes: number | null;
  readonly clinicianKey: string | null;
}

/** One specimen drawn and the analytes measured on it (their lab item codes, `lab:<code>`, sorted). */
export interface LabDrawRow {
  readonly encounterKey: string;
  readonly drawKey: string;
  readonly analyteCodes: readonly string[];
}

/** Everything stored for one ED stay. */
export interface CohortEncounterRecord {
  readonly encounter: CohortEncounterRow;
  readonly items: readonly EncounterItemRow[];
  readonly draws: readonly LabDrawRow[];
}

/** The resources of one patient that the conversion reads. */
export interface PatientResources {
  readonly patient: Patient | undefined;
  readonly encounters: readonly Encounter[];
  readonly conditions: readonly Condition[];
  readonly observations: readonly Observation[];
  readonly serviceRequests: readonly ServiceRequest[];
  readonly medications: ReadonlyArray<MedicationDispense | MedicationAdministration | MedicationRequest>;
  readonly procedures: readonly Procedure[];
}

export interface CohortConversionContext {
  readonly hasher: KeyHasher;
  readonly vocabulary: ComplaintVocabulary;
  readonly icd9Map: Icd9ToIcd10Map;
  /** Value of cohort_encounter.site; `default` when absent. */
  readonly site?: string;
  /** Medication resource id → its name, for resources that use `medicationReference`. */
  readonly medicationNames?: ReadonlyMap<string, string>;
  /**
   * Lab results charted up to this many minutes before the ED arrival time still belong to that stay.
   * In MIMIC-IV-ED about one lab in eight is charted in the hour before `intime` (blood drawn at triage,
   * before registration); without this window those results are lost. 0 makes the ED period strict.
   */
  readonly labLeadMinutes?: number;
  /**
   * Lower-case words of clinical language (the ICD-10-CM descriptions: listIcd10DescriptionWords) that a stored
   * chief complaint may keep besides the vocabulary's and `triageWords`; any other word is removed (docs/privacy.md).
   */
  readonly clinicalWords?: ReadonlySet<string>;
}

/**
 * Results that record how a specimen was handled, not a test anyone orders: tubes held for add-ons, the
 * laboratory's automatic serum indices (H, I, L), urine collection length, specimen type.
 */
const specimenHandlingPattern = /\bhold\b|^uhold$|^[hil]$|^length of urine collection$|^specimen type$|\b(?:voided|problem) specimen\b/i;

/** Whether a lab result only describes specimen handling, so it is no workup item. */
export function isSpecimenHandling(display: string): boolean {
  return specimenHandlingPattern.test(display.trim());
}

/** Why an encounter or a resource did not make it into the cohort; counted, never fatal. */
export type SkipReason =
  | 'encounter-no-patient'
  | 'encounter-no-gender'
  | 'encounter-no-birth-date'
  | 'encounter-invalid-age'
  | 'encounter-no-start'
  | 'encounter-no-id'
  | 'lab-outside-ed-stay'
  | 'lab-without-code'
  | 'lab-specimen-handling'
  | 'order-outside-ed-stay'
  | 'medication-outside-ed-stay'
  | 'medication-without-name'
  | 'procedure-outside-ed-stay';

export interface PatientConversion {
  readonly records: CohortEncounterRecord[];
  /** ED stays found, whether loaded or skipped. */
  readonly emergencyStays: number;
  readonly skipped: Partial<Record<SkipReason, number>>;
}

/** LOINC, and the triage codes MIMIC-IV-ED uses: chief complaint (reported) and acuity assessment. */
export const loinc = 'http://loinc.org';
export const chiefComplaintLoinc = '8661-1';
export const acuityLoinc = '56839-4';
const maximumComplaintLength = 200;
const defaultLabLeadMinutes = 60;
const minute = 60_000;
const hours72 = 72 * 60 * minute;
const days30 = 30 * 24 * 60 * minute;

// ---------------------------------------------------------------------------------------------------------
// Readers of this ingest's own (the shared ones are in ../fhir/resource-readers.ts).

/** Lower-case, hyphen-separated; the stable part of an item code. */
export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80);
}

function minutesBetween(from: number, to: number): number {
  return Math.round((to - from) / minute);
}

/**
 * Parties that are no clinician: FHIR R4 lets a performer or requester be an organization (the laboratory), a care
 * team, a device, the patient or a relative (Observation.performer, MedicationRequest.requester, …).
 */
const nonClinicianTypes = new Set(['Organization', 'CareTeam', 'Device', 'Patient', 'RelatedPerson', 'HealthcareService']);

function isClinicianReference(reference: Reference): boolean {
  const type = typeof reference.type === 'string' ? reference.type : /(?:^|\/)([A-Z][A-Za-z]+)\/[^/]+(?:\/_history\/[^/]+)?$/.exec(reference.reference ?? '')?.[1];
  return type === undefined || !nonClinicianTypes.has(type);
}

/**
 * The keyed hash of the first clinician among a resource's performers or requester (docs/reputation.md), or null:
 * never the identifier itself. A reference is known by its identifier (system|value), else its reference text.
 */
function clinicianKeyOf(hasher: KeyHasher, ...references: Array<Reference | undefined | null>): string | null {
  for (const reference of references) {
    if (typeof reference !== 'object' || reference === null || !isClinicianReference(reference)) continue;
    const key = referenceKey(reference);
    if (key) return hasher('clinician', key);
  }
  return null;
}

const vocabularyWords = new WeakMap<ComplaintVocabulary, ReadonlySet<string>>();

/** The words a stored complaint may keep: the vocabulary's, `triageWords` and the context's clinical words. */
function storableComplaintWords(context: CohortConversionContext): Pick<ReadonlySet<string>, 'has'> {
  let fromVocabulary = vocabularyWords.get(context.vocabulary);
  if (!fromVocabulary) {
    const words = new Set(triageWords);
    for (const [phrase, concept] of context.vocabulary) for (const word of complaintWords(`${phrase} ${concept}`)) words.add(word);
    fromVocabulary = words;
    vocabularyWords.set(context.vocabulary, words);
  }
  const vocabulary = fromVocabulary;
  const clinical = context.clinicalWords;
  return { has: (word) => vocabulary.has(word) || (clinical?.has(word) ?? false) };
}

// ---------------------------------------------------------------------------------------------------------
// Encounters

function classCodes(encounter: Encounter): string[] {
  // R4 has one Coding; R5 a list of CodeableConcepts. Read both.
  const raw = (encounter as { class?: unknown }).class;
  const found: string[] = [];
  for (const entry of asArray(raw as unknown[] | unknown)) {
    if (typeof entry !== 'object' || entry === null) continue;
    const value = entry as Coding & CodeableConcept;
    for (const field of [value.code, value.display]) if (typeof field === 'string') found.push(field.toLowerCase());
    for (const coding of codings(value)) if (typeof coding.code === 'string') found.push(coding.code.toLowerCase());
  }
  return found;
}

function isEmergencyClass(encounter: Encounter): boolean {
  return classCodes(encounter).some((code) => code === 'emer' || code === 'emergency');
}

/**
 * MIMIC gives hospital admissions that came through the ED class EMER too; they are told apart from ED
 * stays by being the `partOf` target of an ED stay, or by MIMIC's hospital identifier system.
 */
function isHospitalRecord(encounter: Encounter, partOfTargets: ReadonlySet<string>): boolean {
  if (encounter.id && partOfTargets.has(encounter.id)) return true;
  return asArray(encounter.identifier).some((identifier) => typeof identifier?.system === 'string' && identifier.system.endsWith('/encounter-hosp'));
}

interface Stay {
  readonly encounter: Encounter;
  readonly id: string;
  readonly start: number | null;
  readonly end: number | null;
  readonly partOf: string | null;
}

function disposition(encounter: Encounter): string | null {
  const concept = encounter.hospitalization?.dischargeDisposition;
  const coded = codings(concept).find((coding) => typeof coding.code === 'string' && coding.code.trim());
  const value = coded?.code ?? (typeof concept?.text === 'string' ? concept.text : undefined);
  return value?.trim() ? removeIdentifierShapes(value.trim()).slice(0, 100) : null;
}

function isAdmittedDisposition(value: string): boolean {
  return /^(?:admitted|admit|admission|inpatient)$/i.test(value);
}

// ---------------------------------------------------------------------------------------------------------
// Per-stay item collection

class StayItems {
  private readonly items = new Map<string, EncounterItemRow>();
  /** The analytes of each draw, by draw key. */
  private readonly draws = new Map<string, Set<string>>();

  constructor(readonly encounterKey: string) {}

  add(item: Omit<EncounterItemRow, 'encounterKey'>): void {
    const current = this.items.get(item.itemCode);
    // One row per item: the first time it happened, with the clinician who ordered that one.
    if (
      current === undefined ||
      (item.offsetMinutes !== null && (current.offsetMinutes === null || item.offsetMinutes < current.offsetMinutes))
    ) {
      this.items.set(item.itemCode, { ...item, encounterKey: this.encounterKey });
    }
  }

  addDraw(drawKey: string, analyteCode: string): void {
    let analytes = this.draws.get(drawKey);
    if (analytes === undefined) {
      analytes = new Set();
      this.draws.set(drawKey, analytes);
    }
    analytes.add(analyteCode);
  }

  itemRows(): EncounterItemRow[] {
    return [...this.items.values()].sort((a, b) => (a.itemCode < b.itemCode ? -1 : a.itemCode > b.itemCode ? 1 : 0));
  }

  drawRows(): LabDrawRow[] {
    return [...this.draws.keys()]
      .sort()
      .map((drawKey) => ({ encounterKey: this.encounterKey, drawKey, analyteCodes: [...this.draws.get(drawKey)!].sort() }));
  }
}

interface ServiceRequestClass {
  readonly category: ItemCategory;
  readonly kind: string;
}

/** Diagnostic orders are workup; blood products, oxygen, consults and anything unrecognised are treatment. */
export function classifyServiceRequest(request: ServiceRequest): ServiceRequestClass {
  const categoryTexts = asArray(request.category).map((category) => conceptText(category) ?? '');
  const categoryCodes = asArray(request.category).flatMap((category) => codings(category).map((coding) => coding.code ?? ''));
  const text = [...categoryTexts, conceptText(request.code) ?? ''].join(' ').toLowerCase();
  if (/interventional/.test(text)) return { category: 'treatment', kind: 'procedure' };
  // SNOMED CT 363679005 |Imaging|, 108252007 |Laboratory procedure|: the US Core ServiceRequest categories.
  if (categoryCodes.includes('363679005') || /radiology|imaging|x-?ray|\bct\b|\bmri\b|ultrasound|sonograph/.test(text)) {
    return { category: 'workup', kind: 'imaging' };
  }
  if (/cardiology|\becg\b|\bekg\b|echo/.test(text)) return { category: 'workup', kind: 'cardiology' };
  if (/blood bank/.test(text) && /blood tests?|type and (?:screen|cross)|crossmatch/.test(text)) return { category: 'workup', kind: 'blood-test' };
  if (/blood bank|transfus|red cell|plasma|platelet|cryoprecipitate/.test(text)) return { category: 'treatment', kind: 'procedure' };
  if (categoryCodes.includes('108252007') || /laborator|\blab\b|hematology|chemistry|microbiology|pathology/.test(text)) {
    return { category: 'workup', kind: 'lab' };
  }
  return { category: 'treatment', kind: 'procedure' };
}

function preferredCoding(concept: CodeableConcept | undefined): Coding | undefined {
  const withCode = codings(concept).filter((coding) => typeof coding.code === 'string' && coding.code.trim());
  return withCode.find((coding) => coding.system === loinc) ?? withCode[0];
}

// ---------------------------------------------------------------------------------------------------------

/** The cohort rows of one patient's ED stays, with the counts of what was skipped and why. */
export function cohortRecordsForPatient(resources: PatientResources, context: CohortConversionContext): PatientConversion {
  const skipped: Partial<Record<SkipReason, number>> = {};
  const skip = (reason: SkipReason) => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  const { hasher } = context;
  const labLead = (context.labLeadMinutes ?? defaultLabLeadMinutes) * minute;

  const encountersById = new Map<string, Encounter>();
  for (const encounter of resources.encounters) if (typeof encounter.id === 'string') encountersById.set(encounter.id, encounter);
  const partOfTargets = new Set<string>();
  for (const encounter of resources.encounters) {
    const parent = referencedId(encounter.partOf, 'Encounter');
    if (parent) partOfTargets.add(parent);
  }

  const stays: Stay[] = [];
  for (const encounter of resources.encounters) {
    if (!isEmergencyClass(encounter) || isHospitalRecord(encounter, partOfTargets) || isEnteredInError(encounter)) continue;
    if (typeof encounter.id !== 'string' || !encounter.id) {
      skip('encounter-no-id');
      continue;
    }
    stays.push({
      encounter,
      id: encounter.id,
      start: parseFhirTime(encounter.period?.start),
      end: parseFhirTime(encounter.period?.end),
      partOf: referencedId(encounter.partOf, 'Encounter'),
    });
  }
  stays.sort((a, b) => (a.start ?? Infinity) - (b.start ?? Infinity));
  const staysById = new Map(stays.map((stay) => [stay.id, stay]));

  /**
   * The ED stay a resource belongs to: the stay it references; for a reference to the hospital admission,
   * the ED stay that is part of it and contains the time; without a usable reference, the stay whose period
   * contains the time (a stay that contains it outright wins over one whose lead window does).
   */
  const resolveStay = (reference: Reference | undefined, time: number | null, lead: number): Stay | null => {
    const referenced = referencedId(reference, 'Encounter');
    if (referenced !== null) {
      const direct = staysById.get(referenced);
      if (direct) return direct;
      if (partOfTargets.has(referenced)) {
        return time === null ? null : stayAt(stays.filter((stay) => stay.partOf === referenced), time, lead);
      }
      // A known non-ED encounter (a clinic visit, the ward): the resource is not part of an ED stay.
      if (encountersById.has(referenced)) return null;
    }
    return time === null ? null : stayAt(stays, time, lead);
  };

  const storableWords = storableComplaintWords(context);
  const itemsByStay = new Map<string, StayItems>();
  const keyOf = (stay: Stay) => hasher('encounter', stay.id);
  const itemsOf = (stay: Stay): StayItems => {
    let items = itemsByStay.get(stay.id);
    if (!items) {
      items = new StayItems(keyOf(stay));
      itemsByStay.set(stay.id, items);
    }
    return items;
  };
  const offsetIn = (stay: Stay, time: number | null): number | null =>
    time === null || stay.start === null ? null : minutesBetween(stay.start, time);

  // Triage observations (complaint, acuity) by the stay they reference; lab results as items.
  const complaints = new Map<string, Array<{ time: number; text: string }>>();
  const acuities = new Map<string, Array<{ time: number; value: number }>>();
  for (const observation of resources.observations) {
    if (isEnteredInError(observation) || observation.status === 'cancelled') continue;
    const time = observationTime(observation);
    if (hasCoding(observation.code, loinc, chiefComplaintLoinc)) {
      const stayId = referencedId(observation.encounter, 'Encounter');
      const text = observation.valueString ?? conceptText(observation.valueCodeableConcept) ?? null;
      if (stayId && typeof text === 'string' && text.trim()) {
        const list = complaints.get(stayId) ?? [];
        list.push({ time: time ?? 0, text: text.trim() });
        complaints.set(stayId, list);
      }
      continue;
    }
    if (hasCoding(observation.code, loinc, acuityLoinc)) {
      const stayId = referencedId(observation.encounter, 'Encounter');
      const value = acuityValue(observation);
      if (stayId && value !== null) {
        const list = acuities.get(stayId) ?? [];
        list.push({ time: time ?? 0, value });
        acuities.set(stayId, list);
      }
      continue;
    }
    if (!isLaboratory(observation)) continue;
    const coding = preferredCoding(observation.code);
    if (!coding?.code) {
      skip('lab-without-code');
      continue;
    }
    const display = (conceptText(observation.code) ?? coding.code).slice(0, 200);
    if (isSpecimenHandling(display)) {
      skip('lab-specimen-handling');
      continue;
    }
    const stay = resolveStay(observation.encounter, time, labLead);
    if (!stay) {
      skip('lab-outside-ed-stay');
      continue;
    }
    const items = itemsOf(stay);
    const itemCode = `lab:${coding.code.trim()}`;
    const offset = offsetIn(stay, time);
    items.add({
      itemCode,
      category: 'workup',
      kind: 'lab',
      display,
      codeSystem: coding.system ?? null,
      code: coding.code.trim(),
      offsetMinutes: offset,
      clinicianKey: clinicianKeyOf(hasher, ...asArray(observation.performer)),
    });
    const specimen = referenceKey(observation.specimen);
    // Without a specimen, results taken at the same minute are taken as one draw.
    const drawKey = specimen ? hasher('specimen', specimen) : `time:${offset ?? 'unknown'}`;
    items.addDraw(drawKey, itemCode);
  }

  for (const request of resources.serviceRequests) {
    if (isEnteredInError(request) || request.status === 'revoked' || request.intent === 'proposal' || request.intent === 'plan') continue;
    const text = conceptText(request.code);
    if (!text) continue;
    const time = parseFhirTime(request.authoredOn) ?? parseFhirTime(request.occurrenceDateTime) ?? parseFhirTime(request.occurrencePeriod?.start);
    const stay = resolveStay(request.encounter, time, 0);
    if (!stay) {
      skip('order-outside-ed-stay');
      continue;
    }
    const coding = codings(request.code).find((candidate) => typeof candidate.code === 'string' && candidate.code);
    const { category, kind } = classifyServiceRequest(request);
    itemsOf(stay).add({
      itemCode: `order:${slugify(text)}`,
      category,
      kind,
      display: text.slice(0, 200),
      codeSystem: coding?.system ?? null,
      code: coding?.code ?? null,
      offsetMinutes: offsetIn(stay, time),
      clinicianKey: clinicianKeyOf(hasher, request.requester),
    });
  }

  for (const medication of resources.medications) {
    if (isEnteredInError(medication) || ['cancelled', 'declined', 'not-done', 'draft'].includes(medication.status ?? '')) continue;
    const name = medicationName(medication, context.medicationNames);
    if (!name) {
      skip('medication-without-name');
      continue;
    }
    const { reference, time, clinicians } = medicationContext(medication);
    const stay = resolveStay(reference, time, 0);
    if (!stay) {
      skip('medication-outside-ed-stay');
      continue;
    }
    const ingredient = ingredientForMedication(name);
    itemsOf(stay).add({
      itemCode: `med:${ingredient.code}`,
      category: 'treatment',
      kind: 'medication',
      display: ingredient.display,
      codeSystem: ingredientCodeSystem,
      code: ingredient.code,
      offsetMinutes: offsetIn(stay, time),
      clinicianKey: clinicianKeyOf(hasher, ...clinicians),
    });
  }

  for (const procedure of resources.procedures) {
    if (isEnteredInError(procedure) || procedure.status === 'not-done') continue;
    if (!procedure.encounter) continue;
    const coding = codings(procedure.code).find((candidate) => typeof candidate.code === 'string' && candidate.code);
    const text = conceptText(procedure.code);
    if (!coding?.code && !text) continue;
    const time = parseFhirTime(procedure.performedDateTime) ?? parseFhirTime(procedure.performedPeriod?.start);
    const stay = resolveStay(procedure.encounter, time, 0);
    if (!stay) {
      skip('procedure-outside-ed-stay');
      continue;
    }
    itemsOf(stay).add({
      itemCode: `procedure:${coding?.code ? coding.code.trim() : slugify(text ?? '')}`,
      category: 'treatment',
      kind: 'procedure',
      display: (text ?? coding?.code ?? '').slice(0, 200),
      codeSystem: coding?.system ?? null,
      code: coding?.code ?? null,
      offsetMinutes: offsetIn(stay, time),
      clinicianKey: clinicianKeyOf(hasher, ...asArray(procedure.performer).map((performer) => performer?.actor)),
    });
  }

  // Diagnoses: by encounter, and dated so that only earlier encounters count as history.
  const diagnoses = resources.conditions
    .filter((condition) => !isEnteredInError(condition as { status?: string }) && condition.verificationStatus?.coding?.[0]?.code !== 'entered-in-error')
    .map((condition) => {
      const encounterId = referencedId(condition.encounter, 'Encounter');
      const encounter = encounterId ? encountersById.get(encounterId) : undefined;
      const known =
        encounter !== undefined
          ? (parseFhirTime(encounter.period?.end) ?? parseFhirTime(encounter.period?.start))
          : (parseFhirTime(condition.recordedDate) ?? parseFhirTime(condition.onsetDateTime));
      return { encounterId, knownAt: known, codes: icd10CodesFromCodings(codings(condition.code), context.icd9Map) };
    });

  const patient = resources.patient;
  const records: CohortEncounterRecord[] = [];
  for (const [index, stay] of stays.entries()) {
    if (!patient) {
      skip('encounter-no-patient');
      continue;
    }
    if (!patient.gender) {
      skip('encounter-no-gender');
      continue;
    }
    if (!patient.birthDate) {
      skip('encounter-no-birth-date');
      continue;
    }
    const startText = stay.encounter.period?.start;
    const start = stay.start;
    if (start === null || typeof startText !== 'string') {
      skip('encounter-no-start');
      continue;
    }
    const age = ageAtVisit(patient.birthDate, startText);
    const startDate = calendarDate(startText);
    if (age === null || startDate === null) {
      skip('encounter-invalid-age');
      continue;
    }

    const complaintText = earliestFirst(complaints.get(stay.id)).map((entry) => entry.text);
    const reasonText = asArray(stay.encounter.reasonCode)
      .map((reason) => conceptText(reason))
      .filter((text): text is string => text !== null);
    const fullComplaint = [...new Set(complaintText.length > 0 ? complaintText : reasonText)].join(', ').replace(/\s+/g, ' ').trim();
    // Stored text only: triage notes can carry names, phone, account and health-plan numbers, dates (Safe Harbor,
    // docs/privacy.md); the concepts below are matched on the full text.
    const chiefComplaintText = fullComplaint ? scrubComplaintText(fullComplaint, storableWords).slice(0, maximumComplaintLength) : null;

    const ownCodes = new Set<string>();
    const historyCodes = new Set<string>();
    for (const diagnosis of diagnoses) {
      if (diagnosis.encounterId === stay.id) {
        for (const code of diagnosis.codes) ownCodes.add(code);
      } else if (diagnosis.knownAt !== null && diagnosis.knownAt <= start && diagnosis.encounterId !== stay.partOf) {
        for (const code of diagnosis.codes) historyCodes.add(code);
      }
    }
    const icd10Codes = [...ownCodes].sort();

    const dispositionCode = disposition(stay.encounter);
    const hospital = stay.partOf ? encountersById.get(stay.partOf) : undefined;
    // MIMIC links ED-observation stays that went home to a hospital record too, so partOf decides only
    // when the ED gives no disposition.
    const admitted = dispositionCode !== null ? isAdmittedDisposition(dispositionCode) : stay.partOf !== null;
    const hospitalStart = parseFhirTime(hospital?.period?.start);
    const hospitalEnd = parseFhirTime(hospital?.period?.end);
    const hospitalLos =
      admitted && hospitalStart !== null && hospitalEnd !== null && hospitalEnd >= hospitalStart ? minutesBetween(hospitalStart, hospitalEnd) : null;
    const edLos = stay.end !== null && stay.end >= start ? minutesBetween(start, stay.end) : null;

    // A return is the patient's next ED arrival, measured from this departure.
    const departure = stay.end ?? start;
    const nextStart = stays.slice(index + 1).find((candidate) => candidate.start !== null && candidate.start > start)?.start ?? null;
    const gap = nextStart !== null ? nextStart - departure : null;

    const items = itemsByStay.get(stay.id);
    records.push({
      encounter: {
        encounterKey: keyOf(stay),
        patientKey: hasher('patient', patient.id ?? stay.id),
        site: context.site ?? 'default',
        ageYears: age,
        sex: sexOf(patient.gender),
        acuity: earliestFirst(acuities.get(stay.id))[0]?.value ?? null,
        chiefComplaintText,
        complaintConcepts: conceptsForComplaint(fullComplaint, context.vocabulary).concepts,
        icd10Codes,
        icd10Categories: [...new Set(icd10Codes.map(icd10Category))].sort(),
        historyIcd10Codes: [...historyCodes].sort(),
        startYear: startDate.year,
        disposition: dispositionCode,
        admitted,
        edLosMinutes: edLos,
        hospitalLosMinutes: hospitalLos,
        returned72h: gap !== null && gap >= 0 && gap <= hours72,
        returned30d: gap !== null && gap >= 0 && gap <= days30,
      },
      items: items?.itemRows() ?? [],
      draws: items?.drawRows() ?? [],
    });
  }
  return { records, emergencyStays: stays.length, skipped };
}

function stayAt(stays: readonly Stay[], time: number, lead: number): Stay | null {
  let leading: Stay | null = null;
  for (const stay of stays) {
    if (stay.start === null) continue;
    const end = stay.end ?? stay.start;
    if (time >= stay.start && time <= end) return stay;
    if (leading === null && time < stay.start && time >= stay.start - lead) leading = stay;
  }
  return leading;
}

function earliestFirst<T extends { time: number }>(entries: readonly T[] | undefined): T[] {
  return [...(entries ?? [])].sort((a, b) => a.time - b.time);
}

function acuityValue(observation: Observation): number | null {
  const candidates: unknown[] = [
    observation.valueInteger,
    observation.valueString,
    observation.valueQuantity?.value,
    ...codings(observation.valueCodeableConcept).map((coding) => coding.code),
  ];
  for (const candidate of candidates) {
    const value = typeof candidate === 'number' ? candidate : typeof candidate === 'string' ? Number.parseInt(candidate.replace(/^\D+/, ''), 10) : NaN;
    if (Number.isInteger(value) && value >= 1 && value <= 5) return value;
  }
  return null;
}

function sexOf(gender: string): Sex {
  return gender === 'male' || gender === 'female' || gender === 'other' ? gender : 'unknown';
}

function medicationName(
  medication: MedicationDispense | MedicationAdministration | MedicationRequest,
  names: ReadonlyMap<string, string> | undefined,
): string | null {
  const fromConcept = conceptText(medication.medicationCodeableConcept);
  if (fromConcept) return fromConcept;
  const reference = medication.medicationReference;
  const id = referencedId(reference, 'Medication');
  return (id ? names?.get(id) : undefined) ?? (typeof reference?.display === 'string' ? reference.display : null);
}

function medicationContext(medication: MedicationDispense | MedicationAdministration | MedicationRequest): {
  reference: Reference | undefined;
  time: number | null;
  clinicians: Array<Reference | undefined>;
} {
  switch (medication.resourceType) {
    case 'MedicationDispense':
      return {
        reference: medication.context,
        time: parseFhirTime(medication.whenHandedOver) ?? parseFhirTime(medication.whenPrepared),
        clinicians: asArray(medication.performer).map((performer) => performer?.actor),
      };
    case 'MedicationAdministration':
      return {
        // R4 calls it context; R5 renamed it encounter.
        reference: medication.context ?? (medication as { encounter?: Reference }).encounter,
        time: parseFhirTime(medication.effectiveDateTime) ?? parseFhirTime(medication.effectivePeriod?.start),
        clinicians: asArray(medication.performer).map((performer) => performer?.actor),
      };
    case 'MedicationRequest':
      return { reference: medication.encounter, time: parseFhirTime(medication.authoredOn), clinicians: [medication.requester] };
  }
}

// ---------------------------------------------------------------------------------------------------------
// What the conversion reads. The ingest keeps resources on disk between reading the files and converting a
// patient (Bulk Data files are split by type, the conversion needs a patient's resources together); only the
// top-level fields read above are kept, so that staging stays small. A field read above must be listed here:
// test/ingest/conversion-input.test.ts converts the whole demo from full and from reduced resources and
// compares the rows.

const timesOfObservation = ['effectiveDateTime', 'effectiveInstant', 'effectivePeriod', 'issued'] as const;

const fieldsRead = {
  Patient: ['id', 'gender', 'birthDate'],
  Encounter: ['id', 'status', 'class', 'identifier', 'partOf', 'period', 'hospitalization', 'reasonCode'],
  Condition: ['status', 'verificationStatus', 'encounter', 'recordedDate', 'onsetDateTime', 'code'],
  TriageObservation: ['status', 'code', 'encounter', ...timesOfObservation, 'valueString', 'valueCodeableConcept', 'valueInteger', 'valueQuantity'],
  LabObservation: ['status', 'category', 'code', 'encounter', ...timesOfObservation, 'specimen', 'performer'],
  ServiceRequest: ['status', 'intent', 'code', 'category', 'authoredOn', 'occurrenceDateTime', 'occurrencePeriod', 'encounter', 'requester'],
  MedicationDispense: ['status', 'medicationCodeableConcept', 'medicationReference', 'context', 'whenHandedOver', 'whenPrepared', 'performer'],
  MedicationAdministration: ['status', 'medicationCodeableConcept', 'medicationReference', 'context', 'encounter', 'effectiveDateTime', 'effectivePeriod', 'performer'],
  MedicationRequest: ['status', 'medicationCodeableConcept', 'medicationReference', 'encounter', 'authoredOn', 'requester'],
  Procedure: ['status', 'encounter', 'code', 'performedDateTime', 'performedPeriod', 'performer'],
} as const satisfies Record<string, readonly string[]>;

/** A resource as the ingest hands it over: any JSON object with a resourceType. */
export interface ResourceLike {
  readonly resourceType: string;
  readonly [field: string]: unknown;
}

function pick(resource: ResourceLike, fields: readonly string[]): ResourceLike {
  const reduced: Record<string, unknown> = { resourceType: resource.resourceType };
  for (const field of fields) if (resource[field] !== undefined) reduced[field] = resource[field];
  return reduced as ResourceLike;
}

/** The fields of a resource that cohortRecordsForPatient reads, or null when it reads none of them (reduceForConversion). */
function fieldsReadOf(resource: ResourceLike): readonly string[] | null {
  switch (resource.resourceType) {
    case 'Patient':
    case 'Encounter':
    case 'Condition':
    case 'ServiceRequest':
    case 'MedicationDispense':
    case 'MedicationAdministration':
    case 'MedicationRequest':
    case 'Procedure':
      return fieldsRead[resource.resourceType];
    case 'Observation': {
      // The same tests, in the same order, as the observation loop of cohortRecordsForPatient.
      const observation = resource as unknown as Observation;
      if (hasCoding(observation.code, loinc, chiefComplaintLoinc) || hasCoding(observation.code, loinc, acuityLoinc)) {
        return fieldsRead.TriageObservation;
      }
      return isLaboratory(observation) ? fieldsRead.LabObservation : null;
    }
    default:
      return null;
  }
}

/**
 * The part of a resource that cohortRecordsForPatient reads, or null when it reads none of it: types it does
 * not use (MedicationStatement: home medications; Location, …) and Observations other than labs and the triage
 * complaint and acuity (vital signs, pain scores). Medication resources are read through medicationNameOf.
 */
export function reduceForConversion(resource: ResourceLike): ResourceLike | null {
  const fields = fieldsReadOf(resource);
  return fields === null ? null : pick(resource, fields);
}

/**
 * Whether cohortRecordsForPatient reads any of a resource (reduceForConversion would keep it). The whole resource
 * converts as its reduced form does (test/ingest/conversion-input.test.ts), without the copy.
 */
export function isReadByConversion(resource: ResourceLike): boolean {
  return fieldsReadOf(resource) !== null;
}

/** The name a Medication resource gives its product (for `medicationReference`), or null. */
export function medicationNameOf(medication: Medication): string | null {
  const name = medication.code?.text ?? codings(medication.code).find((coding) => coding.display)?.display;
  return typeof name === 'string' ? name : null;
}
