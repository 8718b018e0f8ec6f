/**
 * FHIR R4 Consent resources that take a patient out of the cohort (docs/privacy.md, "Consent at ingest"). Pure:
 * resources in, patient ids out; the ingest hashes the ids and records them (opt-out.ts recordConsentOptOuts).
 *
 * What is read, after FHIR R4 Consent (https://hl7.org/fhir/R4/consent.html):
 * - `status` must be `active` (Consent.status is a modifier element: draft, proposed, rejected, inactive and
 *   entered-in-error consents are not in force).
 * - The root `provision.type` must be `deny` ("Consent is denied for actions meeting these rules",
 *   http://hl7.org/fhir/consent-provision-type). The R4 element definition says the root rule carries no type,
 *   but R4-based implementation guides and exports put the base decision there; a Consent without a root type
 *   counts as a deny only when its `policyRule` is the v3-ActCode `OPTOUT` ("a grantor's dissent to the terms of
 *   agreement offered by a grantee").
 * - It must be about research or secondary use, by any of:
 *   - `scope` http://terminology.hl7.org/CodeSystem/consentscope#research ("Consent to participate in research
 *     protocol and information sharing required");
 *   - a `category` from the R4 consent-category value set meaning research access: consentcategorycodes
 *     `research`, `rsdid` (de-identified information access), `rsreid` (re-identifiable information access), or
 *     the same v3-ActCode concepts `RESEARCH`, `RSDID`, `RSREID`;
 *   - a root `provision.purpose` (v3 PurposeOfUse) of healthcare research: v3-ActReason `HRESCH` or one of its
 *     specializations (BIORCH, CLINTRCH, CLINTRCHNPC, CLINTRCHPC, PRECLINTRCH, DSRCH, POARCH, TRANSRCH).
 *   A Consent whose scope is `adr` (advance directive) or `treatment` is never about data use and never counts.
 * - A root `provision.period` that ended before `at` means the refusal has lapsed.
 *
 * Deliberately conservative, in the patient's favour: nested provisions (exceptions that permit something back)
 * and root `actor` or `data` restrictions are not interpreted, so such a refusal still excludes the patient.
 * Other purposes (operations, quality improvement, marketing) are not read as research.
 */

type Json = Record<string, unknown>;

const consentScopeSystem = 'http://terminology.hl7.org/CodeSystem/consentscope';
const consentCategorySystem = 'http://terminology.hl7.org/CodeSystem/consentcategorycodes';
const actCodeSystem = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const actReasonSystem = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

/** Codings (system|code) that mark a Consent as being about research use of the record. */
const researchCodings = new Set([
  `${consentScopeSystem}|research`,
  `${consentCategorySystem}|research`,
  `${consentCategorySystem}|rsdid`,
  `${consentCategorySystem}|rsreid`,
  `${actCodeSystem}|RESEARCH`,
  `${actCodeSystem}|RSDID`,
  `${actCodeSystem}|RSREID`,
]);

/** v3-ActReason HRESCH (healthcare research) and every concept under it. */
export const researchPurposesOfUse: readonly string[] = [
  'HRESCH',
  'BIORCH',
  'CLINTRCH',
  'CLINTRCHNPC',
  'CLINTRCHPC',
  'PRECLINTRCH',
  'DSRCH',
  'POARCH',
  'TRANSRCH',
];
const researchPurposes = new Set(researchPurposesOfUse.map((code) => `${actReasonSystem}|${code}`));

/** Scopes that are about care, not about the use of the record. */
const nonDataScopes = new Set([`${consentScopeSystem}|adr`, `${consentScopeSystem}|treatment`]);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** `system|code` of every coding of a CodeableConcept (or of a bare Coding, as provision.purpose is). */
function codingsOf(concept: unknown): string[] {
  if (!isObject(concept)) return [];
  const codings = 'coding' in concept ? asArray(concept.coding) : [concept];
  return codings.filter(isObject).flatMap((coding) =>
    typeof coding.system === 'string' && typeof coding.code === 'string' ? [`${coding.system}|${coding.code}`] : [],
  );
}

/** Why a Consent does or does not exclude its patient. */
export type ConsentReading =
  | { readonly excludes: true; readonly patientId: string; readonly reference: string }
  | { readonly excludes: true; readonly patientId: null; readonly reference: string | null; readonly problem: 'no-patient-reference' | 'unresolved-reference' }
  | {
      readonly excludes: false;
      readonly reason: 'not-a-consent' | 'not-active' | 'not-a-deny' | 'not-about-research' | 'refusal-lapsed';
    };

