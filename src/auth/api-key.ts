import { createHash, randomBytes } from 'node:crypto';
import type { ApiKeyRole } from '../db/database.js';

export type { ApiKeyRole };

/** Roles from least to most privileged; a role may do everything the roles before it may. */
export const apiKeyRoles: readonly ApiKeyRole[] = ['viewer', 'informaticist'];

/** Who called an admin route: the key's name (recorded in the audit trail) and its role. */
export interface AdminIdentity {
  readonly name: string;
  readonly role: ApiKeyRole;
}

const keyPrefix = 'ccds_';

/** A new key: 32 random bytes, so a plain SHA-256 is a safe way to store it (no guessing, no salt needed). */
export function generateApiKey(): { readonly key: string; readonly hash: string; readonly prefix: string } {
  const key = `${keyPrefix}${randomBytes(32).toString('base64url')}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, keyPrefix.length + 6) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Whether a presented string could be one of our keys at all (saves a database read for garbage). */
export function looksLikeApiKey(candidate: string): boolean {
  return candidate.startsWith(keyPrefix) && candidate.length >= keyPrefix.length + 40 && candidate.length <= 128 && /^[A-Za-z0-9_-]+$/.test(candidate);
}

export function roleAllows(role: ApiKeyRole, required: ApiKeyRole): boolean {
  return apiKeyRoles.indexOf(role) >= apiKeyRoles.indexOf(required);
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
