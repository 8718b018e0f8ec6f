import { randomUUID } from 'node:crypto';
import { importJWK, importPKCS8, SignJWT, type JWK, type CryptoKey as JoseKey } from 'jose';

/**
 * SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html): a JWT client assertion
 * signed with the client's private key, exchanged at the token endpoint for a short-lived access token.
 */
export interface BackendServicesClient {
  readonly clientId: string;
  /** Private key: a JWK (JSON) or a PKCS#8 PEM. */
  readonly privateKey: string;
  /** `kid` of the public key the EHR registered. */
  readonly keyId: string;
  /** RS384 or ES384 (the two the SMART specification requires servers to support). */
  readonly algorithm: 'RS384' | 'ES384';
  readonly scope: string;
  /** Token endpoint; discovered from `.well-known/smart-configuration` when absent. */
  readonly tokenEndpoint?: string;
}

export interface AccessToken {
  readonly token: string;
  /** When to stop using it (a little before the server's expiry). */
  readonly expiresAt: number;
}

export class BulkAuthError extends Error {
  override name = 'BulkAuthError';
}

async function importPrivateKey(text: string, algorithm: string): Promise<JoseKey | Uint8Array> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const jwk = JSON.parse(trimmed) as JWK;
    if (jwk.d === undefined) throw new BulkAuthError('the private key JWK has no private part ("d")');
    return importJWK(jwk, algorithm);
  }
  if (trimmed.includes('BEGIN PRIVATE KEY')) return importPKCS8(trimmed, algorithm);
  throw new BulkAuthError('the private key must be a JWK (JSON) or a PKCS#8 PEM ("BEGIN PRIVATE KEY")');
}

/** The token endpoint a FHIR server advertises (SMART App Launch 2.0 §Discovery). */
export async function discoverTokenEndpoint(fhirBase: string, fetchImpl: typeof fetch = fetch): Promise<string> {
  const url = `${fhirBase.replace(/\/+$/, '')}/.well-known/smart-configuration`;
  const response = await fetchImpl(url, { headers: { accept: 'application/json' }, redirect: 'error' });
  if (!response.ok) throw new BulkAuthError(`${url} answered ${response.status}; pass --token-endpoint`);
  const body = (await response.json()) as { token_endpoint?: unknown };
  if (typeof body.token_endpoint !== 'string') throw new BulkAuthError(`${url} names no token_endpoint; pass --token-endpoint`);
  return body.token_endpoint;
}

/** Gets access tokens, reusing one until shortly before it expires. */
export class BackendServicesTokenSource {
  private current: AccessToken | undefined;
  private key: Promise<JoseKey | Uint8Array> | undefined;
  private endpoint: string | undefined;

  constructor(
    private readonly client: BackendServicesClient,
    private readonly fhirBase: string,
    private readonly fetchImpl: typeof fetch = fetch,
    private readonly now: () => number = Date.now,
  ) {
    this.endpoint = client.tokenEndpoint;
  }

  async token(): Promise<string> {
    if (this.current && this.current.expiresAt > this.now()) return this.current.token;
    this.current = await this.request();
    return this.current.token;
  }

  /** Forget the token (the server refused it), so the next call asks for a new one. */
  invalidate(): void {
    this.current = undefined;
  }

  private async request(): Promise<AccessToken> {
    this.endpoint ??= await discoverTokenEndpoint(this.fhirBase, this.fetchImpl);
    this.key ??= importPrivateKey(this.client.privateKey, this.client.algorithm);
    const nowSeconds = Math.floor(this.now() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: this.client.algorithm, kid: this.client.keyId, typ: 'JWT' })
      .setIssuer(this.client.clientId)
      .setSubject(this.client.clientId)
      .setAudience(this.endpoint)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + 300)
      .setJti(randomUUID())
      .sign(await this.key);
    const response = await this.fetchImpl(this.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: this.client.scope,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
      redirect: 'error',
    });
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown };
    if (!response.ok || typeof body.access_token !== 'string') {
      const reason = [body.error, body.error_description].filter((part) => typeof part === 'string').join(': ');
      throw new BulkAuthError(`the token endpoint refused the client (${response.status}${reason ? `, ${reason}` : ''})`);
    }
    const lifetimeSeconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
    // Renew a little early, so a token does not expire between the check and the request.
    return { token: body.access_token, expiresAt: this.now() + Math.max(1, lifetimeSeconds - 30) * 1000 };
  }
}
