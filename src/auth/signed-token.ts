import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * A JSON payload with an expiry, signed with HMAC-SHA256: `base64url(payload).base64url(mac)`. Used for the
 * explanation link on every card, which opens without a login, so it must not be forgeable or live forever.
 * The payload is readable by whoever holds the link: put nothing in it that identifies a patient.
 */
export interface SignedTokenCodec<T> {
  sign(payload: T, expiresAt: Date): string;
  /** The payload, or why the token was refused. */
  verify(token: string, now?: Date): { readonly ok: true; readonly payload: T } | { readonly ok: false; readonly reason: 'malformed' | 'bad-signature' | 'expired' };
}

export function createSignedTokenCodec<T>(secret: string, purpose: string): SignedTokenCodec<T> {
  // One key per purpose, so a token made for one use is never accepted for another.
  const key = createHmac('sha256', secret).update(`cohort-cds/${purpose}`).digest();
  const mac = (data: string) => createHmac('sha256', key).update(data).digest();
  return {
    sign(payload, expiresAt) {
      const body = Buffer.from(JSON.stringify({ exp: Math.floor(expiresAt.getTime() / 1000), payload }), 'utf8').toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    verify(token, now = new Date()) {
      const parts = token.split('.');
      if (parts.length !== 2 || token.length > 8192) return { ok: false, reason: 'malformed' };
      const [body, signature] = parts as [string, string];
      const expected = mac(body);
      const given = Buffer.from(signature, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature' };
      let decoded: { exp?: unknown; payload?: unknown };
      try {
        decoded = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof decoded;
      } catch {
        return { ok: false, reason: 'malformed' };
      }
      if (typeof decoded.exp !== 'number' || decoded.payload === undefined) return { ok: false, reason: 'malformed' };
      if (decoded.exp * 1000 <= now.getTime()) return { ok: false, reason: 'expired' };
      return { ok: true, payload: decoded.payload as T };
    },
  };
}
