import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

/**
 * Feedback as evidence (README "Feedback"): an issued card remembers the complaint concept of its cohort (the
 * evidence is kept per concept and item), the displays of its items (so the console can name panels and
 * ingredients without the cohort) and the override reasons it offered (feedback may only pick one of those).
 * Cards issued before this migration keep a null concept and count in the totals only.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('issued_card')
    .addColumn('complaint_concept', 'text')
    .addColumn('item_displays', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('override_reasons', 'jsonb', (column) => column.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await db.schema.createIndex('issued_card_issued_at').on('issued_card').column('issued_at').execute();
  await db.schema.createIndex('feedback_outcome_timestamp').on('feedback').column('outcome_timestamp').execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('feedback_outcome_timestamp').ifExists().execute();
  await db.schema.dropIndex('issued_card_issued_at').ifExists().execute();
  await db.schema.alterTable('issued_card').dropColumn('override_reasons').dropColumn('item_displays').dropColumn('complaint_concept').execute();
}
