import type { Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * A backtest's figures are computed from the cohort as it was when the run started. When an opt-out later removes
 * a patient's encounters, the stored result may still hold figures that counted them (docs/privacy.md): the run is
 * marked, with how many opt-outs came after it started and when the first did.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('evaluation_run')
    .addColumn('opt_outs_after_start', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('first_opt_out_after_start_at', 'timestamptz')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('evaluation_run').dropColumn('first_opt_out_after_start_at').dropColumn('opt_outs_after_start').execute();
}
