import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * Several service instances share one database: a backtest is claimed by one of them, which beats a heartbeat
 * while it runs, so another instance can tell a run whose process died from one still going.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('evaluation_run').addColumn('heartbeat_at', 'timestamptz').execute();
  await sql`update evaluation_run set heartbeat_at = started_at where status = 'running'`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('evaluation_run').dropColumn('heartbeat_at').execute();
}
