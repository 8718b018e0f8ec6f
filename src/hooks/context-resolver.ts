/**
 * Prefetch first, then the EHR's FHIR server, else 412 (https://cds-hooks.hl7.org/2.0/#prefetch-template):
 * - a key present with a resource is used as sent;
 * - a key present as `null` means the EHR has no such data: it is not fetched;
 * - a missing key is fetched from `fhirServer` with the template filled from the context;
 * - an OperationOutcome (sent or fetched) means the data is not available, and is not re-fetched
 *   ("to prevent the CDS Service from incurring an unneeded follow-up query").
 * Without the Patient nothing can be matched, so its absence is a 412; other keys degrade to "absent".
 *
 * The access token only ever goes into the Authorization header of requests to `fhirServer` (and to next-page
 * links under it); it is never logged, put in an error message, or kept on the returned resources.
 *
 * `fhirServer` comes from the request body, so it is checked against an allowlist (`allowFhirServer`). When a
 * key would have to be fetched from a server that is not allowed, the call is refused with 400
 * `fhir-server-not-allowed` before anything is fetched; when everything needed was prefetched, nothing is
 * fetched and the server is ignored (later pages of a prefetched Bundle are then not followed). Redirects are
 * never followed: a server on the list could otherwise send the token, or the request, anywhere.
 */
import type { Condition, Encounter, Observation, Patient, Resource } from '@medplum/fhirtypes';
import { Client } from 'fhir-kit-client';
import { AppError } from '../errors.js';
import type { FhirPatientContext } from '../fhir/patient-facts.js';
import type { HookRequest } from './cds-hooks.schema.js';
import { fillPrefetchTemplate } from './prefetch-template.js';
import { patientPrefetchKey, type ServiceDefinition } from './service-registry.js';

/** The part of a FHIR client the resolver uses; fhir-kit-client's `Client` has this shape. */
export interface FhirClient {
  /** GET a URL relative to the base URL (or an absolute one) and resolve to the parsed JSON body. */
  request(url: string, params: { options: { signal: AbortSignal } }): Promise<unknown>;
}

