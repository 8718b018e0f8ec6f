import { sql, type Kysely } from 'kysely';

// Frozen: never import application code here; a later change is a new migration.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('rule_set')
    .addColumn('version', 'integer', (column) => column.primaryKey())
    .addColumn('status', 'text', (column) => column.notNull().check(sql`status in ('draft', 'active', 'retired')`))
    .addColumn('rules', 'jsonb', (column) => column.notNull())
    .addColumn('note', 'text')
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('created_by', 'text', (column) => column.notNull())
    .addColumn('activated_at', 'timestamptz')
    .execute();
  await sql`create unique index rule_set_one_active on rule_set ((true)) where status = 'active'`.execute(db);

  await db.schema
    .createTable('complaint_concept')
    .addColumn('concept', 'text', (column) => column.primaryKey())
    .addColumn('display', 'text', (column) => column.notNull())
    .execute();

  await db.schema
    .createTable('complaint_synonym')
    .addColumn('phrase', 'text', (column) => column.primaryKey())
    .addColumn('concept', 'text', (column) => column.notNull().references('complaint_concept.concept').onDelete('cascade'))
    .addColumn('created_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('created_by', 'text', (column) => column.notNull())
    .execute();

  await db.schema
    .createTable('icd10_code')
    .addColumn('code', 'text', (column) => column.primaryKey())
    .addColumn('billable', 'boolean', (column) => column.notNull())
    .addColumn('short_description', 'text', (column) => column.notNull())
    .addColumn('long_description', 'text', (column) => column.notNull())
    .execute();

  await db.schema
    .createTable('icd9_to_icd10')
    .addColumn('icd9_code', 'text', (column) => column.notNull())
    .addColumn('icd10_code', 'text', (column) => column.notNull())
    .addPrimaryKeyConstraint('icd9_to_icd10_pk', ['icd9_code', 'icd10_code'])
    .execute();

  // One row per prior ED encounter, de-identified: keyed hashes, no names, no exact dates.
  await db.schema
    .createTable('cohort_encounter')
    .addColumn('encounter_key', 'text', (column) => column.primaryKey())
    .addColumn('patient_key', 'text', (column) => column.notNull())
    .addColumn('site', 'text', (column) => column.notNull().defaultTo('default'))
    .addColumn('age_years', 'smallint', (column) => column.notNull())
    .addColumn('sex', 'text', (column) => column.notNull())
    .addColumn('acuity', 'smallint')
    .addColumn('chief_complaint_text', 'text')
    .addColumn('complaint_concepts', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('icd10_codes', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('icd10_categories', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('history_icd10_codes', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('start_year', 'smallint', (column) => column.notNull())
    .addColumn('disposition', 'text')
    .addColumn('admitted', 'boolean', (column) => column.notNull())
    .addColumn('ed_los_minutes', 'integer')
    .addColumn('hospital_los_minutes', 'integer')
    .addColumn('returned_72h', 'boolean', (column) => column.notNull())
    .addColumn('returned_30d', 'boolean', (column) => column.notNull())
    .addColumn('ingested_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('cohort_encounter_demographics').on('cohort_encounter').columns(['sex', 'age_years']).execute();
  await db.schema.createIndex('cohort_encounter_patient').on('cohort_encounter').column('patient_key').execute();
  await sql`create index cohort_encounter_complaints on cohort_encounter using gin (complaint_concepts)`.execute(db);
  await sql`create index cohort_encounter_icd10_categories on cohort_encounter using gin (icd10_categories)`.execute(db);
  await sql`create index cohort_encounter_icd10_codes on cohort_encounter using gin (icd10_codes)`.execute(db);

  // What the encounter received: one row per distinct item (a lab analyte, an imaging order, a medication ingredient).
  await db.schema
    .createTable('encounter_item')
    .addColumn('encounter_key', 'text', (column) =>
      column.notNull().references('cohort_encounter.encounter_key').onDelete('cascade'),
    )
    .addColumn('item_code', 'text', (column) => column.notNull())
    .addColumn('category', 'text', (column) => column.notNull().check(sql`category in ('workup', 'treatment')`))
    .addColumn('kind', 'text', (column) => column.notNull())
    .addColumn('display', 'text', (column) => column.notNull())
    .addColumn('code_system', 'text')
    .addColumn('code', 'text')
    .addColumn('offset_minutes', 'integer')
    .addColumn('clinician_key', 'text')
    .addPrimaryKeyConstraint('encounter_item_pk', ['encounter_key', 'item_code'])
    .execute();
  await db.schema.createIndex('encounter_item_code').on('encounter_item').column('item_code').execute();

  // Lab analytes drawn from one specimen, kept to derive orderable panels where the source has no panel code.
  await db.schema
    .createTable('lab_draw')
    .addColumn('encounter_key', 'text', (column) =>
      column.notNull().references('cohort_encounter.encounter_key').onDelete('cascade'),
    )
    .addColumn('draw_key', 'text', (column) => column.notNull())
    .addColumn('analyte_code', 'text', (column) => column.notNull())
    .addPrimaryKeyConstraint('lab_draw_pk', ['encounter_key', 'draw_key', 'analyte_code'])
    .execute();

  await db.schema
    .createTable('lab_panel')
    .addColumn('panel_code', 'text', (column) => column.primaryKey())
    .addColumn('display', 'text', (column) => column.notNull())
    .addColumn('analyte_codes', sql`text[]`, (column) => column.notNull())
    .execute();
  await db.schema
    .createTable('lab_panel_member')
    .addColumn('analyte_code', 'text', (column) => column.primaryKey())
    .addColumn('panel_code', 'text', (column) => column.notNull().references('lab_panel.panel_code').onDelete('cascade'))
    .execute();

  await db.schema
    .createTable('issued_card')
    .addColumn('card_uuid', 'uuid', (column) => column.primaryKey())
    .addColumn('service_id', 'text', (column) => column.notNull())
    .addColumn('hook_instance', 'text', (column) => column.notNull())
    .addColumn('card_kind', 'text', (column) => column.notNull())
    .addColumn('rules_version', 'integer', (column) => column.notNull())
    .addColumn('suggestion_uuids', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('item_codes', sql`text[]`, (column) => column.notNull().defaultTo(sql`'{}'`))
    .addColumn('issued_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .createTable('feedback')
    .addColumn('feedback_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('card_uuid', 'uuid', (column) => column.notNull().references('issued_card.card_uuid'))
    .addColumn('service_id', 'text', (column) => column.notNull())
    .addColumn('outcome', 'text', (column) => column.notNull().check(sql`outcome in ('accepted', 'overridden')`))
    .addColumn('accepted_suggestions', 'jsonb', (column) => column.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('override_reason', 'jsonb')
    .addColumn('outcome_timestamp', 'timestamptz', (column) => column.notNull())
    .addColumn('received_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('feedback_card').on('feedback').column('card_uuid').execute();

  await db.schema
    .createTable('ingest_run')
    .addColumn('ingest_run_id', 'bigserial', (column) => column.primaryKey())
    .addColumn('started_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addColumn('source', 'text', (column) => column.notNull())
    .addColumn('counts', 'jsonb', (column) => column.notNull().defaultTo(sql`'{}'::jsonb`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'ingest_run',
    'feedback',
    'issued_card',
    'lab_panel_member',
    'lab_panel',
    'lab_draw',
    'encounter_item',
    'cohort_encounter',
    'icd9_to_icd10',
    'icd10_code',
    'complaint_synonym',
    'complaint_concept',
    'rule_set',
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
