import { describe, expect, it } from '@jest/globals';
import { hookRequestSchema, type HookName, type HookRequest } from '../../src/hooks/cds-hooks.schema.js';
import { resolveHookContext, type FhirClientFactory, type FhirConnection, type ResolveContextOptions } from '../../src/hooks/context-resolver.js';
import { loadServiceRegistry, type ServiceDefinition } from '../../src/hooks/service-registry.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';

const registry = loadServiceRegistry();
const fhirServer = 'https://ehr.example.org/fhir/R4';

function serviceFor(hook: HookName): ServiceDefinition {
  const service = registry.findService(hook);
  if (service === undefined) throw new Error(`no service ${hook}`);
  return service;
}

/** An example request with its prefetch changed: a key set to undefined is removed. */
function requestFor(hook: HookName, prefetch: Record<string, unknown> = {}, changes: Record<string, unknown> = {}): HookRequest {
  const example = { ...readExampleRequest(hook), ...changes };
  const merged: Record<string, unknown> = { ...(example['prefetch'] as Record<string, unknown>), ...prefetch };
  for (const [key, value] of Object.entries(prefetch)) if (value === undefined) delete merged[key];
  return hookRequestSchema.parse({ ...example, prefetch: merged });
}

interface FakeCall {
  readonly url: string;
  readonly connection: FhirConnection;
}

/** A FHIR client answering from a table of relative URLs; anything else is a 404. */
function fakeFhir(answers: Record<string, unknown | (() => Promise<unknown>)>): { factory: FhirClientFactory; calls: FakeCall[] } {
  const calls: FakeCall[] = [];
  const factory: FhirClientFactory = (connection) => ({
    request: async (url) => {
      calls.push({ url, connection });
      const answer = answers[url];
      if (answer === undefined) throw Object.assign(new Error(`HTTP 404: GET ${url}`), { response: { status: 404, data: {} } });
      return typeof answer === 'function' ? (answer as () => Promise<unknown>)() : structuredClone(answer);
    },
  });
  return { factory, calls };
}

function options(factory: FhirClientFactory, extra: Partial<ResolveContextOptions> = {}): ResolveContextOptions {
  return { timeoutMs: 1000, fhirClientFactory: factory, ...extra };
}

const patient = { resourceType: 'Patient', id: 'ex-pt-4821', gender: 'female', birthDate: '1957-03-14' };
const operationOutcome = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'processing' }] };

function condition(id: string, patientId = 'ex-pt-4821') {
  return { resourceType: 'Condition', id, subject: { reference: `Patient/${patientId}` }, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'R10.9' }] } };
}

function searchset(resources: unknown[], next?: string) {
  return { resourceType: 'Bundle', type: 'searchset', ...(next === undefined ? {} : { link: [{ relation: 'next', url: next }] }), entry: resources.map((resource) => ({ resource })) };
}

describe('resolveHookContext: prefetch', () => {
  it('uses prefetched data without calling the FHIR server', async () => {
    const fhir = fakeFhir({});
    const resolved = await resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start'), options(fhir.factory));
    expect(fhir.calls).toEqual([]);
    expect(resolved.patient.id).toBe('ex-pt-4821');
    expect(resolved.encounter?.id).toBe('ex-enc-ed-3306');
    expect(resolved.encounterId).toBe('ex-enc-ed-3306');
    expect(resolved.conditions.map((item) => item.id)).toEqual(['ex-cond-1', 'ex-cond-2', 'ex-cond-3', 'ex-cond-4']);
    expect(resolved.observations.map((item) => item.id)).toEqual(['ex-obs-cc-2', 'ex-obs-acuity-2']);
    expect(resolved.draftOrders).toEqual([]);
    expect(resolved.unavailable).toEqual([]);
    expect(resolved.incomplete).toEqual([]);
  });

  it('does not fetch a null key, nor one whose template cannot be filled', async () => {
    const fhir = fakeFhir({});
    // patient-view: acuity is null and there is no encounterId for the encounter key.
    const resolved = await resolveHookContext(serviceFor('patient-view'), requestFor('patient-view'), options(fhir.factory));
    expect(fhir.calls).toEqual([]);
    expect(resolved.encounter).toBeUndefined();
    expect(resolved).not.toHaveProperty('encounterId');
    expect(resolved.observations.map((item) => item.id)).toEqual(['ex-obs-cc-1']);
    expect(resolved.unavailable).toEqual([]);
  });

  it('treats a prefetched OperationOutcome as unavailable without fetching', async () => {
    const fhir = fakeFhir({});
    const resolved = await resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start', { chiefComplaint: operationOutcome }), options(fhir.factory));
    expect(fhir.calls).toEqual([]);
    expect(resolved.unavailable).toEqual(['chiefComplaint']);
    expect(resolved.observations.map((item) => item.id)).toEqual(['ex-obs-acuity-2']);
  });

  it('skips the OperationOutcome entries of a search Bundle', async () => {
    const bundle = searchset([condition('c-1'), operationOutcome]);
    const resolved = await resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start', { conditions: bundle }), options(fakeFhir({}).factory));
    expect(resolved.conditions.map((item) => item.id)).toEqual(['c-1']);
  });

  it('extracts the draft orders of order-select and order-sign', async () => {
    const resolved = await resolveHookContext(serviceFor('order-select'), requestFor('order-select'), options(fakeFhir({}).factory));
    expect(resolved.draftOrders.map((item) => `${item.resourceType}/${item.id ?? ''}`)).toEqual([
      'ServiceRequest/ex-sr-lipase-1',
      'ServiceRequest/ex-sr-ct-1',
      'MedicationRequest/ex-mr-ondansetron-1',
    ]);
  });

  it("drops resources that name another patient and an Encounter that is not context.encounterId", async () => {
    const request = requestFor('encounter-start', {
      conditions: searchset([condition('mine'), condition('theirs', 'someone-else'), { resourceType: 'Condition', id: 'no-subject' }]),
      encounter: { resourceType: 'Encounter', id: 'another-visit', subject: { reference: 'Patient/ex-pt-4821' } },
    });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fakeFhir({}).factory));
    expect(resolved.conditions.map((item) => item.id)).toEqual(['mine', 'no-subject']);
    expect(resolved.encounter).toBeUndefined();
    expect(resolved.encounterId).toBe('ex-enc-ed-3306');
  });

  it('removes duplicates that two keys return', async () => {
    const observation = { resourceType: 'Observation', id: 'same', code: { text: 'x' } };
    const request = requestFor('encounter-start', { chiefComplaint: searchset([observation]), acuity: searchset([observation]) });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fakeFhir({}).factory));
    expect(resolved.observations.map((item) => item.id)).toEqual(['same']);
  });
});

