/** CDS client authentication through the app: every CDS endpoint, the health routes, the logs. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Config } from '../../src/config.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';
import { createSigner, hmacWithPublicKey, signToken, startJwksServer, unsecuredToken, type JwksServer, type TestSigner } from '../helpers/cds-client-tokens.js';
import { buildLoggedApp, openRulesOnlyDatabase, type LoggedApp, type TestDatabase } from '../helpers/rules-only-app.js';

const ehr = 'https://ehr.example.org';
const remoteIssuer = 'https://remote-ehr.example.org';
// buildConfig's defaults: HOST 127.0.0.1, PORT 8080, no PUBLIC_BASE_URL.
const base = 'http://127.0.0.1:8080';
const unauthorized = { error: 'unauthorized', message: 'A valid CDS client JWT is required (Authorization: Bearer)' };

/** The example patient-view request with everything prefetched and no fhirServer: answers without fetching. */
function patientView(): Record<string, unknown> {
  const request = readExampleRequest('patient-view');
  delete request['fhirServer'];
  delete request['fhirAuthorization'];
  return request;
}

const feedback = { feedback: [{ card: '00000000-0000-4000-8000-000000000000', outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:03:00Z' }] };

let database: TestDatabase;

beforeAll(async () => {
  database = await openRulesOnlyDatabase();
});

afterAll(async () => {
  await database.close();
});

describe('CDS client authentication (app)', () => {
  let es384: TestSigner;
  let rs384: TestSigner;
  let jwks: JwksServer;
  let logged: LoggedApp;

  beforeAll(async () => {
    [es384, rs384] = await Promise.all([createSigner('ES384', 'ehr-1'), createSigner('RS384', 'remote-1')]);
    jwks = await startJwksServer([rs384.publicJwk]);
    const config: Partial<Config> = {
      cdsAuthDisabled: false,
      trustedIssuers: [
        { issuer: ehr, jwks: { keys: [es384.publicJwk] }, jwksUrl: undefined, jku: [] },
        { issuer: remoteIssuer, jwks: undefined, jwksUrl: jwks.url, jku: [] },
      ],
    };
    logged = await buildLoggedApp(database, config);
  });

  afterAll(async () => {
    await logged.app.close();
    await jwks.close();
  });

  const call = (method: 'GET' | 'POST', url: string, token: string | undefined, payload?: object) =>
    logged.app.inject({ method, url, ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }), ...(payload === undefined ? {} : { payload }) });

  it('accepts a valid token on discovery, a service and feedback, each with its own aud', async () => {
    const discovery = await call('GET', '/cds-services', await signToken(es384, { iss: ehr, aud: `${base}/cds-services` }));
    expect(discovery.statusCode).toBe(200);
    expect(discovery.json().services).toHaveLength(4);

    const hook = await call('POST', '/cds-services/patient-view', await signToken(es384, { iss: ehr, aud: `${base}/cds-services/patient-view` }), patientView());
    expect(hook.statusCode).toBe(200);
    expect(hook.json()).toEqual({ cards: [] });

    // Authenticated, then refused for what it says: this service issued no such card.
    const stored = await call('POST', '/cds-services/patient-view/feedback', await signToken(es384, { iss: ehr, aud: `${base}/cds-services/patient-view/feedback` }), feedback);
    expect(stored.statusCode).toBe(404);
    expect(stored.json().error).toBe('unknown-card');
  });

  it('accepts an RS384 token whose key is fetched from the issuer\'s JWK Set URL', async () => {
    const response = await call('GET', '/cds-services', await signToken(rs384, { iss: remoteIssuer, aud: `${base}/cds-services` }));
    expect(response.statusCode).toBe(200);
    expect(jwks.fetches).toEqual(['/jwks.json']);
  });

  it('answers a bare 401 to every CDS endpoint without a token', async () => {
    for (const [method, url, payload] of [
      ['GET', '/cds-services', undefined],
      ['POST', '/cds-services/patient-view', patientView()],
      ['POST', '/cds-services/order-sign/feedback', feedback],
    ] as const) {
      const response = await call(method, url, undefined, payload);
      expect({ url, status: response.statusCode, body: response.json() }).toEqual({ url, status: 401, body: unauthorized });
      expect(response.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('answers the same 401 whatever is wrong with the token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const aud = `${base}/cds-services`;
    const stranger = await createSigner('ES384', 'ehr-1');
    const tokens = {
      expired: await signToken(es384, { iss: ehr, aud, iat: now - 400, exp: now - 100 }),
      'wrong aud (the service URL used on discovery)': await signToken(es384, { iss: ehr, aud: `${base}/cds-services/patient-view` }),
      'unknown iss': await signToken(es384, { iss: 'https://unknown.example.org', aud }),
      'unknown kid': await signToken(await createSigner('ES384', 'ehr-2'), { iss: ehr, aud }),
      'jku off the list': await signToken(es384, { iss: ehr, aud }, { jku: jwks.url }),
      'another key under the known kid': await signToken(stranger, { iss: ehr, aud }),
      'alg none': unsecuredToken({ iss: ehr, aud }, es384.kid),
      'HS256 with the public key': await hmacWithPublicKey(es384, { iss: ehr, aud }),
    };
    for (const [name, token] of Object.entries(tokens)) {
      const response = await call('GET', '/cds-services', token);
      expect({ name, status: response.statusCode, body: response.json() }).toEqual({ name, status: 401, body: unauthorized });
    }
  });

  it('refuses a replayed token', async () => {
    const token = await signToken(es384, { iss: ehr, aud: `${base}/cds-services` });
    expect((await call('GET', '/cds-services', token)).statusCode).toBe(200);
    expect((await call('GET', '/cds-services', token)).statusCode).toBe(401);
  });

  it('keeps the health routes open', async () => {
    expect((await logged.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    expect((await logged.app.inject({ method: 'GET', url: '/health/ready' })).json()).toEqual({ status: 'ok', database: 'ok' });
  });

  it('logs why a token was refused, never the token', async () => {
    const token = await signToken(es384, { iss: ehr, aud: 'https://elsewhere.example.org/cds-services' });
    logged.lines.length = 0;
    await call('GET', '/cds-services', token);
    const failure = logged.lines.map((line) => JSON.parse(line) as Record<string, any>).find((line) => line.msg === 'CDS client authentication failed');
    expect(failure?.auth).toMatchObject({ reason: 'wrong-audience', issuer: ehr, kid: 'ehr-1', alg: 'ES384' });
    expect(failure?.level).toBe(40);
    const text = logged.lines.join('');
    for (const part of token.split('.')) expect(text).not.toContain(part);
  });
});

describe('CDS client authentication: configuration', () => {
  it('is off in the demo (no issuers, not production), and says so loudly', async () => {
    const { app, lines } = await buildLoggedApp(database);
    try {
      expect((await app.inject({ method: 'GET', url: '/cds-services' })).statusCode).toBe(200);
      const warning = lines.map((line) => JSON.parse(line) as Record<string, any>).find((line) => /AUTHENTICATION IS OFF/.test(line.msg));
      expect(warning?.level).toBe(40);
    } finally {
      await app.close();
    }
  });

  it('checks aud against PUBLIC_BASE_URL, path prefix included', async () => {
    const signer = await createSigner('ES384', 'k');
    const { app } = await buildLoggedApp(database, {
      cdsAuthDisabled: false,
      publicBaseUrl: 'https://cds.example.org/cohort/',
      trustedIssuers: [{ issuer: ehr, jwks: { keys: [signer.publicJwk] }, jwksUrl: undefined, jku: [] }],
    });
    try {
      const get = async (aud: string) =>
        (await app.inject({ method: 'GET', url: '/cds-services?x=1', headers: { authorization: `Bearer ${await signToken(signer, { iss: ehr, aud })}` } })).statusCode;
      expect(await get('https://cds.example.org/cohort/cds-services')).toBe(200);
      expect(await get(`${base}/cds-services`)).toBe(401);
      expect(await get('https://cds.example.org/cohort/cds-services?x=1')).toBe(401);
    } finally {
      await app.close();
    }
  });
});
