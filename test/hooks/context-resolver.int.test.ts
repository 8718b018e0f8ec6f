/** The resolver against a real HTTP server on 127.0.0.1 that plays the EHR's FHIR server, through fhir-kit-client. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { hookRequestSchema, type HookName, type HookRequest } from '../../src/hooks/cds-hooks.schema.js';
import { resolveHookContext } from '../../src/hooks/context-resolver.js';
import { loadServiceRegistry } from '../../src/hooks/service-registry.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';

interface SeenRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly accept: string | undefined;
}

interface FakeEhr {
  readonly baseUrl: string;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

type Handler = (request: IncomingMessage, response: ServerResponse, ehr: { baseUrl: string }) => void;

const running: FakeEhr[] = [];
const registry = loadServiceRegistry();
const token = 'example-opaque-access-token';
const patient = { resourceType: 'Patient', id: 'ex-pt-4821', gender: 'female', birthDate: '1957-03-14' };

async function startEhr(handler: Handler): Promise<FakeEhr> {
  const seen: SeenRequest[] = [];
  const state = { baseUrl: '' };
  const server = createServer((request, response) => {
    seen.push({ path: request.url ?? '', authorization: request.headers.authorization, accept: request.headers.accept });
    handler(request, response, state);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
  const ehr: FakeEhr = {
    baseUrl: state.baseUrl,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  running.push(ehr);
  return ehr;
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/fhir+json' });
  response.end(JSON.stringify(body));
}

/** An example request pointed at `baseUrl`, without the prefetch keys named in `drop`. */
function requestFor(hook: HookName, baseUrl: string, drop: string[], prefetch: Record<string, unknown> = {}): HookRequest {
  const example = readExampleRequest(hook);
  const merged: Record<string, unknown> = { ...(example['prefetch'] as Record<string, unknown>), ...prefetch };
  for (const key of drop) delete merged[key];
  return hookRequestSchema.parse({ ...example, fhirServer: baseUrl, prefetch: merged });
}

function resolve(request: HookRequest, timeoutMs = 2000) {
  const service = registry.findService(request.hook);
  if (service === undefined) throw new Error('no service');
  return resolveHookContext(service, request, { timeoutMs });
}

afterEach(async () => {
  await Promise.all(running.splice(0).map((ehr) => ehr.close()));
});

