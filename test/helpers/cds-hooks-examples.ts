import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HookName } from '../../src/hooks/cds-hooks.schema.js';
import { cdsHooksDirectory } from '../../src/paths.js';

type Json = Record<string, any>;

/** A fresh copy of cds-hooks/examples/<hook>.json, free to mutate in a test. */
export function readExampleRequest(hook: HookName): Record<string, unknown> {
  return JSON.parse(readFileSync(join(cdsHooksDirectory, 'examples', `${hook}.json`), 'utf8')) as Record<string, unknown>;
}

/** A searchset Bundle holding one chief complaint Observation (LOINC 8661-1) with this text. */
export function chiefComplaintBundle(patientId: string, text: string): Json {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8661-1' }] }, subject: { reference: `Patient/${patientId}` }, valueString: text } }],
  };
}

export interface PrefetchedRequestOptions {
  /** Patient fields beside resourceType and id (which is context.patientId), e.g. gender and birthDate. */
  readonly patient: Readonly<Record<string, unknown>>;
  /** The chief complaint's text; without one the `chiefComplaint` key is null. */
  readonly chiefComplaint?: string;
  readonly hookInstance?: string;
  /** Context fields that replace the example's (patientId, encounterId, …) before the prefetch is built. */
  readonly context?: Readonly<Record<string, unknown>>;
  /** Prefetch keys that replace the ones built here. */
  readonly prefetch?: Readonly<Record<string, unknown>>;
}

/**
 * The example request of a hook with everything prefetched and no `fhirServer`, so nothing is fetched: the
 * Patient, the chief complaint when given, and `null` (no data) for conditions, encounter and acuity.
 */
export function prefetchedRequest(hook: HookName, options: PrefetchedRequestOptions): Json {
  const request = readExampleRequest(hook) as Json;
  delete request.fhirServer;
  delete request.fhirAuthorization;
  if (options.hookInstance !== undefined) request.hookInstance = options.hookInstance;
  Object.assign(request.context, options.context);
  const patientId = request.context.patientId as string;
  request.prefetch = {
    patient: { resourceType: 'Patient', id: patientId, ...options.patient },
    conditions: null,
    encounter: null,
    chiefComplaint: options.chiefComplaint === undefined ? null : chiefComplaintBundle(patientId, options.chiefComplaint),
    acuity: null,
    ...options.prefetch,
  };
  return request;
}