/**
 * The Patient logical id of a reference: `Patient/123`, `Patient/123/_history/2` or an absolute URL ending so.
 * Null for a contained (`#…`), `urn:uuid:` or identifier-only reference, which the ingest cannot match to a
 * Patient id by itself.
 */
export function patientIdOfReference(reference: string): string | null {
  const match = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/.exec(reference.trim());
  return match?.[1] ?? null;
}

function hasLapsed(period: unknown, at: Date): boolean {
  if (!isObject(period) || typeof period.end !== 'string') return false;
  const end = Date.parse(period.end);
  // A date without a time (YYYY-MM-DD) lasts the whole day.
  const endOfPeriod = /^\d{4}(-\d{2}(-\d{2})?)?$/.test(period.end) ? end + 24 * 3600_000 : end;
  return Number.isFinite(endOfPeriod) && endOfPeriod <= at.getTime();
}

/** Whether one resource is an active FHIR R4 Consent refusing research use, and whose. */
export function readResearchConsent(resource: unknown, options: { readonly at?: Date } = {}): ConsentReading {
  if (!isObject(resource) || resource.resourceType !== 'Consent') return { excludes: false, reason: 'not-a-consent' };
  if (resource.status !== 'active') return { excludes: false, reason: 'not-active' };
  const provision = isObject(resource.provision) ? resource.provision : undefined;
  const rootType = provision?.type;
  const optOutPolicy = codingsOf(resource.policyRule).includes(`${actCodeSystem}|OPTOUT`);
  if (!(rootType === 'deny' || (rootType === undefined && optOutPolicy))) return { excludes: false, reason: 'not-a-deny' };

  const scope = codingsOf(resource.scope);
  if (scope.some((coding) => nonDataScopes.has(coding))) return { excludes: false, reason: 'not-about-research' };
  const categories = asArray(resource.category).flatMap(codingsOf);
  const purposes = asArray(provision?.purpose).flatMap(codingsOf);
  const aboutResearch =
    [...scope, ...categories].some((coding) => researchCodings.has(coding)) || purposes.some((coding) => researchPurposes.has(coding));
  if (!aboutResearch) return { excludes: false, reason: 'not-about-research' };
  if (hasLapsed(provision?.period, options.at ?? new Date())) return { excludes: false, reason: 'refusal-lapsed' };

  // R4 names the patient `patient`; R5 renamed it `subject`, which some exports already use.
  const patient = isObject(resource.patient) ? resource.patient : isObject(resource.subject) ? resource.subject : undefined;
  const reference = typeof patient?.reference === 'string' ? patient.reference : null;
  if (reference === null) return { excludes: true, patientId: null, reference: null, problem: 'no-patient-reference' };
  const patientId = patientIdOfReference(reference);
  if (patientId === null) return { excludes: true, patientId: null, reference, problem: 'unresolved-reference' };
  return { excludes: true, patientId, reference };
}

/** The Patient reference (e.g. `Patient/123`) of a Consent that refuses research use; null for any other resource. */
export function researchRefusalPatientReference(resource: unknown, options: { readonly at?: Date } = {}): string | null {
  const reading = readResearchConsent(resource, options);
  return reading.excludes ? reading.reference : null;
}

/** What a scan of resources found. */
export interface ConsentExclusions {
  /** Patient logical ids to leave out of the cohort. */
  readonly patientIds: ReadonlySet<string>;
  /** Consents read, of any kind. */
  readonly consentsRead: number;
  /** Refusals whose patient could not be told (no reference, or not a `Patient/<id>` one): to report, not to drop. */
  readonly unresolved: number;
}

/**
 * Scans resources (an array, any iterable, or an async stream such as the NDJSON reader's) and returns the patient
 * ids that an active research-refusing Consent excludes. Resources other than Consent are skipped cheaply.
 */
export async function patientsExcludedByConsent(
  resources: Iterable<unknown> | AsyncIterable<unknown>,
  options: { readonly at?: Date } = {},
): Promise<ConsentExclusions> {
  const at = options.at ?? new Date();
  const patientIds = new Set<string>();
  let consentsRead = 0;
  let unresolved = 0;
  for await (const resource of resources) {
    if (!isObject(resource) || resource.resourceType !== 'Consent') continue;
    consentsRead += 1;
    const reading = readResearchConsent(resource, { at });
    if (!reading.excludes) continue;
    if (reading.patientId === null) unresolved += 1;
    else patientIds.add(reading.patientId);
  }
  return { patientIds, consentsRead, unresolved };
}
