import { afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createCdsClientVerifier, JtiReplayCache, type CdsClientVerifierOptions } from '../../src/auth/cds-client-jwt.js';
import type { TrustedIssuer } from '../../src/auth/trusted-issuers.js';
import {
  createSigner,
  hmacWithPublicKey,
  nowSeconds,
  signToken,
  startJwksServer,
  unsecuredToken,
  type JwksServer,
  type TestSigner,
} from '../helpers/cds-client-tokens.js';

const ehr = 'https://ehr.example.org/';
const aud = 'https://cds.example.org/cds-services/patient-view';
const bearer = (token: string) => `Bearer ${token}`;

let es384: TestSigner;
let rs384: TestSigner;
let stranger: TestSigner;

function issuer(overrides: Partial<TrustedIssuer> = {}): TrustedIssuer {
  return { issuer: ehr, jwks: { keys: [es384.publicJwk, rs384.publicJwk] }, jwksUrl: undefined, jku: [], ...overrides };
}

function verifier(issuers: TrustedIssuer[] = [issuer()], options: Partial<CdsClientVerifierOptions> = {}) {
  return createCdsClientVerifier({ issuers, clockSkewSeconds: 60, ...options });
}

const servers: JwksServer[] = [];

beforeAll(async () => {
  [es384, rs384, stranger] = await Promise.all([createSigner('ES384', 'ehr-es384'), createSigner('RS384', 'ehr-rs384'), createSigner('ES384', 'ehr-es384')]);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe('CDS client JWT: accepted', () => {
  it('a token signed ES384 or RS384 by a trusted issuer for this endpoint', async () => {
    const verify = verifier();
    for (const signer of [es384, rs384]) {
      const token = await signToken(signer, { iss: ehr, aud, sub: 'client-7', tenant: 'hospital-2' });
      await expect(verify(bearer(token), aud)).resolves.toEqual({ ok: true, client: { issuer: ehr, subject: 'client-7', tenant: 'hospital-2' } });
    }
  });

  it('aud as an array holding this endpoint (rfc7519 §4.1.3)', async () => {
    const token = await signToken(es384, { iss: ehr, aud: [aud] });
    await expect(verifier()(bearer(token), aud)).resolves.toMatchObject({ ok: true });
  });

  it('a token just expired or issued just ahead, within the clock skew', async () => {
    const verify = verifier();
    const now = nowSeconds();
    const expired = await signToken(es384, { iss: ehr, aud, iat: now - 100, exp: now - 30 });
    const ahead = await signToken(es384, { iss: ehr, aud, iat: now + 30 });
    await expect(verify(bearer(expired), aud)).resolves.toMatchObject({ ok: true });
    await expect(verify(bearer(ahead), aud)).resolves.toMatchObject({ ok: true });
  });
});

describe('CDS client JWT: refused, with the reason', () => {
  const refused = async (authorization: string | undefined, reason: string, verify = verifier(), audience = aud) => {
    const result = await verify(authorization, audience);
    expect(result).toMatchObject({ ok: false, reason });
    // Whatever the outcome, the token itself is never handed back (it goes to the log from here).
    if (authorization !== undefined) expect(JSON.stringify(result)).not.toContain(authorization.replace(/^Bearer /, ''));
    return result;
  };

  it('no Authorization header, another scheme, or something that is not a JWT', async () => {
    await refused(undefined, 'missing-token');
    await refused('Basic dXNlcjpwYXNz', 'missing-token');
    await refused('Bearer not-a-jwt', 'malformed-token');
  });

  it('expired beyond the clock skew', async () => {
    const now = nowSeconds();
    await refused(bearer(await signToken(es384, { iss: ehr, aud, iat: now - 200, exp: now - 61 })), 'expired');
  });

  it('issued in the future, or too long ago', async () => {
    const now = nowSeconds();
    await refused(bearer(await signToken(es384, { iss: ehr, aud, iat: now + 120 })), 'issued-in-future');
    await refused(bearer(await signToken(es384, { iss: ehr, aud, iat: now - 400, exp: now + 600 })), 'too-old');
  });

  it('a wrong aud: another endpoint of this service, or another service', async () => {
    await refused(bearer(await signToken(es384, { iss: ehr, aud: 'https://cds.example.org/cds-services' })), 'wrong-audience');
    await refused(bearer(await signToken(es384, { iss: ehr, aud: 'https://other.example.org/cds-services/patient-view' })), 'wrong-audience');
  });

  it('an issuer that is not trusted, even when the key would verify', async () => {
    const verify = verifier([issuer(), issuer({ issuer: 'https://other.example.org', jwks: { keys: [stranger.publicJwk] } })]);
    await refused(bearer(await signToken(es384, { iss: 'https://unknown.example.org', aud })), 'unknown-issuer', verify);
    // The other issuer's key does not make a token signed with it valid for ehr.
    await refused(bearer(await signToken(stranger, { iss: ehr, aud })), 'bad-signature', verify);
  });

  it('a kid that is not in the issuer\'s JWK Set, and a token without kid', async () => {
    const unknown = await createSigner('ES384', 'not-published');
    await refused(bearer(await signToken(unknown, { iss: ehr, aud })), 'unknown-key');
    await refused(bearer(await signToken(es384, { iss: ehr, aud }, { kid: undefined })), 'missing-kid');
  });

  it('a jku that is not on the issuer\'s jku list, without fetching it', async () => {
    const server = await startJwksServer([es384.publicJwk]);
    servers.push(server);
    const token = await signToken(es384, { iss: ehr, aud }, { jku: server.url });
    await refused(bearer(token), 'jku-not-allowed', verifier([issuer({ jku: ['https://ehr.example.org/jwks.json'] })]));
    expect(server.fetches).toEqual([]);
  });

  it('a replayed jti, within the token\'s lifetime', async () => {
    const verify = verifier();
    const token = await signToken(es384, { iss: ehr, aud, jti: 'once-only' });
    await expect(verify(bearer(token), aud)).resolves.toMatchObject({ ok: true });
    await refused(bearer(token), 'replayed', verify);
    // A new token with the same jti is a replay too: jti identifies the authentication, not the bytes.
    await refused(bearer(await signToken(rs384, { iss: ehr, aud, jti: 'once-only' })), 'replayed', verify);
  });

  it('alg none, hand-crafted', async () => {
    await refused(bearer(unsecuredToken({ iss: ehr, aud }, es384.kid)), 'algorithm-not-allowed');
  });

  it('HS256 signed with the issuer\'s public key as the secret', async () => {
    await refused(bearer(await hmacWithPublicKey(rs384, { iss: ehr, aud })), 'algorithm-not-allowed');
    await refused(bearer(await hmacWithPublicKey(es384, { iss: ehr, aud })), 'algorithm-not-allowed');
  });

  it('a tampered payload', async () => {
    const [header, , signature] = (await signToken(es384, { iss: ehr, aud })).split('.');
    const payload = Buffer.from(JSON.stringify({ iss: ehr, aud, iat: nowSeconds(), exp: nowSeconds() + 300, jti: 'forged', sub: 'admin' })).toString('base64url');
    await refused(bearer(`${header}.${payload}.${signature}`), 'bad-signature');
  });

  it('a missing jti, and a typ other than JWT', async () => {
    await refused(bearer(await signToken(es384, { iss: ehr, aud, jti: null })), 'missing-claim');
    await refused(bearer(await signToken(es384, { iss: ehr, aud }, { typ: 'at+jwt' })), 'wrong-typ');
  });

  it('header fields of the wrong type, without throwing', async () => {
    await refused(bearer(await signToken(es384, { iss: ehr, aud }, { typ: 5 as unknown as string })), 'wrong-typ');
    await refused(bearer(await signToken(es384, { iss: ehr, aud }, { jku: ['https://ehr.example.org/jwks.json'] as unknown as string })), 'jku-not-allowed');
    await refused(bearer(await signToken(es384, { iss: ehr, aud }, { kid: 7 as unknown as string })), 'missing-kid');
  });
});

describe('CDS client JWT: remote JWK Sets', () => {
  it('are fetched once, cached, and fetched again when a token names a kid not yet seen (key rotation)', async () => {
    const first = await createSigner('ES384', 'rotating-1');
    const second = await createSigner('RS384', 'rotating-2');
    const server = await startJwksServer([first.publicJwk]);
    servers.push(server);
    const verify = verifier([issuer({ jwks: undefined, jwksUrl: server.url })], { remoteJwks: { cooldownMs: 0 } });

    await expect(verify(bearer(await signToken(first, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: true });
    await expect(verify(bearer(await signToken(first, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: true });
    expect(server.fetches).toEqual(['/jwks.json']);

    // Before the rotation the server does not know the second key: refused after one more fetch.
    await expect(verify(bearer(await signToken(second, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: false, reason: 'unknown-key' });
    expect(server.fetches).toHaveLength(2);

    server.serve([first.publicJwk, second.publicJwk]);
    await expect(verify(bearer(await signToken(second, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: true });
    expect(server.fetches).toHaveLength(3);
  });

  it('are not fetched again for unknown kids during the cooldown, so forged kids cannot flood the issuer', async () => {
    const server = await startJwksServer([es384.publicJwk]);
    servers.push(server);
    const verify = verifier([issuer({ jwks: undefined, jwksUrl: server.url })], { remoteJwks: { cooldownMs: 60_000 } });
    await expect(verify(bearer(await signToken(es384, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: true });
    const forged = await createSigner('ES384', 'forged');
    for (let attempt = 0; attempt < 5; attempt += 1) {
      await expect(verify(bearer(await signToken(forged, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: false, reason: 'unknown-key' });
    }
    expect(server.fetches).toHaveLength(1);
  });

  it('named by an allowed jku are used for that token', async () => {
    const server = await startJwksServer([es384.publicJwk]);
    servers.push(server);
    const verify = verifier([issuer({ jwks: undefined, jku: [server.url] })]);
    await expect(verify(bearer(await signToken(es384, { iss: ehr, aud }, { jku: server.url })), aud)).resolves.toMatchObject({ ok: true });
    // Keys reachable only through jku: a token that names none has nothing to be checked against.
    await expect(verify(bearer(await signToken(es384, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: false, reason: 'no-keys' });
  });

  it('that cannot be fetched make the token fail, not the verifier', async () => {
    const server = await startJwksServer([]);
    await server.close();
    const verify = verifier([issuer({ jwks: undefined, jwksUrl: server.url })]);
    await expect(verify(bearer(await signToken(es384, { iss: ehr, aud })), aud)).resolves.toMatchObject({ ok: false, reason: 'jwks-unavailable' });
  });
});

describe('JtiReplayCache', () => {
  it('forgets an entry once it expires, and holds at most its bound', () => {
    let now = 1_000;
    const cache = new JtiReplayCache(3, () => now);
    expect(cache.remember('a', 2_000)).toBe(true);
    expect(cache.remember('a', 2_000)).toBe(false);
    now = 2_000;
    expect(cache.remember('a', 3_000)).toBe(true);
    for (const key of ['b', 'c', 'd']) cache.remember(key, 10_000);
    expect(cache.size).toBe(3);
    // 'a' was the oldest and went to make room.
    expect(cache.remember('a', 10_000)).toBe(true);
  });
});