describe('resolveHookContext: fetching what was not sent', () => {
  it('fetches a missing key from fhirServer with the bearer token', async () => {
    const fhir = fakeFhir({ 'Condition?patient=ex-pt-4821': searchset([condition('fetched')]) });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start', { conditions: undefined }), options(fhir.factory));
    expect(fhir.calls).toEqual([{ url: 'Condition?patient=ex-pt-4821', connection: { baseUrl: fhirServer, accessToken: 'example-opaque-access-token' } }]);
    expect(resolved.conditions.map((item) => item.id)).toEqual(['fetched']);
  });

  it('fetches without a token when fhirAuthorization is absent', async () => {
    const fhir = fakeFhir({ 'Patient/ex-pt-4821': patient });
    const resolved = await resolveHookContext(serviceFor('order-sign'), requestFor('order-sign', { patient: undefined }), options(fhir.factory));
    expect(fhir.calls).toEqual([{ url: 'Patient/ex-pt-4821', connection: { baseUrl: fhirServer, accessToken: undefined } }]);
    expect(resolved.patient.gender).toBe('female');
  });

  it('reports a key that fails to fetch as unavailable and carries on', async () => {
    const fhir = fakeFhir({ 'Condition?patient=ex-pt-4821': operationOutcome });
    const request = requestFor('encounter-start', { conditions: undefined, acuity: undefined });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory));
    expect(resolved.unavailable.sort()).toEqual(['acuity', 'conditions']);
    expect(resolved.conditions).toEqual([]);
  });

  it('follows next links under the same base, up to the page limit', async () => {
    const page = (n: number) => `${fhirServer}/Condition?patient=ex-pt-4821&_page=${n}`;
    const fhir = fakeFhir({
      'Condition?patient=ex-pt-4821': searchset([condition('c-1')], page(2)),
      [page(2)]: searchset([condition('c-2')], page(3)),
      [page(3)]: searchset([condition('c-3')], page(4)),
    });
    const request = requestFor('encounter-start', { conditions: undefined });
    const all = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory, { maxPages: 3 }));
    expect(all.conditions.map((item) => item.id)).toEqual(['c-1', 'c-2', 'c-3']);
    expect(all.incomplete).toEqual(['conditions']);
    const two = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory, { maxPages: 2 }));
    expect(two.conditions.map((item) => item.id)).toEqual(['c-1', 'c-2']);
  });

  it('follows the next link of a prefetched Bundle', async () => {
    const next = `${fhirServer}/Condition?patient=ex-pt-4821&_page=2`;
    const fhir = fakeFhir({ [next]: searchset([condition('c-2')]) });
    const request = requestFor('encounter-start', { conditions: searchset([condition('c-1')], next) });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory));
    expect(resolved.conditions.map((item) => item.id)).toEqual(['c-1', 'c-2']);
    expect(resolved.incomplete).toEqual([]);
  });

  it.each([
    ['another host', 'https://attacker.example.com/fhir/R4/Condition?page=2'],
    ['another path on the same host', 'https://ehr.example.org/other/Condition?page=2'],
    ['a path that climbs out of the base', 'https://ehr.example.org/fhir/R4/../../other?page=2'],
  ])('never sends the token to %s', async (_name, next) => {
    const fhir = fakeFhir({});
    const request = requestFor('encounter-start', { conditions: searchset([condition('c-1')], next) });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory));
    expect(fhir.calls).toEqual([]);
    expect(resolved.conditions.map((item) => item.id)).toEqual(['c-1']);
    expect(resolved.incomplete).toEqual(['conditions']);
  });

  it('refuses with 400, fetching nothing, when a key must come from a FHIR server allowFhirServer refuses', async () => {
    const fhir = fakeFhir({ 'Condition?patient=ex-pt-4821': searchset([condition('c-1')]) });
    const request = requestFor('encounter-start', { conditions: undefined });
    const refused = resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory, { allowFhirServer: (url) => url.hostname !== 'ehr.example.org' }));
    await expect(refused).rejects.toMatchObject({ statusCode: 400, code: 'fhir-server-not-allowed' });
    expect(fhir.calls).toEqual([]);
  });

  it('ignores a refused FHIR server when everything was prefetched, and does not follow next links to it', async () => {
    const fhir = fakeFhir({ 'Condition?page=2': searchset([condition('c-2')]) });
    const request = requestFor('encounter-start', { conditions: searchset([condition('c-1')], `${fhirServer}/Condition?page=2`) });
    const resolved = await resolveHookContext(serviceFor('encounter-start'), request, options(fhir.factory, { allowFhirServer: () => false }));
    expect(fhir.calls).toEqual([]);
    expect(resolved.conditions.map((item) => item.id)).toEqual(['c-1']);
    expect(resolved.incomplete).toEqual(['conditions']);
  });

  it('gives up on a client that ignores the abort signal when the deadline passes', async () => {
    const never = () => new Promise<unknown>(() => undefined);
    const fhir = fakeFhir({ 'Condition?patient=ex-pt-4821': never });
    const started = Date.now();
    const resolved = await resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start', { conditions: undefined }), options(fhir.factory, { timeoutMs: 100 }));
    expect(resolved.unavailable).toEqual(['conditions']);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('resolveHookContext: 412 when the Patient cannot be had', () => {
  const expect412 = async (request: HookRequest, message: RegExp, extra: Partial<ResolveContextOptions> = {}, answers: Record<string, unknown> = {}) => {
    const promise = resolveHookContext(serviceFor(request.hook), request, options(fakeFhir(answers).factory, extra));
    await expect(promise).rejects.toMatchObject({ statusCode: 412, code: 'prefetch-unavailable', message: expect.stringMatching(message) });
  };

  it('when it was not sent and there is no fhirServer', async () => {
    const request = readExampleRequest('order-sign');
    delete request['fhirServer'];
    delete (request['prefetch'] as Record<string, unknown>)['patient'];
    await expect412(hookRequestSchema.parse(request), /prefetch key 'patient' was not sent and no fhirServer was given/);
  });

  it('when it is null', async () => {
    await expect412(requestFor('encounter-start', { patient: null }), /'patient' is null/);
  });

  it('when it is an OperationOutcome', async () => {
    await expect412(requestFor('encounter-start', { patient: operationOutcome }), /'patient' is an OperationOutcome/);
  });

  it('when the prefetched Patient is someone else', async () => {
    await expect412(requestFor('encounter-start', { patient: { ...patient, id: 'someone-else' } }), /does not match context.patientId/);
  });

  it('when the key holds no Patient', async () => {
    await expect412(requestFor('encounter-start', { patient: { resourceType: 'Practitioner', id: 'x' } }), /no Patient resource/);
  });

  it('when the FHIR server answers 404', async () => {
    await expect412(requestFor('encounter-start', { patient: undefined }), /'patient': FHIR server answered HTTP 404/);
  });


  it('when the caller cancels', async () => {
    const controller = new AbortController();
    controller.abort();
    const answers = { 'Patient/ex-pt-4821': () => new Promise(() => undefined) };
    await expect412(requestFor('encounter-start', { patient: undefined }), /cancelled/, { signal: controller.signal }, answers);
  });

  it('never puts the access token in the message', async () => {
    const promise = resolveHookContext(serviceFor('encounter-start'), requestFor('encounter-start', { patient: undefined }), options(fakeFhir({}).factory));
    const error = await promise.catch((caught: unknown) => caught);
    expect(String((error as Error).message)).not.toContain('example-opaque-access-token');
    expect(JSON.stringify(error)).not.toContain('example-opaque-access-token');
  });
});
