/**
 * fhirAuthorization.access_token is used for the FHIR calls of one hook only (CDS Hooks 2.0 §Passing the access
 * token): after hooks that fetched with it, it is in no column of any table and in no log line.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HookName } from '../../src/hooks/cds-hooks.schema.js';
import { hookNames } from '../../src/hooks/cds-hooks.schema.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { chiefComplaintBundle, readExampleRequest } from '../helpers/cds-hooks-examples.js';
import { buildLoggedApp, openRulesOnlyDatabase, type LoggedApp, type TestDatabase } from '../helpers/rules-only-app.js';
import { findStoredText } from '../helpers/stored-text.js';

/** Distinctive, so that any copy of it (in a row, a JSON document, a log line) is found. */
const accessToken = 'zq7-distinctive-ehr-access-token-4f1c9e';

describe('the access token of fhirAuthorization', () => {
  let database: TestDatabase;
  let logged: LoggedApp;
  let ehr: Server;
  let ehrBaseUrl: string;
  let failingEhr: Server;
  let failingBaseUrl: string;
  const authorizations: (string | undefined)[] = [];
  const cardUuids: string[] = [];
  let appClosed = false;

  beforeAll(async () => {
    database = await openRulesOnlyDatabase();
    await ensureReferenceData(database.db);
    await ingestPaths(database.db, [mimicDemoDirectory], { hasher: createKeyHasher('token-test-secret-token-test-secret-0123') });
    // The EHR: a 60-year-old man with chest pain, so every hook has a cohort and issues cards.
    ehr = createServer((request, response) => {
      authorizations.push(request.headers.authorization);
      const url = request.url ?? '';
      const body = url.startsWith('/fhir/Patient/')
        ? { resourceType: 'Patient', id: 'ex-pt-4821', gender: 'male', birthDate: '1966-05-01' }
        : url.startsWith('/fhir/Encounter/')
          ? { resourceType: 'Encounter', id: 'ex-enc-ed-3306', status: 'in-progress', class: { code: 'EMER' }, subject: { reference: 'Patient/ex-pt-4821' } }
          : url.includes('8661-1')
            ? chiefComplaintBundle('ex-pt-4821', 'chest pain')
            : { resourceType: 'Bundle', type: 'searchset', entry: [] };
      response.writeHead(200, { 'content-type': 'application/fhir+json' });
      response.end(JSON.stringify(body));
    });
    // An EHR whose error echoes the token back: nothing of its answer may be kept either.
    failingEhr = createServer((request, response) => {
      response.writeHead(401, { 'content-type': 'application/fhir+json', 'www-authenticate': `Bearer error="invalid_token"` });
      response.end(JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', diagnostics: `token ${request.headers.authorization} expired` }] }));
    });
    for (const server of [ehr, failingEhr]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ehrBaseUrl = `http://127.0.0.1:${(ehr.address() as AddressInfo).port}/fhir`;
    failingBaseUrl = `http://127.0.0.1:${(failingEhr.address() as AddressInfo).port}/fhir`;
    // trace: the most the service ever logs.
    logged = await buildLoggedApp(database, { logLevel: 'trace', fhirServerAllowlist: [ehrBaseUrl, failingBaseUrl], rateLimitPerMinute: 0 });
  }, 180_000);

  afterAll(async () => {
    if (!appClosed) await logged?.app.close();
    for (const server of [ehr, failingEhr]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await database.close();
  });

  /** The example request of `hook`, nothing prefetched: everything is fetched from `fhirServer` with the token. */
  function fetchingRequest(hook: HookName, fhirServer: string): Record<string, any> {
    const request = readExampleRequest(hook) as Record<string, any>;
    delete request.prefetch;
    request.fhirServer = fhirServer;
    request.fhirAuthorization = { access_token: accessToken, token_type: 'Bearer', expires_in: 300, scope: 'user/Patient.read user/Condition.read user/Observation.read', subject: 'cohort-cds' };
    return request;
  }

  it('is sent to the FHIR server, then found in no table and no log line', async () => {
    for (const hook of hookNames) {
      const response = await logged.app.inject({ method: 'POST', url: `/cds-services/${hook}`, payload: fetchingRequest(hook, ehrBaseUrl) });
      expect({ hook, status: response.statusCode }).toEqual({ hook, status: 200 });
      expect(response.body).not.toContain(accessToken);
      const cards = response.json().cards as { uuid: string }[];
      expect(cards.length).toBeGreaterThan(0);
      cardUuids.push(...cards.map((card) => card.uuid));
    }
    const failed = await logged.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: fetchingRequest('patient-view', failingBaseUrl) });
    expect(failed.statusCode).toBe(412);
    expect(failed.body).not.toContain(accessToken);
    const feedback = await logged.app.inject({
      method: 'POST',
      url: '/cds-services/patient-view/feedback',
      payload: { feedback: [{ card: cardUuids[0], outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:00:00Z' }] },
    });
    expect(feedback.statusCode).toBe(200);
    // The token did reach the EHR: the hooks really used it.
    expect(authorizations.length).toBeGreaterThan(hookNames.length);
    expect(new Set(authorizations)).toEqual(new Set([`Bearer ${accessToken}`]));

    // Closing writes what the service batches (hook calls, issued cards) before the scan.
    await logged.app.close();
    appClosed = true;

    const scan = await findStoredText(database.db, accessToken);
    expect(scan.columnsScanned).toEqual(expect.arrayContaining(['hook_call.service_id', 'feedback.card_uuid']));
    expect(scan.found).toEqual([]);
    // The scan does find what the hooks stored (negative control): the issued cards are there.
    const control = await findStoredText(database.db, cardUuids[0]!);
    expect(control.found.length).toBeGreaterThan(0);

    const logText = logged.lines.join('');
    expect(logged.lines.length).toBeGreaterThan(hookNames.length);
    expect(logText).toContain('hook answered');
    expect(logText).not.toContain(accessToken);
  });
});
