import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { parseTrustedIssuers } from '../../src/auth/trusted-issuers.js';

const sandbox = 'https://sandbox.cds-hooks.org';
const sandboxJwks = 'https://sandbox.cds-hooks.org/.well-known/jwks.json';
let publicJwk: JWK;
let privateJwk: JWK;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
  privateJwk = { ...(await exportJWK(privateKey)), kid: 'k1', alg: 'ES384' };
});

const parse = (value: unknown, requireHttps = false) => parseTrustedIssuers(typeof value === 'string' ? value : JSON.stringify(value), { requireHttps });

describe('parseTrustedIssuers', () => {
  it('reads inline keys, a JWK Set URL and jku lists, one entry per iss', () => {
    const issuers = parse({
      'https://ehr.example.org': { jwks: { keys: [publicJwk] } },
      [sandbox]: { jwksUrl: sandboxJwks, jku: [sandboxJwks] },
    });
    expect(issuers).toEqual([
      { issuer: 'https://ehr.example.org', jwks: { keys: [publicJwk] }, jwksUrl: undefined, jku: [] },
      { issuer: sandbox, jwks: undefined, jwksUrl: sandboxJwks, jku: [sandboxJwks] },
    ]);
  });

  it('reads a file of issuers, and a jwksFile beside it', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'issuers-'));
    writeFileSync(path.join(directory, 'ehr-keys.json'), JSON.stringify({ keys: [publicJwk] }));
    writeFileSync(path.join(directory, 'issuers.json'), JSON.stringify({ 'https://ehr.example.org': { jwksFile: 'ehr-keys.json' } }));
    expect(parse(path.join(directory, 'issuers.json'))).toEqual([{ issuer: 'https://ehr.example.org', jwks: { keys: [publicJwk] }, jwksUrl: undefined, jku: [] }]);
    expect(() => parse(path.join(directory, 'missing.json'))).toThrow(/cannot read issuers file .*missing\.json \(ENOENT\)/);
  });

  it('refuses private or symmetric keys, keys without kid, and entries without or with two key sources', () => {
    expect(() => parse({ iss: { jwks: { keys: [privateJwk] } } })).toThrow(/private key material \(d\)/);
    expect(() => parse({ iss: { jwks: { keys: [{ kty: 'oct', kid: 'h', k: 'c2VjcmV0' }] } } })).toThrow(/kty must be RSA or EC/);
    expect(() => parse({ iss: { jwks: { keys: [{ ...publicJwk, kid: undefined }] } } })).toThrow(/kid/);
    expect(() => parse({ iss: {} })).toThrow(/needs keys/);
    expect(() => parse({ iss: { jwks: { keys: [publicJwk] }, jwksUrl: sandboxJwks } })).toThrow(/at most one of/);
    expect(() => parse({ iss: { jwksUrl: sandboxJwks, extra: true } })).toThrow(/extra|Unrecognized/);
  });

  it('never echoes key material in its errors', () => {
    try {
      parse({ iss: { jwks: { keys: [privateJwk] } } });
    } catch (error) {
      expect(String(error)).not.toContain(String(privateJwk.d));
    }
    expect.assertions(1);
  });

  it('refuses plain-http key URLs when asked to (production)', () => {
    expect(() => parse({ iss: { jwksUrl: 'http://ehr.example.org/jwks.json' } }, true)).toThrow(/must be https in production/);
    expect(() => parse({ iss: { jku: ['http://ehr.example.org/jwks.json'] } }, true)).toThrow(/must be https in production/);
    expect(parse({ iss: { jwksUrl: 'http://127.0.0.1:8080/jwks.json' } }, false)).toHaveLength(1);
  });

  it('says so when the value is neither JSON nor a file', () => {
    expect(() => parse('{ not json')).toThrow(/neither valid JSON nor the path of a JSON file/);
  });
});
