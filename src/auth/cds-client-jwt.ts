/**
 * Verification of the JWT a CDS client sends on every call (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients),
 * without fastify so that it is tested on its own:
 * - `iss` must be a configured issuer; its keys are inline, from a file, or a remote JWK Set;
 * - a `jku` header is followed only when it is on that issuer's jku list;
 * - `alg` is asymmetric (RS*, ES*, PS*): "JWTs SHALL NOT be signed using the `none` algorithm" nor "any
 *   symmetric algorithm" (#jwt-signing-algorithm);
 * - `aud` is the URL of the endpoint called, `exp`/`iat` within a small clock skew, `jti` used once.
 * The token itself is never put in a result, an error or a log line.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  jwtVerify,
  type JWTHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
  type FlattenedJWSInput,
} from 'jose';
import { normalizeUrl, type TrustedIssuer } from './trusted-issuers.js';

/** The JWS algorithms accepted: asymmetric only (ES384 and RS384 are the spec's recommendation). */
export const allowedAlgorithms: readonly string[] = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'];

/** Why a token was refused: logged, never sent to the client. */
export type AuthFailureReason =
  | 'missing-token'
  | 'malformed-token'
  | 'algorithm-not-allowed'
  | 'missing-kid'
  | 'wrong-typ'
  | 'unknown-issuer'
  | 'jku-not-allowed'
  | 'no-keys'
  | 'unknown-key'
  | 'unusable-key'
  | 'jwks-unavailable'
  | 'bad-signature'
  | 'expired'
  | 'too-old'
  | 'issued-in-future'
  | 'wrong-audience'
  | 'missing-claim'
  | 'invalid-claim'
  | 'replayed'
  | 'invalid-token';

/** Who called, once the token is verified. */
export interface CdsClient {
  readonly issuer: string;
  /** The client id, when the token carries one (optional in CDS Hooks 2.0). */
  readonly subject: string | undefined;
  /** The healthcare organization, when the token carries one. */
  readonly tenant: string | undefined;
}

export type CdsClientVerification =
  | { readonly ok: true; readonly client: CdsClient }
  | {
      readonly ok: false;
      readonly reason: AuthFailureReason;
      /** A short explanation for the log, never holding the token. */
      readonly detail: string;
      /** What the (unverified) token claimed, for the log. */
      readonly claimed: { readonly issuer?: string; readonly kid?: string; readonly alg?: string };
    };

/** Checks the `Authorization` header of a call to the endpoint whose URL is `audience`. */
export type CdsClientVerifier = (authorization: string | undefined, audience: string) => Promise<CdsClientVerification>;

export interface CdsClientVerifierOptions {
  readonly issuers: readonly TrustedIssuer[];
  /** Leeway for `exp` and `iat` between the client's clock and ours. */
  readonly clockSkewSeconds: number;
  /**
   * Oldest accepted `iat`. A token is meant for one call (its `jti` is used once), so it is young; the bound
   * also bounds how long a `jti` must be remembered. Default 300 s, the lifetime the Sandbox gives its tokens.
   */
  readonly maxTokenAgeSeconds?: number;
  /** `jti`s remembered at most (default 200 000); the oldest is forgotten first. */
  readonly replayCacheSize?: number;
  readonly now?: () => Date;
  /** Remote JWK Sets: fetch timeout, how long a fetched set is reused, and the pause between fetches. */
  readonly remoteJwks?: { readonly timeoutMs?: number; readonly cacheMaxAgeMs?: number; readonly cooldownMs?: number };
}

/** A failure decided before or while finding the key; jose passes it through unchanged. */
class KeyResolutionFailure extends Error {
  override name = 'KeyResolutionFailure';

  constructor(
    readonly reason: AuthFailureReason,
    detail: string,
  ) {
    super(detail);
  }
}

/**
 * The `jti`s seen, each kept until the token it came with can no longer be accepted anyway. Bounded: past
 * the bound the oldest entry goes, which only a trusted issuer signing that many tokens can cause.
 */
