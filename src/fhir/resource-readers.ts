/**
 * Small readers of FHIR R4 values that tolerate resources of the wrong shape: the input is whatever an export
 * contained. Shared by the ingest (fhir-to-cohort.ts) and the synthesizer's reading of the demo (templates.ts),
 * so both read a resource the same way.
 */
import type { CodeableConcept, Coding, Observation, Reference } from '@medplum/fhirtypes';

export function asArray<T>(value: T[] | T | undefined | null): T[] {
  if (Array.isArray(value)) return value;
  return value === undefined || value === null ? [] : [value];
}

// One compiled pattern per resource type: referencedId runs for nearly every resource.
const referencePatterns = new Map<string, RegExp>();

/** The id a reference names for a resource type: relative (`Encounter/123`), absolute or versioned (`…/_history/2`). */
export function referencedId(reference: Reference | undefined, resourceType: string): string | null {
  const text = typeof reference?.reference === 'string' ? reference.reference : null;
  if (!text) return null;
  let pattern = referencePatterns.get(resourceType);
  if (!pattern) {
    pattern = new RegExp(`(?:^|/)${resourceType}/([^/]+)(?:/_history/[^/]+)?$`);
    referencePatterns.set(resourceType, pattern);
  }
  const match = pattern.exec(text);
  return match?.[1] ?? null;
}

/** What identifies the referenced party: its identifier (system|value) when given, else the reference text. */
export function referenceKey(reference: Reference | undefined): string | null {
  if (!reference) return null;
  const identifier = reference.identifier;
  if (identifier && typeof identifier.value === 'string' && identifier.value) return `${identifier.system ?? ''}|${identifier.value}`;
  return typeof reference.reference === 'string' && reference.reference ? reference.reference : null;
}

/** Milliseconds since the epoch, or null for a missing or unreadable FHIR date/dateTime/instant. */
export function parseFhirTime(value: unknown): number | null {
  if (typeof value !== 'string' || value.length < 4) return null;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

export function codings(concept: CodeableConcept | undefined): Coding[] {
  return asArray(concept?.coding).filter((coding): coding is Coding => typeof coding === 'object' && coding !== null);
}

export function hasCoding(concept: CodeableConcept | undefined, system: string, code: string): boolean {
  return codings(concept).some((coding) => coding.system === system && coding.code === code);
}

/** The concept's text, else the first coding's display, else the first code; null when none is usable. */
export function conceptText(concept: CodeableConcept | undefined): string | null {
  if (typeof concept?.text === 'string' && concept.text.trim()) return concept.text.trim();
  for (const coding of codings(concept)) {
    if (typeof coding.display === 'string' && coding.display.trim()) return coding.display.trim();
  }
  for (const coding of codings(concept)) {
    if (typeof coding.code === 'string' && coding.code.trim()) return coding.code.trim();
  }
  return null;
}

export function isEnteredInError(resource: { status?: string }): boolean {
  return resource.status === 'entered-in-error';
}

export function isLaboratory(observation: Observation): boolean {
  return asArray(observation.category).some((category) => codings(category).some((coding) => coding.code === 'laboratory'));
}

/** When an observation was made: effective[x], else when it was issued. */
export function observationTime(observation: Observation): number | null {
  return (
    parseFhirTime(observation.effectiveDateTime) ??
    parseFhirTime(observation.effectiveInstant) ??
    parseFhirTime(observation.effectivePeriod?.start) ??
    parseFhirTime(observation.issued)
  );
}
