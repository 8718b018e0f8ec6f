import { sql, type Kysely } from 'kysely';

/**
 * Admin side: API keys (stored as hashes), the audit trail of every change, the log of hook calls
 * (no patient identifiers) and backtest runs stored with the rules version they measured.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('api_key')
    .addColumn('api_key_id', 'serial', (column) => column.primaryKey())
    .addColumn('name', 'text', (column) => column.notNull().unique())
    .addColumn('role', 'text', (column) => column.notNull().check(sql`role in ('informaticist', 'viewer')`))
    /** SHA-256 of the key, hex; the key itself is shown once, when it is made, and never stored. */
    .addColumn('key_hash', 'text', (column) => column.notNull().unique())
    /** The key's first characters, so a person can tell their keys apart. */
    .addColumn('key_prefix', 'text', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('created_by', 'text', (column) => column.notNull())
    .addColumn('revoked_at', 'timestamptz')
    .execute();

  await db.schema
    .createTable('audit_event')
    .addColumn('audit_event_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    /** The API key's name, or `cli` / `system`. */
    .addColumn('actor', 'text', (column) => column.notNull())
    .addColumn('action', 'text', (column) => column.notNull())
    .addColumn('target', 'text')
    .addColumn('details', 'jsonb', (column) => column.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
  await db.schema.createIndex('audit_event_at').on('audit_event').column('at').execute();

  await db.schema
    .createTable('hook_call')
    .addColumn('hook_call_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('service_id', 'text', (column) => column.notNull())
    .addColumn('hook', 'text', (column) => column.notNull())
    .addColumn('rules_version', 'integer', (column) => column.notNull())
    .addColumn('cohort_size', 'integer')
    .addColumn('relaxation', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('cards', 'integer', (column) => column.notNull())
    .addColumn('latency_ms', 'real', (column) => column.notNull())
    .execute();
  await db.schema.createIndex('hook_call_at').on('hook_call').column('at').execute();

  await db.schema
    .createTable('evaluation_run')
    .addColumn('evaluation_run_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('rules_version', 'integer', (column) => column.notNull().references('rule_set.version'))
    .addColumn('status', 'text', (column) => column.notNull().check(sql`status in ('queued', 'running', 'succeeded', 'failed')`))
    .addColumn('options', 'jsonb', (column) => column.notNull())
    .addColumn('progress', 'jsonb', (column) => column.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn('result', 'jsonb')
    .addColumn('error', 'text')
    .addColumn('requested_by', 'text', (column) => column.notNull())
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('started_at', 'timestamptz')
    .addColumn('finished_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('evaluation_run_rules').on('evaluation_run').column('rules_version').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['evaluation_run', 'hook_call', 'audit_event', 'api_key']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