export class JtiReplayCache {
  // Insertion order is close to expiry order (every entry lives at most maxTokenAge + skew), so expired
  // entries are found at the front.
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the key until `expiresAtMs`; false when it was already recorded and has not expired. */
  remember(key: string, expiresAtMs: number): boolean {
    const now = this.now();
    for (const [held, expiresAt] of this.expiries) {
      if (expiresAt > now) break;
      this.expiries.delete(held);
    }
    const existing = this.expiries.get(key);
    if (existing !== undefined && existing > now) return false;
    this.expiries.delete(key);
    this.expiries.set(key, expiresAtMs);
    while (this.expiries.size > this.maxEntries) {
      const oldest = this.expiries.keys().next();
      if (oldest.done === true) break;
      this.expiries.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.expiries.size;
  }
}

const defaultMaxTokenAgeSeconds = 300;
const defaultReplayCacheSize = 200_000;
const requiredClaims = ['iss', 'aud', 'exp', 'iat', 'jti'];

/** Keeps what the log shows of an attacker-controlled string short. */
function clip(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 200) : undefined;
}

function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9_\-.~+/]+=*)[ ]*$/i.exec(authorization);
  return match?.[1];
}

/** jose's errors → our reasons; jose says which claim failed and why. */
function reasonFor(error: unknown): { reason: AuthFailureReason; detail: string } {
  if (error instanceof KeyResolutionFailure) return { reason: error.reason, detail: error.message };
  const code = (error as { code?: unknown } | null)?.code;
  const claim = (error as { claim?: unknown } | null)?.claim;
  const why = (error as { reason?: unknown } | null)?.reason;
  // Duck-typed: errors from fetch may come from another realm (a VM context), where instanceof fails.
  const message = (error as { message?: unknown } | null)?.message;
  const detail = typeof message === 'string' ? message.slice(0, 200) : 'unknown error';
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return { reason: claim === 'iat' ? 'too-old' : 'expired', detail };
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (why === 'missing') return { reason: 'missing-claim', detail };
      if (claim === 'aud') return { reason: 'wrong-audience', detail };
      if (claim === 'iat' && /in the past/.test(detail)) return { reason: 'issued-in-future', detail };
      return { reason: 'invalid-claim', detail };
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return { reason: 'bad-signature', detail };
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return { reason: 'unknown-key', detail };
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return { reason: 'algorithm-not-allowed', detail };
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return { reason: 'unusable-key', detail };
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
    case 'ERR_JOSE_GENERIC':
      return { reason: 'jwks-unavailable', detail };
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return { reason: 'malformed-token', detail };
    default:
      // fetch's own failures (refused connection, DNS) while reading a remote JWK Set.
      if ((error as { name?: unknown } | null)?.name === 'TypeError' && /fetch/i.test(detail)) return { reason: 'jwks-unavailable', detail };
      return { reason: 'invalid-token', detail };
  }
}

