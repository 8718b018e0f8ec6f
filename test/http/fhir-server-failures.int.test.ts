/**
 * The EHR's FHIR server misbehaving, seen from the hook endpoint: stalled, slower than the deadline, 500,
 * not JSON, JSON that is not FHIR, or nothing listening. The hook answers within the deadline of
 * FHIR_FETCH_TIMEOUT_MS: 412 when the Patient cannot be had, 200 without the data when only an optional key is
 * missing (CDS Hooks 2.0 §Prefetch data: the service fetches what it needs, and answers 412 when it cannot).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { assertValidResponse } from '../../src/hooks/cds-hooks.schema.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { buildLoggedApp, openRulesOnlyDatabase, type LoggedApp, type TestDatabase } from '../helpers/rules-only-app.js';

type Behaviour = 'stalls' | 'answers after the deadline' | 'answers 500' | 'answers a body that is not JSON' | 'answers JSON that is not FHIR' | 'refuses connections';

const deadlineMs = 300;
/** The slow server answers, but well after the deadline and after the bound below. */
const slowAnswerMs = 2500;
/** "Within the deadline", with room for a loaded machine; the stalled server never answers, the slow one later. */
const answerBoundMs = deadlineMs + 1500;

interface MisbehavingServer {
  readonly baseUrl: string;
  readonly requests: string[];
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`;
}

/** A FHIR server on 127.0.0.1 that misbehaves in one way on every request. */
async function startMisbehavingServer(behaviour: Behaviour): Promise<MisbehavingServer> {
  const requests: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    requests.push(request.url ?? '');
    switch (behaviour) {
      case 'stalls':
        return; // reads the request, never answers
      case 'answers after the deadline': {
        const timer = setTimeout(() => {
          timers.delete(timer);
          response.writeHead(200, { 'content-type': 'application/fhir+json' });
          response.end(JSON.stringify({ resourceType: 'Patient', id: 'ex-pt-4821', gender: 'female', birthDate: '1957-03-14' }));
        }, slowAnswerMs);
        timers.add(timer);
        return;
      }
      case 'answers 500':
        response.writeHead(500, { 'content-type': 'application/fhir+json' });
        response.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] }));
        return;
      case 'answers a body that is not JSON':
        response.writeHead(200, { 'content-type': 'application/fhir+json' });
        response.end('<html><body>Service Unavailable</body></html>');
        return;
      case 'answers JSON that is not FHIR':
        response.writeHead(200, { 'content-type': 'application/fhir+json' });
        response.end(JSON.stringify({ status: 'ok', data: [1, 2, 3] }));
        return;
      case 'refuses connections':
        return; // never reached: the server is closed before the hook is called
    }
  };
  const server = createServer(handler);
  const baseUrl = await listen(server);
  const close = () =>
    new Promise<void>((resolve) => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // The stalled and slow requests hold open sockets: drop them, or jest would wait for them.
      server.closeAllConnections();
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  // Nothing listens on the port afterwards: connecting is refused.
  if (behaviour === 'refuses connections') await close();
  return { baseUrl, requests, close };
}

const behaviours: Behaviour[] = ['stalls', 'answers after the deadline', 'answers 500', 'answers a body that is not JSON', 'answers JSON that is not FHIR', 'refuses connections'];

const token = 'ehr-access-token-of-this-call';

/** A patient-view request pointed at `fhirServer`, every key prefetched but those in `missing`, which must be fetched. */
function patientViewFetching(fhirServer: string, missing: string[]): Record<string, any> {
  const request = prefetchedRequest('patient-view', { patient: { gender: 'female', birthDate: '1957-03-14' }, chiefComplaint: 'abd pain' });
  for (const key of missing) delete request.prefetch[key];
  request.fhirServer = fhirServer;
  request.fhirAuthorization = { access_token: token, token_type: 'Bearer', expires_in: 300, scope: 'user/Patient.read user/Condition.read', subject: 'cohort-cds' };
  return request;
}

describe('the hook endpoint when the EHR FHIR server misbehaves', () => {
  let database: TestDatabase;
  let logged: LoggedApp;
  const servers = new Map<Behaviour, MisbehavingServer>();

  beforeAll(async () => {
    database = await openRulesOnlyDatabase();
    for (const behaviour of behaviours) servers.set(behaviour, await startMisbehavingServer(behaviour));
    logged = await buildLoggedApp(database, {
      fhirFetchTimeoutMs: deadlineMs,
      fhirServerAllowlist: [...servers.values()].map((server) => server.baseUrl),
      rateLimitPerMinute: 0,
    });
  });

  afterAll(async () => {
    await logged.app.close();
    await Promise.all([...servers.values()].map((server) => server.close()));
    await database.close();
  });

  async function timedPost(payload: object) {
    const started = Date.now();
    const response = await logged.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload });
    return { response, elapsedMs: Date.now() - started };
  }

  const expectedReason: Record<Behaviour, RegExp> = {
    stalls: new RegExp(`did not answer within ${deadlineMs} ms`),
    'answers after the deadline': new RegExp(`did not answer within ${deadlineMs} ms`),
    'answers 500': /HTTP 500/,
    'answers a body that is not JSON': /not JSON/,
    'answers JSON that is not FHIR': /not a FHIR resource/,
    'refuses connections': /could not reach the FHIR server/,
  };

  it.each(behaviours)('answers 412 within the deadline when the Patient must be fetched and the server %s', async (behaviour) => {
    const server = servers.get(behaviour)!;
    server.requests.length = 0;
    const { response, elapsedMs } = await timedPost(patientViewFetching(server.baseUrl, ['patient']));
    expect(response.statusCode).toBe(412);
    const body = response.json();
    expect(body.error).toBe('prefetch-unavailable');
    expect(body.message).toMatch(/'patient'/);
    expect(body.message).toMatch(expectedReason[behaviour]);
    expect(response.body).not.toContain(token);
    expect(elapsedMs).toBeLessThan(answerBoundMs);
    // The server was really asked (except the one nobody can reach).
    expect(server.requests).toEqual(behaviour === 'refuses connections' ? [] : ['/fhir/Patient/ex-pt-4821']);
  });

  it.each(behaviours)('answers 200 within the deadline, without the data, when only the conditions must be fetched and the server %s', async (behaviour) => {
    const server = servers.get(behaviour)!;
    server.requests.length = 0;
    const { response, elapsedMs } = await timedPost(patientViewFetching(server.baseUrl, ['conditions']));
    expect(response.statusCode).toBe(200);
    assertValidResponse(response.json());
    expect(elapsedMs).toBeLessThan(answerBoundMs);
    expect(server.requests).toEqual(behaviour === 'refuses connections' ? [] : ['/fhir/Condition?patient=ex-pt-4821']);
  });

  it('answers several hooks against a stalled server at once, each within the deadline, and keeps serving', async () => {
    const stalled = servers.get('stalls')!;
    const answers = await Promise.all(Array.from({ length: 5 }, () => timedPost(patientViewFetching(stalled.baseUrl, ['patient', 'conditions']))));
    for (const { response, elapsedMs } of answers) {
      expect(response.statusCode).toBe(412);
      expect(elapsedMs).toBeLessThan(answerBoundMs);
    }
    const { response } = await timedPost(patientViewFetching(stalled.baseUrl, []));
    expect(response.statusCode).toBe(200);
    expect((await logged.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
  });
});
