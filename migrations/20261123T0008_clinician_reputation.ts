import { sql, type Kysely } from 'kysely';

/**
 * One reputation per ordering clinician (docs/reputation.md), by the same keyed hash as
 * encounter_item.clinician_key: never the identifier. Recomputed as a whole (`cli reputation`).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('clinician_reputation')
    .addColumn('clinician_key', 'text', (column) => column.primaryKey())
    .addColumn('orders', 'integer', (column) => column.notNull())
    .addColumn('encounters', 'integer', (column) => column.notNull())
    .addColumn('raw_agreement', 'double precision')
    .addColumn('agreement', 'double precision', (column) => column.notNull())
    .addColumn('return_rate_72h', 'double precision', (column) => column.notNull())
    .addColumn('weight', 'double precision', (column) => column.notNull().check(sql`weight > 0`))
    .addColumn('computed_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('clinician_reputation').ifExists().execute();
}
