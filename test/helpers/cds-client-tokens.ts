/** Real keys and JWTs for CDS client authentication tests, and a JWK Set server on 127.0.0.1. */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTHeaderParameters } from 'jose';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface TestSigner {
  readonly kid: string;
  readonly alg: 'ES384' | 'RS384';
  readonly privateKey: KeyPair['privateKey'];
  readonly publicKey: KeyPair['publicKey'];
  /** The public key as a JWK with kid, alg and use, as a CDS client publishes it. */
  readonly publicJwk: JWK;
}

/** A fresh key pair for `alg`, named `kid`. */
export async function createSigner(alg: TestSigner['alg'], kid: string = randomUUID()): Promise<TestSigner> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export interface TestClaims {
  readonly iss: string;
  readonly aud: string | string[];
  readonly sub?: string;
  readonly tenant?: string;
  /** Default: a new uuid. `null` leaves the claim out. */
  readonly jti?: string | null;
  /** Seconds since the epoch; default now. */
  readonly iat?: number;
  /** Seconds since the epoch; default iat + 300, as the CDS Hooks Sandbox does. */
  readonly exp?: number;
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A JWT as a CDS client signs it; `header` adds or overrides header fields (jku, typ, kid). */
export async function signToken(signer: TestSigner, claims: TestClaims, header: Partial<JWTHeaderParameters> = {}): Promise<string> {
  const iat = claims.iat ?? nowSeconds();
  const payload: Record<string, unknown> = { iss: claims.iss, aud: claims.aud, iat, exp: claims.exp ?? iat + 300 };
  if (claims.jti !== null) payload['jti'] = claims.jti ?? randomUUID();
  if (claims.sub !== undefined) payload['sub'] = claims.sub;
  if (claims.tenant !== undefined) payload['tenant'] = claims.tenant;
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, typ: 'JWT', kid: signer.kid, ...header }).sign(signer.privateKey);
}

const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** An unsecured JWT (`alg: none`, empty signature), hand-made: jose refuses to produce one for verification. */
export function unsecuredToken(claims: TestClaims, kid: string): string {
  const iat = claims.iat ?? nowSeconds();
  return `${base64url({ alg: 'none', typ: 'JWT', kid })}.${base64url({ iss: claims.iss, aud: claims.aud, iat, exp: iat + 300, jti: randomUUID() })}.`;
}

/** The key-confusion attack: HS256 with the issuer's public key (SPKI PEM) as the HMAC secret. */
export async function hmacWithPublicKey(signer: TestSigner, claims: TestClaims): Promise<string> {
  const secret = new TextEncoder().encode(await exportSPKI(signer.publicKey));
  const iat = claims.iat ?? nowSeconds();
  return new SignJWT({ iss: claims.iss, aud: claims.aud, iat, exp: iat + 300, jti: randomUUID() })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: signer.kid })
    .sign(secret);
}

export interface JwksServer {
  readonly url: string;
  /** Requests received, by path. */
  readonly fetches: string[];
  /** What the server serves from now on. */
  serve(keys: readonly JWK[]): void;
  close(): Promise<void>;
}

/** A JWK Set server on 127.0.0.1 (port 0): GET /jwks.json serves the keys given last. */
export async function startJwksServer(keys: readonly JWK[]): Promise<JwksServer> {
  let served = keys;
  const fetches: string[] = [];
  const server = createServer((request, response) => {
    fetches.push(request.url ?? '');
    if (request.url !== '/jwks.json') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/jwk-set+json' });
    response.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    fetches,
    serve: (next) => {
      served = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
