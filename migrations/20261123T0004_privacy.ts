import { sql, type Kysely } from 'kysely';

/**
 * Patients who said no: one row per patient, keyed by the same HMAC patient key as cohort_encounter, so an
 * opt-out can be applied again after every ingest without ever storing the identifier it came from.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations must not depend on the app's current types
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('patient_opt_out')
    .addColumn('patient_key', 'text', (column) => column.primaryKey())
    /** `consent`: a FHIR Consent found at ingest; `api`: POST /admin/opt-outs. */
    .addColumn('source', 'text', (column) => column.notNull().check(sql`source in ('consent', 'api')`))
    .addColumn('opted_out_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    /** The API key's name, or `ingest` / `cli`; never the patient's identifier. */
    .addColumn('recorded_by', 'text', (column) => column.notNull())
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('patient_opt_out').ifExists().execute();
}