/** Builds the verifier; remote JWK Sets are fetched lazily and shared between issuers naming the same URL. */
export function createCdsClientVerifier(options: CdsClientVerifierOptions): CdsClientVerifier {
  const now = options.now ?? (() => new Date());
  const maxTokenAgeSeconds = options.maxTokenAgeSeconds ?? defaultMaxTokenAgeSeconds;
  const replay = new JtiReplayCache(options.replayCacheSize ?? defaultReplayCacheSize, () => now().getTime());
  const remoteSets = new Map<string, JWTVerifyGetKey>();

  const remoteSet = (url: string): JWTVerifyGetKey => {
    let set = remoteSets.get(url);
    if (set === undefined) {
      // jose fetches with `redirect: 'manual'` and accepts only a 200, so a JWK Set cannot be redirected elsewhere.
      set = createRemoteJWKSet(new URL(url), {
        timeoutDuration: options.remoteJwks?.timeoutMs ?? 3000,
        cacheMaxAge: options.remoteJwks?.cacheMaxAgeMs ?? 10 * 60_000,
        // An unknown kid triggers a fetch at most this often, so forged kids cannot flood the issuer's server.
        cooldownDuration: options.remoteJwks?.cooldownMs ?? 30_000,
      });
      remoteSets.set(url, set);
    }
    return set;
  };

  const keysByIssuer = new Map<string, { readonly issuer: TrustedIssuer; readonly keys: JWTVerifyGetKey | undefined; readonly jku: ReadonlySet<string> }>();
  for (const issuer of options.issuers) {
    const keys = issuer.jwks !== undefined ? createLocalJWKSet(issuer.jwks) : issuer.jwksUrl !== undefined ? remoteSet(issuer.jwksUrl) : undefined;
    keysByIssuer.set(issuer.issuer, { issuer, keys, jku: new Set(issuer.jku) });
  }

  return async (authorization, audience) => {
    const token = bearerToken(authorization);
    if (token === undefined) {
      const detail = authorization === undefined ? 'no Authorization header' : 'Authorization is not a Bearer token';
      return { ok: false, reason: 'missing-token', detail, claimed: {} };
    }

    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return { ok: false, reason: 'malformed-token', detail: 'not a compact JWS with a JSON header and payload', claimed: {} };
    }
    const claimed = { issuer: clip(claims.iss), kid: clip(header.kid), alg: clip(header.alg) };
    const fail = (reason: AuthFailureReason, detail: string): CdsClientVerification => ({ ok: false, reason, detail, claimed });

    // Checked before any key is looked up: `none` and HMAC never get as far as a key.
    if (typeof header.alg !== 'string' || !allowedAlgorithms.includes(header.alg)) return fail('algorithm-not-allowed', `alg ${String(header.alg)} is not accepted`);
    if (typeof header.kid !== 'string' || header.kid === '') return fail('missing-kid', 'the JWT header has no kid');
    // The spec fixes typ to "JWT"; another type (e.g. an OAuth access token, "at+jwt") is not this kind of token.
    const typ: unknown = header.typ;
    if (typ !== undefined && (typeof typ !== 'string' || typ.toLowerCase() !== 'jwt')) return fail('wrong-typ', `typ ${String(typ).slice(0, 50)} is not JWT`);
    const trusted = typeof claims.iss === 'string' ? keysByIssuer.get(claims.iss) : undefined;
    if (trusted === undefined) return fail('unknown-issuer', 'the issuer is not in CDS_TRUSTED_ISSUERS');

    const getKey = async (protectedHeader: JWTHeaderParameters, input: FlattenedJWSInput) => {
      const jku: unknown = protectedHeader.jku;
      if (jku !== undefined) {
        let normalized: string | undefined;
        try {
          normalized = typeof jku === 'string' ? normalizeUrl(jku) : undefined;
        } catch {
          normalized = undefined;
        }
        if (normalized === undefined || !trusted.jku.has(normalized)) throw new KeyResolutionFailure('jku-not-allowed', `jku ${String(jku).slice(0, 200)} is not on this issuer's jku list`);
        return remoteSet(normalized)(protectedHeader, input);
      }
      if (trusted.keys === undefined) throw new KeyResolutionFailure('no-keys', 'this issuer has keys only through jku, and the token names none');
      return trusted.keys(protectedHeader, input);
    };

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: trusted.issuer.issuer,
        audience,
        algorithms: [...allowedAlgorithms],
        clockTolerance: options.clockSkewSeconds,
        maxTokenAge: maxTokenAgeSeconds,
        requiredClaims,
        currentDate: now(),
      }));
    } catch (error) {
      const { reason, detail } = reasonFor(error);
      return fail(reason, detail);
    }

    if (typeof payload.jti !== 'string' || payload.jti === '') return fail('invalid-claim', 'jti must be a non-empty string');
    // iat is present (maxTokenAge makes jose require it) and the token is refused after iat + maxTokenAge anyway.
    const lastAcceptedSeconds = Math.min(payload.exp ?? Number.POSITIVE_INFINITY, (payload.iat ?? 0) + maxTokenAgeSeconds) + options.clockSkewSeconds;
    if (!replay.remember(`${trusted.issuer.issuer}\u0000${payload.jti}`, lastAcceptedSeconds * 1000)) {
      return fail('replayed', 'this jti was already used');
    }
    return {
      ok: true,
      client: {
        issuer: trusted.issuer.issuer,
        subject: typeof payload.sub === 'string' ? payload.sub : undefined,
        tenant: typeof payload['tenant'] === 'string' ? payload['tenant'] : undefined,
      },
    };
  };
}