describe('resolveHookContext against a FHIR server', () => {
  it('sends the bearer token when fhirAuthorization is given', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, patient));
    const resolved = await resolve(requestFor('encounter-start', ehr.baseUrl, ['patient']));
    expect(resolved.patient.id).toBe('ex-pt-4821');
    expect(ehr.seen).toEqual([{ path: '/fhir/Patient/ex-pt-4821', authorization: `Bearer ${token}`, accept: 'application/fhir+json' }]);
  });

  it('sends no Authorization header when fhirAuthorization is absent', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, patient));
    const request = requestFor('order-sign', ehr.baseUrl, ['patient']);
    expect(request.fhirAuthorization).toBeUndefined();
    await resolve(request);
    expect(ehr.seen).toHaveLength(1);
    expect(ehr.seen[0]?.authorization).toBeUndefined();
  });

  it('does not fetch null keys, and fetches only the missing one', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, { resourceType: 'Bundle', type: 'searchset', entry: [] }));
    // patient-view example: acuity is null; conditions is dropped so it must be fetched.
    const resolved = await resolve(requestFor('patient-view', ehr.baseUrl, ['conditions']));
    expect(ehr.seen.map((seen) => seen.path)).toEqual(['/fhir/Condition?patient=ex-pt-4821']);
    expect(resolved.unavailable).toEqual([]);
  });

  it('fetches a search with its query as the template writes it', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, { resourceType: 'Bundle', type: 'searchset' }));
    await resolve(requestFor('encounter-start', ehr.baseUrl, ['chiefComplaint']));
    expect(ehr.seen.map((seen) => seen.path)).toEqual(['/fhir/Observation?patient=ex-pt-4821&encounter=ex-enc-ed-3306&code=http://loinc.org|8661-1&_sort=-date&_count=1']);
  });

  it('follows a paged Bundle, with the token on every page', async () => {
    const condition = (id: string) => ({ resourceType: 'Condition', id, subject: { reference: 'Patient/ex-pt-4821' } });
    const ehr = await startEhr((request, response, { baseUrl }) => {
      if (request.url?.includes('_page=2')) json(response, 200, { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: condition('c-2') }] });
      else
        json(response, 200, {
          resourceType: 'Bundle',
          type: 'searchset',
          link: [{ relation: 'next', url: `${baseUrl}/Condition?patient=ex-pt-4821&_page=2` }],
          entry: [{ resource: condition('c-1') }],
        });
    });
    const resolved = await resolve(requestFor('encounter-start', ehr.baseUrl, ['conditions']));
    expect(resolved.conditions.map((item) => item.id)).toEqual(['c-1', 'c-2']);
    expect(resolved.incomplete).toEqual([]);
    expect(ehr.seen.map((seen) => [seen.path, seen.authorization])).toEqual([
      ['/fhir/Condition?patient=ex-pt-4821', `Bearer ${token}`],
      ['/fhir/Condition?patient=ex-pt-4821&_page=2', `Bearer ${token}`],
    ]);
  });

  it('keeps the token off the returned resources', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, patient));
    const resolved = await resolve(requestFor('encounter-start', ehr.baseUrl, ['patient']));
    expect(Object.getOwnPropertyNames(resolved.patient).sort()).toEqual(['birthDate', 'gender', 'id', 'resourceType']);
    expect(JSON.stringify(resolved)).not.toContain(token);
  });
});

describe('resolveHookContext: 412 for the Patient when the FHIR server fails', () => {
  const expect412 = async (request: HookRequest, message: RegExp, timeoutMs = 2000) => {
    const started = Date.now();
    await expect(resolve(request, timeoutMs)).rejects.toMatchObject({ statusCode: 412, code: 'prefetch-unavailable', message: expect.stringMatching(message) });
    expect(Date.now() - started).toBeLessThan(10_000);
  };

  it('when nothing listens on the port', async () => {
    const ehr = await startEhr(() => undefined);
    await ehr.close();
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /'patient': could not reach the FHIR server/);
  });

  it('when it answers 500', async () => {
    const ehr = await startEhr((_request, response) => json(response, 500, { resourceType: 'OperationOutcome', issue: [] }));
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /HTTP 500/);
  });

  it('when it answers with a body that is not JSON', async () => {
    const ehr = await startEhr((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/fhir+json' });
      response.end('<html>Service Unavailable</html>');
    });
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /not JSON/);
  });

  it('when it answers JSON that is not a FHIR resource', async () => {
    const ehr = await startEhr((_request, response) => json(response, 200, [1, 2, 3]));
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /not a FHIR resource/);
  });

  it('when it is slower than the deadline', async () => {
    const ehr = await startEhr(() => undefined);
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /did not answer within 300 ms/, 300);
    expect(ehr.seen).toHaveLength(1);
  });

  it('when the headers come in time but the body does not', async () => {
    const ehr = await startEhr((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/fhir+json' });
      response.write('{"resourceType":');
    });
    await expect412(requestFor('encounter-start', ehr.baseUrl, ['patient']), /did not answer within 300 ms/, 300);
  });

  it('while the other keys that failed are reported, not fatal', async () => {
    const ehr = await startEhr((request, response) => (request.url?.startsWith('/fhir/Patient/') ? json(response, 200, patient) : json(response, 503, {})));
    const resolved = await resolve(requestFor('encounter-start', ehr.baseUrl, ['patient', 'conditions', 'encounter']));
    expect(resolved.patient.id).toBe('ex-pt-4821');
    expect(resolved.unavailable.sort()).toEqual(['conditions', 'encounter']);
  });
});
