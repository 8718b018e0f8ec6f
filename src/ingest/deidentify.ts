import { createHmac } from 'node:crypto';

/** What an identifier names; each kind hashes in its own space so equal raw values never collide. */
export type IdentifierKind = 'patient' | 'encounter' | 'specimen' | 'clinician';

/** Turns a source identifier into a stable, non-reversible cohort key. */
export type KeyHasher = (kind: IdentifierKind, value: string) => string;

/** Ages above 89 are reported as 90 (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)). */
export const maximumReportedAge = 90;

const keyLength = 32;

/** A keyed HMAC-SHA256 hasher: without the secret, keys cannot be recomputed from MIMIC or EHR identifiers. */
export function createKeyHasher(secret: string): KeyHasher {
  if (secret.length < 32) throw new Error('the patient hash secret must be at least 32 characters');
  return (kind, value) => createHmac('sha256', secret).update(`${kind}\u0000${value}`).digest('hex').slice(0, keyLength);
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
