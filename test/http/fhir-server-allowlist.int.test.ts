/** The fhirServer of a request is not trusted: the app fetches only from CDS_FHIR_SERVER_ALLOWLIST, and follows no redirect. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';
import { buildLoggedApp, openRulesOnlyDatabase, type LoggedApp, type TestDatabase } from '../helpers/rules-only-app.js';

interface FakeFhirServer {
  readonly baseUrl: string;
  readonly seen: { path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

async function startFhirServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<FakeFhirServer> {
  const seen: FakeFhirServer['seen'] = [];
  const server = createServer((request, response) => {
    seen.push({ path: request.url ?? '', authorization: request.headers.authorization });
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const token = 'ehr-access-token-for-this-call-only';
const patient = { resourceType: 'Patient', id: 'ex-pt-4821', gender: 'female', birthDate: '1957-03-14' };

function fhirJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { 'content-type': 'application/fhir+json' });
  response.end(JSON.stringify(body));
}

/** The patient-view example pointed at `fhirServer`, without the prefetch keys in `drop` (all when omitted). */
function patientView(fhirServer: string, drop?: string[]): Record<string, any> {
  const request = readExampleRequest('patient-view') as Record<string, any>;
  request.fhirServer = fhirServer;
  request.fhirAuthorization = { ...request.fhirAuthorization, access_token: token };
  if (drop === undefined) delete request.prefetch;
  else for (const key of drop) delete request.prefetch[key];
  return request;
}

describe('fhirServer allowlist (app)', () => {
  let database: TestDatabase;
  let allowed: FakeFhirServer;
  let offList: FakeFhirServer;
  let redirecting: FakeFhirServer;
  let logged: LoggedApp;

  beforeAll(async () => {
    database = await openRulesOnlyDatabase();
    allowed = await startFhirServer((request, response) =>
      request.url === '/fhir/Patient/ex-pt-4821' ? fhirJson(response, patient) : fhirJson(response, { resourceType: 'Bundle', type: 'searchset', entry: [] }),
    );
    offList = await startFhirServer((_request, response) => fhirJson(response, patient));
    // On the list, but answers every request with a redirect to the server that is not.
    redirecting = await startFhirServer((request, response) => {
      response.writeHead(302, { location: `${offList.baseUrl}${(request.url ?? '').replace(/^\/fhir/, '')}` });
      response.end();
    });
    logged = await buildLoggedApp(database, { fhirServerAllowlist: [allowed.baseUrl, redirecting.baseUrl] });
  });

  afterAll(async () => {
    await logged.app.close();
    await Promise.all([allowed.close(), offList.close(), redirecting.close()]);
    await database.close();
  });

  beforeEach(() => {
    for (const server of [allowed, offList, redirecting]) server.seen.length = 0;
  });

  const post = (payload: object) => logged.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload });

  it('refuses with 400, fetching nothing, a request that would make it fetch from the cloud metadata address', async () => {
    const response = await post(patientView('http://169.254.169.254/latest', ['patient']));
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'fhir-server-not-allowed' });
    expect(response.body).not.toContain(token);
  });

  it('refuses a server off the list, and that server sees no request', async () => {
    for (const fhirServer of [offList.baseUrl, `${allowed.baseUrl}/../admin`, `${allowed.baseUrl}x`, allowed.baseUrl.replace('127.0.0.1', 'localhost')]) {
      const response = await post(patientView(fhirServer, ['conditions']));
      expect({ fhirServer, status: response.statusCode, error: response.json().error }).toEqual({ fhirServer, status: 400, error: 'fhir-server-not-allowed' });
    }
    expect(offList.seen).toEqual([]);
    expect(allowed.seen).toEqual([]);
  });

  it('fetches from a server on the list, with the token of the request', async () => {
    const response = await post(patientView(allowed.baseUrl));
    expect(response.statusCode).toBe(200);
    expect(allowed.seen.map((seen) => seen.path)).toContain('/fhir/Patient/ex-pt-4821');
    for (const seen of allowed.seen) expect(seen.authorization).toBe(`Bearer ${token}`);
  });

  it('ignores a server off the list when everything was prefetched: nothing to fetch, nothing refused', async () => {
    const response = await post(patientView(offList.baseUrl, []));
    expect(response.statusCode).toBe(200);
    expect(offList.seen).toEqual([]);
  });

  it('does not follow a redirect from a server on the list to one that is not', async () => {
    const response = await post(patientView(redirecting.baseUrl, ['patient']));
    expect(response.statusCode).toBe(412);
    expect(response.json().message).toMatch(/redirect \(HTTP 302\), which is not followed/);
    expect(redirecting.seen).toHaveLength(1);
    expect(offList.seen).toEqual([]);
  });

  it('never logs the access token', async () => {
    await post(patientView('http://169.254.169.254/latest', ['patient']));
    await post(patientView(allowed.baseUrl));
    const text = logged.lines.join('');
    expect(text).not.toContain(token);
    expect(text).toContain('fhirServer is not on CDS_FHIR_SERVER_ALLOWLIST');
  });
});
