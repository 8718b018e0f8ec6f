/** Security headers, CORS limited to the configured origins, and the per-client rate limit. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import { helmetOptions } from '../../src/http/security.plugin.js';
import type { Config } from '../../src/config.js';
import { createSigner, signToken, type TestSigner } from '../helpers/cds-client-tokens.js';
import { buildLoggedApp, openRulesOnlyDatabase, type TestDatabase } from '../helpers/rules-only-app.js';

const ehr = 'https://ehr.example.org';
const discoveryAud = 'http://127.0.0.1:8080/cds-services';

let database: TestDatabase;
let signer: TestSigner;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  database = await openRulesOnlyDatabase();
  signer = await createSigner('ES384', 'k1');
});

afterAll(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await database.close();
});

async function appWith(overrides: Partial<Config>): Promise<FastifyInstance> {
  const { app } = await buildLoggedApp(database, overrides);
  apps.push(app);
  return app;
}

const withAuth: Partial<Config> = {
  cdsAuthDisabled: false,
  trustedIssuers: [{ issuer: ehr, jwks: { keys: [] }, jwksUrl: undefined, jku: [] }],
};

describe('security headers', () => {
  it('are on every answer: success, 401, 404 and health', async () => {
    const app = await appWith({ ...withAuth, trustedIssuers: [{ issuer: ehr, jwks: { keys: [signer.publicJwk] }, jwksUrl: undefined, jku: [] }] });
    const responses = [
      await app.inject({ method: 'GET', url: '/cds-services', headers: { authorization: `Bearer ${await signToken(signer, { iss: ehr, aud: discoveryAud })}` } }),
      await app.inject({ method: 'GET', url: '/cds-services' }),
      await app.inject({ method: 'GET', url: '/nope' }),
      await app.inject({ method: 'GET', url: '/health/live' }),
    ];
    expect(responses.map((response) => response.statusCode)).toEqual([200, 401, 404, 200]);
    for (const response of responses) {
      expect(response.headers).toMatchObject({
        'content-security-policy': "default-src 'none';frame-ancestors 'none'",
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'SAMEORIGIN',
        'strict-transport-security': expect.stringMatching(/^max-age=\d+/),
        'referrer-policy': 'no-referrer',
      });
      expect(response.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('are every header @fastify/helmet itself sets with the same options, on every answer', async () => {
    // The reference: the plugin registered as before (it built helmet's middleware on every request).
    const reference = Fastify({ logger: false });
    await reference.register(helmet, helmetOptions);
    reference.get('/', async () => 'reference');
    const plain = Fastify({ logger: false });
    plain.get('/', async () => 'reference');
    const [expected, unrelated] = await Promise.all([reference.inject({ url: '/' }), plain.inject({ url: '/' })]);
    await Promise.all([reference.close(), plain.close()]);
    const helmetNames = Object.keys(expected.headers).filter((name) => !(name in unrelated.headers));
    expect(helmetNames.length).toBeGreaterThanOrEqual(10);
    const app = await appWith(withAuth);
    for (const url of ['/cds-services', '/nope', '/health/live']) {
      const response = await app.inject({ method: 'GET', url });
      for (const name of helmetNames) expect({ url, name, value: response.headers[name] }).toEqual({ url, name, value: expected.headers[name] });
    }
  });
});

describe('CORS', () => {
  it('answers only the configured origins; others get no Access-Control-Allow-Origin', async () => {
    const app = await appWith({ corsOrigins: ['https://sandbox.cds-hooks.org'] });
    const allowed = await app.inject({ method: 'GET', url: '/cds-services', headers: { origin: 'https://sandbox.cds-hooks.org' } });
    expect(allowed.headers['access-control-allow-origin']).toBe('https://sandbox.cds-hooks.org');
    const other = await app.inject({ method: 'GET', url: '/cds-services', headers: { origin: 'https://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers the preflight of an allowed origin without a token, even with authentication on, and not another origin\'s', async () => {
    const app = await appWith({ ...withAuth, corsOrigins: ['https://sandbox.cds-hooks.org'] });
    const preflight = (origin: string) =>
      app.inject({
        method: 'OPTIONS',
        url: '/cds-services/patient-view',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
      });
    const allowed = await preflight('https://sandbox.cds-hooks.org');
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://sandbox.cds-hooks.org');
    expect(String(allowed.headers['access-control-allow-headers'])).toMatch(/Authorization/);
    const other = await preflight('https://evil.example');
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('rate limit', () => {
  it('gives each authenticated client (iss + sub) its own budget, and answers 429 JSON with Retry-After', async () => {
    const app = await appWith({ ...withAuth, trustedIssuers: [{ issuer: ehr, jwks: { keys: [signer.publicJwk] }, jwksUrl: undefined, jku: [] }], rateLimitPerMinute: 3 });
    const discover = async (sub: string) =>
      app.inject({ method: 'GET', url: '/cds-services', headers: { authorization: `Bearer ${await signToken(signer, { iss: ehr, aud: discoveryAud, sub })}` } });
    for (let call = 0; call < 3; call += 1) expect((await discover('client-a')).statusCode).toBe(200);
    const limited = await discover('client-a');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({ error: 'rate-limited', message: expect.stringMatching(/^Too many requests; retry in /) });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Same address, another client of the same EHR: its own budget.
    expect((await discover('client-b')).statusCode).toBe(200);
  });

  it('falls back to the client address when authentication is off', async () => {
    const app = await appWith({ rateLimitPerMinute: 2 });
    const from = (remoteAddress: string) => app.inject({ method: 'GET', url: '/cds-services', remoteAddress });
    expect((await from('10.0.0.1')).statusCode).toBe(200);
    expect((await from('10.0.0.1')).statusCode).toBe(200);
    expect((await from('10.0.0.1')).statusCode).toBe(429);
    expect((await from('10.0.0.2')).statusCode).toBe(200);
  });

  it('can be turned off with 0', async () => {
    const app = await appWith({ rateLimitPerMinute: 0 });
    for (let call = 0; call < 5; call += 1) expect((await app.inject({ method: 'GET', url: '/cds-services' })).statusCode).toBe(200);
  });
});
