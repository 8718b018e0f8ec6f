import type { Coding } from '@medplum/fhirtypes';

/** ICD-9-CM code → the ICD-10-CM codes the CMS General Equivalence Mappings give for it. */
export type Icd9ToIcd10Map = ReadonlyMap<string, readonly string[]>;

/** Code systems that carry ICD-10-CM codes (HL7's, and MIMIC's own). */
export const icd10Systems: ReadonlySet<string> = new Set([
  'http://hl7.org/fhir/sid/icd-10-cm',
  'http://hl7.org/fhir/sid/icd-10',
  'http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-diagnosis-icd10',
]);

/** Code systems that carry ICD-9-CM codes. */
export const icd9Systems: ReadonlySet<string> = new Set([
  'http://hl7.org/fhir/sid/icd-9-cm',
  'http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-diagnosis-icd9',
]);

const icd10Pattern = /^[A-Z][0-9][0-9A-Z]{1,5}$/;
const icd9Pattern = /^(?:[0-9]{3,5}|V[0-9]{2,4}|E[0-9]{3,4})$/;

/** "r07.9 " → "R079"; null when it is not shaped like an ICD code. */
export function normalizeIcd10Code(code: string): string | null {
  const compact = code.trim().replace(/\./g, '').toUpperCase();
  return icd10Pattern.test(compact) ? compact : null;
}

export function normalizeIcd9Code(code: string): string | null {
  const compact = code.trim().replace(/\./g, '').toUpperCase();
  return icd9Pattern.test(compact) ? compact : null;
}

/** The 3-character ICD-10-CM category of a code. */
export function icd10Category(code: string): string {
  return code.slice(0, 3);
}

/** ICD-10-CM codes in these codings, ICD-9-CM ones mapped through the GEMs; sorted, without duplicates. */
export function icd10CodesFromCodings(codings: readonly Coding[], icd9Map: Icd9ToIcd10Map): string[] {
  const codes = new Set<string>();
  for (const coding of codings) {
    if (!coding.system || !coding.code) continue;
    if (icd10Systems.has(coding.system)) {
      const code = normalizeIcd10Code(coding.code);
      if (code) codes.add(code);
    } else if (icd9Systems.has(coding.system)) {
      const code = normalizeIcd9Code(coding.code);
      for (const mapped of (code && icd9Map.get(code)) || []) codes.add(mapped);
    }
  }
  return [...codes].sort();
}
