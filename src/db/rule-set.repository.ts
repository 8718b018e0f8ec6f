import type { Kysely, Transaction } from 'kysely';
import { defaultRules, rulesSchema, type VersionedRules } from '../cohort/rules.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** The active rules version, parsed (fields an older version lacks take their defaults). */
export async function findActiveRuleSet(db: Executor): Promise<VersionedRules | undefined> {
  const row = await db.selectFrom('rule_set').select(['version', 'rules']).where('status', '=', 'active').executeTakeFirst();
  if (!row) return undefined;
  return { version: row.version, rules: rulesSchema.parse(row.rules) };
}

/** A new database starts with the default rules as active version 1. */
export async function seedDefaultRuleSet(db: Executor): Promise<void> {
  await db
    .insertInto('rule_set')
    .values({
      version: 1,
      status: 'active',
      rules: JSON.stringify(defaultRules),
      note: 'Default rules',
      created_by: 'system',
      activated_at: new Date(),
    })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}
