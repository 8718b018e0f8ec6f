import { createHmac } from 'node:crypto';

/** What an identifier names; each kind hashes in its own space so equal raw values never collide. */
export type IdentifierKind = 'patient' | 'encounter' | 'specimen' | 'clinician';

/** Turns a source identifier into a stable, non-reversible cohort key. */
export type KeyHasher = (kind: IdentifierKind, value: string) => string;

/** Ages above 89 are reported as 90 (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)). */
export const maximumReportedAge = 90;

const keyLength = 32;

const secrets = new WeakMap<KeyHasher, string>();

/** A keyed HMAC-SHA256 hasher: without the secret, keys cannot be recomputed from MIMIC or EHR identifiers. */
export function createKeyHasher(secret: string): KeyHasher {
  if (secret.length < 32) throw new Error('the patient hash secret must be at least 32 characters');
  const hasher: KeyHasher = (kind, value) => createHmac('sha256', secret).update(`${kind}\u0000${value}`).digest('hex').slice(0, keyLength);
  secrets.set(hasher, secret);
  return hasher;
}

/**
 * The secret of a hasher made by createKeyHasher, so that the ingest's worker threads can make the same
 * hasher (a function cannot be sent to a thread); undefined for any other function.
 */
export function keyHasherSecret(hasher: KeyHasher): string | undefined {
  return secrets.get(hasher);
}

/** The same keys, each computed once while the cache lasts (a specimen is named by every result drawn from it). */
export function cachingKeyHasher(hasher: KeyHasher): { readonly hasher: KeyHasher; clear(): void } {
  const cache = new Map<string, string>();
  return {
    hasher: (kind, value) => {
      const key = `${kind}\u0000${value}`;
      let hashed = cache.get(key);
      if (hashed === undefined) {
        hashed = hasher(kind, value);
        cache.set(key, hashed);
      }
      return hashed;
    },
    clear: () => cache.clear(),
  };
}

/** Whole years from birth to the visit, counted on the calendar dates as written; above 89 becomes 90. */
export function ageAtVisit(birthDate: string, visitStart: string): number | null {
  const birth = calendarDate(birthDate);
  const visit = calendarDate(visitStart);
  if (!birth || !visit) return null;
  let years = visit.year - birth.year;
  if (visit.month < birth.month || (visit.month === birth.month && visit.day < birth.day)) years -= 1;
  if (years < 0) return null;
  return Math.min(years, maximumReportedAge);
}

/** The date part of a FHIR date or dateTime as written, so a time-zone offset never moves it a day. */
export function calendarDate(value: string): { year: number; month: number; day: number } | null {
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value);
  if (!match) return null;
  // A partial date (YYYY or YYYY-MM) counts from the start of the period it names.
  return { year: Number(match[1]), month: Number(match[2] ?? '1'), day: Number(match[3] ?? '1') };
}

/**
 * Identifier shapes that free text (a triage complaint typed by a nurse) may carry, in the order they are removed:
 * URLs and e-mail addresses before the numbers inside them. HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i): phone and
 * fax numbers, e-mail, SSN, URLs, IP addresses, dates (all but the year), record and account numbers.
 */
const identifierShapes: readonly RegExp[] = [
  /\b(?:https?:\/\/|www\.)\S+/gi,
  /[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/gi,
  /\b\d{1,3}(?:\.\d{1,3}){3}\b/g,
  /\b\d{3}-\d{2}-\d{4}\b/g,
  /(?:\+?1[\s.-]?)?(?:\(\d{3}\)|\b\d{3})[\s.-]?\d{3}[\s.-]\d{4}\b/g,
  /\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?\b/g,
  /\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b/g,
  /\b\d{6,}\b/g,
];

/** Free text with identifier-shaped parts replaced by `[removed]`. Names are not recognised (docs/privacy.md). */
export function removeIdentifierShapes(text: string): string {
  return identifierShapes.reduce((current, shape) => current.replace(shape, '[removed]'), text);
}

/**
 * Words a triage complaint uses that neither the complaint vocabulary nor the ICD-10-CM descriptions hold:
 * abbreviations (imaging, "cc", "vs", "w/o") and the small words between clinical terms.
 */
export const triageWords: readonly string[] = [
  'a', 'an', 'and', 'or', 'of', 'on', 'in', 'at', 'to', 'for', 'from', 'with', 'without', 'w', 'o', 'no', 'not', 'new', 'old',
  'x', 's', 'p', 'r', 'l', 'b', 'lt', 'rt', 'bl', 'bil', 'bilat', 'c', 'cc', 'vs', 'hx', 'h', 'sx', 'rx', 'tx', 'dx', 'eval', 'evaluation',
  'ct', 'cta', 'mri', 'xr', 'us', 'ekg', 'ecg', 'echo', 'iv', 'po', 'pt', 'pts', 'hold', 'refill', 'check', 'recheck', 'sent', 'by', 'pcp',
  'osh', 'ems', 'bibems', 'bib', 'ed', 'er', 'clinic', 'rehab', 'nursing', 'home', 'nh', 'snf', 'post', 'op', 'postop', 'pre', 'after', 'since',
  'days', 'day', 'weeks', 'week', 'hours', 'hour', 'hrs', 'hr', 'months', 'month', 'yesterday', 'today', 'tonight', 'last', 'night', 'am', 'pm',
  'bedside', 'family', 'husband', 'wife', 'son', 'daughter', 'mother', 'father', 'per', 'states', 'reports', 'denies', 'removed',
];

/** The lower-case words (letters and digits) of a text, as scrubComplaintText and its word list split them. */
export function complaintWords(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * A free-text complaint as it may be stored (docs/privacy.md, "What is stored"): identifier shapes removed
 * (removeIdentifierShapes), then every word that is not a word of clinical language — the complaint vocabulary, the
 * ICD-10-CM descriptions, `triageWords` — replaced by `[removed]`, so that a name, a health-plan or account number
 * typed into the complaint ("chest pain, wife Mary at bedside") is not kept. Numbers of up to three digits ("x 3 days")
 * stay. A name that is also such a word ("Brown", "Smith") stays: the known limit of a word list.
 */
export function scrubComplaintText(text: string, clinicalWords: Pick<ReadonlySet<string>, 'has'>): string {
  return removeIdentifierShapes(text)
    .replace(/[\p{L}\p{N}]+/gu, (word) => {
      if (/^\p{N}{1,3}$/u.test(word)) return word;
      return clinicalWords.has(word.normalize('NFKC').toLowerCase()) ? word : '\u0000';
    })
    // A run of removed words (a first and a last name) becomes one marker.
    .replace(/\u0000(?:[\s.'-]*\u0000)*/g, '[removed]')
    .replace(/\[removed\](?:[\s,;]*\[removed\])+/g, '[removed]');
}
