import type { Kysely, Transaction } from 'kysely';
import { generateApiKey, type AdminIdentity, type ApiKeyRole } from '../auth/api-key.js';
import type { Database } from './database.js';
import { recordAuditEvent } from './audit.repository.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface ApiKeySummary {
  readonly name: string;
  readonly role: ApiKeyRole;
  readonly prefix: string;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly revokedAt: Date | null;
}

export class DuplicateApiKeyNameError extends Error {
  override name = 'DuplicateApiKeyNameError';
}

/** Makes a key and records who made it; the key is returned once and only its hash is stored. */
export async function createApiKey(
  db: Kysely<Database>,
  input: { readonly name: string; readonly role: ApiKeyRole; readonly createdBy: string },
): Promise<{ readonly key: string; readonly summary: ApiKeySummary }> {
  const generated = generateApiKey();
  return db.transaction().execute(async (trx) => {
    const existing = await trx.selectFrom('api_key').select('name').where('name', '=', input.name).executeTakeFirst();
    if (existing) throw new DuplicateApiKeyNameError(`an API key named "${input.name}" exists already`);
    const row = await trx
      .insertInto('api_key')
      .values({ name: input.name, role: input.role, key_hash: generated.hash, key_prefix: generated.prefix, created_by: input.createdBy })
      .returning(['name', 'role', 'key_prefix', 'created_at', 'created_by', 'revoked_at'])
      .executeTakeFirstOrThrow();
    await recordAuditEvent(trx, { actor: input.createdBy, action: 'api-key.create', target: input.name, details: { role: input.role } });
    return { key: generated.key, summary: toSummary(row) };
  });
}

/** The identity of a key that is not revoked, by its hash. */
export async function findApiKeyIdentity(db: Executor, keyHash: string): Promise<AdminIdentity | undefined> {
  const row = await db
    .selectFrom('api_key')
    .select(['name', 'role'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { name: row.name, role: row.role } : undefined;
}

export async function listApiKeys(db: Executor): Promise<ApiKeySummary[]> {
  const rows = await db
    .selectFrom('api_key')
    .select(['name', 'role', 'key_prefix', 'created_at', 'created_by', 'revoked_at'])
    .orderBy('api_key_id')
    .execute();
  return rows.map(toSummary);
}

/** Revokes a key by name; false when there is no such key or it was revoked before. */
export async function revokeApiKey(db: Kysely<Database>, name: string, revokedBy: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable('api_key')
      .set({ revoked_at: new Date() })
      .where('name', '=', name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return false;
    await recordAuditEvent(trx, { actor: revokedBy, action: 'api-key.revoke', target: name });
    return true;
  });
}

export async function countApiKeys(db: Executor): Promise<number> {
  const row = await db.selectFrom('api_key').select((eb) => eb.fn.countAll<string>().as('count')).executeTakeFirstOrThrow();
  return Number(row.count);
}

function toSummary(row: {
  name: string;
  role: ApiKeyRole;
  key_prefix: string;
  created_at: Date;
  created_by: string;
  revoked_at: Date | null;
}): ApiKeySummary {
  return { name: row.name, role: row.role, prefix: row.key_prefix, createdAt: row.created_at, createdBy: row.created_by, revokedAt: row.revoked_at };
}