export interface FhirConnection {
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer …`; undefined sends no Authorization header. */
  readonly accessToken: string | undefined;
}

export type FhirClientFactory = (connection: FhirConnection) => FhirClient;

/** fhir-kit-client, with the bearer token only when the EHR gave one, and redirects answered rather than followed. */
export const defaultFhirClientFactory: FhirClientFactory = ({ baseUrl, accessToken }) => {
  // fetch would otherwise follow a 3xx to any host the network reaches, past the allowlist.
  const requestOptions = { redirect: 'manual' };
  return new Client(accessToken === undefined ? { baseUrl, requestOptions } : { baseUrl, bearerToken: accessToken, requestOptions });
};

export interface ResolveContextOptions {
  /** Total time for every fetch of this hook call, paging included. */
  readonly timeoutMs: number;
  readonly fhirClientFactory?: FhirClientFactory;
  /**
   * Whether this service may call that FHIR server (an allowlist). A refused server is a 400 when a key must be
   * fetched, and ignored when everything was prefetched. Unset: every server is allowed (unit tests).
   */
  readonly allowFhirServer?: (url: URL) => boolean;
  /** Pages read per search key, the first included (default 5). */
  readonly maxPages?: number;
  /** Resources kept per key (default 1000). */
  readonly maxResourcesPerKey?: number;
  /** Cancels the fetches, e.g. when the EHR closes the connection. */
  readonly signal?: AbortSignal;
}

/** The FHIR data of one hook call; what FHIR → patient facts reads. */
export interface ResolvedHookContext extends FhirPatientContext {
  readonly patient: Patient;
  readonly encounter?: Encounter;
  readonly encounterId?: string;
  readonly conditions: Condition[];
  readonly observations: Observation[];
  readonly draftOrders: Resource[];
  /** Prefetch keys that were expected but could not be had (not sent and not fetchable, failed, OperationOutcome). */
  readonly unavailable: string[];
  /** Search keys whose later pages could not all be read (page limit, deadline, a failed page). */
  readonly incomplete: string[];
}

interface JsonResource {
  readonly resourceType: string;
  readonly [field: string]: unknown;
}

type KeyOutcome =
  | { readonly kind: 'resources'; readonly resources: JsonResource[]; readonly complete: boolean }
  | { readonly kind: 'none' }
  | { readonly kind: 'unavailable'; readonly reason: string };

class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

const defaultMaxPages = 5;
/** The signal of a call that fetches nothing. */
const neverAborted = new AbortController().signal;
const defaultMaxResourcesPerKey = 1000;

function isJsonResource(value: unknown): value is JsonResource {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { resourceType?: unknown }).resourceType === 'string';
}

/** One compiled pattern per resource type, not one per reference read. */
const referencePatterns = new Map<string, RegExp>();

/** The id in `Patient/123`, `https://…/Patient/123` or `Patient/123/_history/2`, when it names that type. */
function referencedId(reference: unknown, resourceType: string): string | undefined {
  if (typeof reference !== 'object' || reference === null) return undefined;
  const value = (reference as { reference?: unknown }).reference;
  if (typeof value !== 'string') return undefined;
  let pattern = referencePatterns.get(resourceType);
  if (pattern === undefined) referencePatterns.set(resourceType, (pattern = new RegExp(`(?:^|/)${resourceType}/([^/]+)(?:/_history/[^/]+)?$`)));
  return pattern.exec(value)?.[1];
}

/** False only when the resource explicitly names another patient: data for someone else never becomes facts. */
function belongsToPatient(resource: JsonResource, patientId: string): boolean {
  const owner = referencedId(resource['subject'], 'Patient') ?? referencedId(resource['patient'], 'Patient');
  return owner === undefined || owner === patientId;
}

function nextPageUrl(bundle: JsonResource): string | undefined {
  const links = bundle['link'];
  if (!Array.isArray(links)) return undefined;
  for (const link of links) {
    if (typeof link === 'object' && link !== null && (link as { relation?: unknown }).relation === 'next') {
      const url = (link as { url?: unknown }).url;
      return typeof url === 'string' && url !== '' ? url : undefined;
    }
  }
  return undefined;
}

/** Resources of a search Bundle, without the OperationOutcomes a server may add (`search.mode = outcome`). */
function bundleResources(bundle: JsonResource): JsonResource[] {
  const entries = bundle['entry'];
  if (!Array.isArray(entries)) return [];
  return entries
    .map((entry: unknown) => (typeof entry === 'object' && entry !== null ? (entry as { resource?: unknown }).resource : undefined))
    .filter(isJsonResource)
    .filter((resource) => resource.resourceType !== 'OperationOutcome');
}

/** A next link is followed (with the token) only under the same FHIR base, so the token cannot leave it. */
function resolveUnderBase(link: string, baseUrl: string): string | undefined {
  try {
    const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
    const url = new URL(link, base);
    return url.origin === base.origin && url.pathname.startsWith(base.pathname) ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** Rejects as soon as the signal aborts, even when the client ignores it. */
function raceWithSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A short cause for an error message: no URL (it holds patient ids), no header, no token. */
function describeFetchFailure(error: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) {
    return signal.reason instanceof DeadlineExceeded ? `FHIR server did not answer within ${timeoutMs} ms` : 'request cancelled';
  }
  const status = (error as { response?: { status?: unknown } } | null)?.response?.status;
  if (typeof status === 'number' && status >= 400) return `FHIR server answered HTTP ${status}`;
  if (typeof status === 'number' && status >= 300) return `FHIR server answered a redirect (HTTP ${status}), which is not followed`;
  if (typeof status === 'number') return 'FHIR server answered with a body that is not JSON';
  const code = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' ? `could not reach the FHIR server (${code})` : 'could not reach the FHIR server';
}

interface Fetcher {
  readonly client: FhirClient;
  readonly baseUrl: string;
}

interface KeyTask {
  readonly key: string;
  readonly fetcher: Fetcher | undefined;
  /** Why fetching is impossible, when fetcher is undefined. */
  readonly noFetchReason: string;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly maxPages: number;
  readonly maxResources: number;
}

async function fetchJson(task: KeyTask, fetcher: Fetcher, url: string): Promise<{ ok: true; value: JsonResource } | { ok: false; reason: string }> {
  try {
    const body = await raceWithSignal(fetcher.client.request(url, { options: { signal: task.signal } }), task.signal);
    if (!isJsonResource(body)) return { ok: false, reason: 'FHIR server answered with something that is not a FHIR resource' };
    // Copy own enumerable fields only: fhir-kit-client hangs the Request (and its Authorization header) on the result.
    return { ok: true, value: { ...body } };
  } catch (error) {
    return { ok: false, reason: describeFetchFailure(error, task.signal, task.timeoutMs) };
  }
}

/** The resources of one value (sent or fetched), following next links while pages, time and budget allow. */
async function collect(task: KeyTask, first: JsonResource): Promise<KeyOutcome> {
  if (first.resourceType === 'OperationOutcome') {
    return { kind: 'unavailable', reason: `prefetch key '${task.key}' is an OperationOutcome` };
  }
  if (first.resourceType !== 'Bundle') return { kind: 'resources', resources: [first], complete: true };

  const resources = bundleResources(first);
  let next = nextPageUrl(first);
  let pages = 1;
  while (next !== undefined && resources.length < task.maxResources) {
    const url = task.fetcher === undefined ? undefined : resolveUnderBase(next, task.fetcher.baseUrl);
    if (task.fetcher === undefined || url === undefined || pages >= task.maxPages || task.signal.aborted) break;
    const page = await fetchJson(task, task.fetcher, url);
    if (!page.ok || page.value.resourceType !== 'Bundle') break;
    resources.push(...bundleResources(page.value));
    pages += 1;
    next = nextPageUrl(page.value);
  }
  const complete = next === undefined && resources.length <= task.maxResources;
  return { kind: 'resources', resources: resources.slice(0, task.maxResources), complete };
}

async function resolveKey(task: KeyTask, template: string, request: HookRequest): Promise<KeyOutcome> {
  const prefetch = request.prefetch;
  if (prefetch !== undefined && Object.hasOwn(prefetch, task.key)) {
    const value = prefetch[task.key];
    if (value === null || value === undefined) return { kind: 'none' };
    return collect(task, value);
  }
  const url = fillPrefetchTemplate(template, request.context);
  // An unfillable template (e.g. no encounterId in patient-view) asks for nothing: the EHR would not send it either.
  if (url === null) return { kind: 'none' };
  if (task.fetcher === undefined) return { kind: 'unavailable', reason: `prefetch key '${task.key}' was not sent and ${task.noFetchReason}` };
  const fetched = await fetchJson(task, task.fetcher, url);
  if (!fetched.ok) return { kind: 'unavailable', reason: `prefetch key '${task.key}': ${fetched.reason}` };
  return collect(task, fetched.value);
}

/** Whether answering needs a fetch: some key was not sent and its template can be filled from the context. */
function needsFetch(service: ServiceDefinition, request: HookRequest): boolean {
  return Object.entries(service.prefetch).some(
    ([key, template]) => !(request.prefetch !== undefined && Object.hasOwn(request.prefetch, key)) && fillPrefetchTemplate(template, request.context) !== null,
  );
}

function fetcherFor(service: ServiceDefinition, request: HookRequest, options: ResolveContextOptions): { fetcher: Fetcher | undefined; noFetchReason: string } {
  if (request.fhirServer === undefined) return { fetcher: undefined, noFetchReason: 'no fhirServer was given' };
  if (options.allowFhirServer !== undefined && !options.allowFhirServer(new URL(request.fhirServer))) {
    if (needsFetch(service, request)) {
      throw new AppError(
        400,
        'fhir-server-not-allowed',
        'This service does not call the fhirServer of this request (it is not on the service\'s FHIR server allowlist); send the data as prefetch or ask the operator to allow the server',
      );
    }
    return { fetcher: undefined, noFetchReason: 'the fhirServer is not allowed' };
  }
  const factory = options.fhirClientFactory ?? defaultFhirClientFactory;
  const client = factory({ baseUrl: request.fhirServer, accessToken: request.fhirAuthorization?.access_token });
  return { fetcher: { client, baseUrl: request.fhirServer }, noFetchReason: '' };
}

function pickPatient(outcome: KeyOutcome | undefined, patientId: string): Patient {
  const key = patientPrefetchKey;
  if (outcome === undefined || outcome.kind === 'none') {
    throw new AppError(412, 'prefetch-unavailable', `prefetch key '${key}' is null: the EHR has no Patient for context.patientId`);
  }
  if (outcome.kind === 'unavailable') throw new AppError(412, 'prefetch-unavailable', outcome.reason);
  const patients = outcome.resources.filter((resource) => resource.resourceType === 'Patient');
  // A Patient with another id is someone else's record: using it would put the wrong person's facts on a card.
  const patient = patients.find((resource) => resource['id'] === patientId) ?? patients.find((resource) => resource['id'] === undefined);
  if (patient === undefined) {
    const reason = patients.length > 0 ? 'the Patient does not match context.patientId' : 'no Patient resource in it';
    throw new AppError(412, 'prefetch-unavailable', `prefetch key '${key}': ${reason}`);
  }
  return patient as unknown as Patient;
}

function uniqueResources<T extends JsonResource>(resources: readonly T[]): T[] {
  const seen = new Set<string>();
  return resources.filter((resource) => {
    const id = resource['id'];
    if (typeof id !== 'string') return true;
    const identity = `${resource.resourceType}/${id}`;
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}

function draftOrderResources(request: HookRequest): Resource[] {
  if (request.hook !== 'order-select' && request.hook !== 'order-sign') return [];
  return (request.context.draftOrders.entry ?? []).flatMap((entry) => (entry.resource === undefined ? [] : [entry.resource as unknown as Resource]));
}

/**
 * Gathers the Patient, Encounter, Conditions, Observations and draft orders of a validated hook request.
 * Throws AppError 412 `prefetch-unavailable` when the Patient cannot be had, and 400 `fhir-server-not-allowed`
 * when a key must be fetched from a server `allowFhirServer` refuses.
 */
export async function resolveHookContext(service: ServiceDefinition, request: HookRequest, options: ResolveContextOptions): Promise<ResolvedHookContext> {
  const { patientId } = request.context;
  const encounterId = request.context.encounterId;
  const { fetcher, noFetchReason } = fetcherFor(service, request, options);

  // Without a server to fetch from nothing can be fetched (and a prefetched Bundle's next pages are not followed), so
  // the deadline's timer and the cancellation are only set up when there is one.
  const controller = fetcher === undefined ? null : new AbortController();
  const timer = controller === null ? undefined : setTimeout(() => controller.abort(new DeadlineExceeded()), options.timeoutMs);
  const cancel = () => controller?.abort(options.signal?.reason);
  if (controller !== null) {
    if (options.signal?.aborted) cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
  }

  const keys = Object.keys(service.prefetch);
  let outcomes: KeyOutcome[];
  try {
    outcomes = await Promise.all(
      keys.map((key) =>
        resolveKey(
          {
            key,
            fetcher,
            noFetchReason,
            signal: controller?.signal ?? neverAborted,
            timeoutMs: options.timeoutMs,
            maxPages: options.maxPages ?? defaultMaxPages,
            maxResources: options.maxResourcesPerKey ?? defaultMaxResourcesPerKey,
          },
          service.prefetch[key] ?? '',
          request,
        ),
      ),
    );
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (controller !== null) options.signal?.removeEventListener('abort', cancel);
  }

  const byKey = new Map(keys.map((key, index) => [key, outcomes[index]]));
  const patient = pickPatient(byKey.get(patientPrefetchKey), patientId);

  const unavailable: string[] = [];
  const incomplete: string[] = [];
  const others: JsonResource[] = [];
  for (const [key, outcome] of byKey) {
    if (key === patientPrefetchKey || outcome === undefined) continue;
    if (outcome.kind === 'unavailable') unavailable.push(key);
    if (outcome.kind !== 'resources') continue;
    if (!outcome.complete) incomplete.push(key);
    others.push(...outcome.resources.filter((resource) => belongsToPatient(resource, patientId)));
  }

  const encounter =
    encounterId === undefined
      ? undefined
      : others.find((resource) => resource.resourceType === 'Encounter' && (resource['id'] === encounterId || resource['id'] === undefined));

  return {
    patient,
    ...(encounter === undefined ? {} : { encounter: encounter as unknown as Encounter }),
    ...(encounterId === undefined ? {} : { encounterId }),
    conditions: uniqueResources(others.filter((resource) => resource.resourceType === 'Condition')) as unknown as Condition[],
    observations: uniqueResources(others.filter((resource) => resource.resourceType === 'Observation')) as unknown as Observation[],
    draftOrders: draftOrderResources(request),
    unavailable,
    incomplete,
  };
}
