import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Kysely, PostgresDialect, sql, type PostgresPool, type PostgresPoolClient, type Transaction } from 'kysely';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { CohortEncounterRecord, EncounterItemRow, LabDrawRow } from '../ingest/fhir-to-cohort.js';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface SavedCohortEncounters {
  readonly encounters: number;
  readonly items: number;
  /** Specimens drawn (lab_draw rows). */
  readonly draws: number;
  /** Lab results on those specimens (their analytes, all draws together). */
  readonly labResults: number;
}

// Rows per multi-row INSERT: well under PostgreSQL's 65,535 bind parameters for the widest table.
const rowsPerStatement = 1000;

function chunks<T>(rows: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < rows.length; index += size) result.push(rows.slice(index, index + size));
  return result;
}

// Every column the ingest writes; ingested_at changes only when one of them does.
const encounterColumns = [
  'patient_key',
  'site',
  'age_years',
  'sex',
  'acuity',
  'chief_complaint_text',
  'complaint_concepts',
  'icd10_codes',
  'icd10_categories',
  'history_icd10_codes',
  'start_year',
  'disposition',
  'admitted',
  'ed_los_minutes',
  'hospital_los_minutes',
  'returned_72h',
  'returned_30d',
] as const;

/**
 * Writes ED stays with their items and lab draws, replacing what an earlier ingest stored for the same
 * encounter keys; running it twice on the same records leaves the tables as they were.
 */
export async function saveCohortEncounters(trx: Executor, records: readonly CohortEncounterRecord[]): Promise<SavedCohortEncounters> {
  // The last record of a key wins, as it would across two calls.
  const byKey = new Map(records.map((record) => [record.encounter.encounterKey, record]));
  const unique = [...byKey.values()];
  if (unique.length === 0) return { encounters: 0, items: 0, draws: 0, labResults: 0 };
  const keys = [...byKey.keys()];

  for (const batch of chunks(unique, rowsPerStatement)) {
    await trx
      .insertInto('cohort_encounter')
      .values(
        batch.map(({ encounter }) => ({
          encounter_key: encounter.encounterKey,
          patient_key: encounter.patientKey,
          site: encounter.site,
          age_years: encounter.ageYears,
          sex: encounter.sex,
          acuity: encounter.acuity,
          chief_complaint_text: encounter.chiefComplaintText,
          complaint_concepts: [...encounter.complaintConcepts],
          icd10_codes: [...encounter.icd10Codes],
          icd10_categories: [...encounter.icd10Categories],
          history_icd10_codes: [...encounter.historyIcd10Codes],
          start_year: encounter.startYear,
          disposition: encounter.disposition,
          admitted: encounter.admitted,
          ed_los_minutes: encounter.edLosMinutes,
          hospital_los_minutes: encounter.hospitalLosMinutes,
          returned_72h: encounter.returned72h,
          returned_30d: encounter.returned30d,
        })),
      )
      .onConflict((oc) =>
        oc
          .column('encounter_key')
          .doUpdateSet((eb) => Object.fromEntries(encounterColumns.map((column) => [column, eb.ref(`excluded.${column}`)])))
          .where(
            sql<boolean>`(${sql.join(encounterColumns.map((column) => sql.ref(`cohort_encounter.${column}`)))})
              is distinct from (${sql.join(encounterColumns.map((column) => sql.ref(`excluded.${column}`)))})`,
          ),
      )
      .execute();
  }

  for (const batch of chunks(keys, rowsPerStatement)) {
    await trx.deleteFrom('encounter_item').where('encounter_key', 'in', batch).execute();
    await trx.deleteFrom('lab_draw').where('encounter_key', 'in', batch).execute();
  }

  const items = unique.flatMap((record) => record.items);
  for (const batch of chunks(items, rowsPerStatement)) {
    await trx
      .insertInto('encounter_item')
      .values(
        batch.map((item) => ({
          encounter_key: item.encounterKey,
          item_code: item.itemCode,
          category: item.category,
          kind: item.kind,
          display: item.display,
          code_system: item.codeSystem,
          code: item.code,
          offset_minutes: item.offsetMinutes,
          clinician_key: item.clinicianKey,
        })),
      )
      .onConflict((oc) => oc.columns(['encounter_key', 'item_code']).doNothing())
      .execute();
  }

  const draws = unique.flatMap((record) => record.draws);
  for (const batch of chunks(draws, rowsPerStatement * 3)) {
    await trx
      .insertInto('lab_draw')
      .values(batch.map((draw) => ({ encounter_key: draw.encounterKey, draw_key: draw.drawKey, analyte_codes: [...draw.analyteCodes] })))
      .onConflict((oc) => oc.columns(['encounter_key', 'draw_key']).doNothing())
      .execute();
  }
  return { encounters: unique.length, items: items.length, draws: draws.length, labResults: countLabResults(draws) };
}

function countLabResults(draws: readonly LabDrawRow[]): number {
  let results = 0;
  for (const draw of draws) results += draw.analyteCodes.length;
  return results;
}

// ---------------------------------------------------------------------------------------------------------
// Bulk loading

/** What the caller writes in the transaction of a batch, knowing what the batch saved. */
export type AlsoInTransaction = (trx: Transaction<Database>, saved: SavedCohortEncounters) => Promise<void>;

/** A batch to save: records, or (for the COPY writer) the same already in COPY's text format. */
export type CohortBatch = { readonly records: readonly CohortEncounterRecord[] } | { readonly copy: PreparedCopyBatch };

/** Writes batches of cohort records, each batch in one transaction together with what the caller adds. */
export interface CohortWriter {
  /** `copy`: PostgreSQL COPY on a connection of its own; `insert`: multi-row INSERTs through Kysely (PGlite). */
  readonly method: 'copy' | 'insert';
  /** Saves a batch as saveCohortEncounters does; `alsoInTransaction` runs in the same transaction. */
  save(batch: CohortBatch, alsoInTransaction?: AlsoInTransaction): Promise<SavedCohortEncounters>;
  close(): Promise<void>;
}

/** A writer that uses saveCohortEncounters: any database Kysely opens, PGlite included. */
export function insertingCohortWriter(db: Kysely<Database>): CohortWriter {
  return {
    method: 'insert',
    save: (batch, alsoInTransaction) => {
      if (!('records' in batch)) return Promise.reject(new Error('the inserting writer takes records, not COPY text'));
      return db.transaction().execute(async (trx) => {
        const saved = await saveCohortEncounters(trx, batch.records);
        await alsoInTransaction?.(trx, saved);
        return saved;
      });
    },
    close: async () => undefined,
  };
}

/** Another process holds the ingest lock of this database. */
export class IngestBusyError extends Error {
  override name = 'IngestBusyError';
}

/** Kysely on one pg client, so that its transactions and our COPY streams share the connection. */
function singleClientPool(client: pg.Client): PostgresPool {
  const pooled = Object.assign(client, { release: () => undefined }) as unknown as PostgresPoolClient;
  return { connect: async () => pooled, end: () => client.end() };
}

/**
 * A writer that loads with COPY (pg-copy-streams) on a PostgreSQL connection of its own. It holds a session
 * advisory lock for as long as it is open, so two ingests never write to one database at once (the lock goes
 * with the connection, also when the process is killed). Commits do not wait for the WAL flush: a batch lost to
 * a server crash is not marked done either and is loaded again by the next run.
 */
export async function openCopyingCohortWriter(databaseUrl: string): Promise<CohortWriter> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  // A connection lost mid-batch fails the query in flight; the event itself must not end the process.
  client.on('error', () => undefined);
  try {
    const lock = await client.query<{ locked: boolean }>(`select pg_try_advisory_lock(hashtext('cohort-cds ingest')) as locked`);
    if (!lock.rows[0]?.locked) throw new IngestBusyError('another ingest is writing to this database; run again when it has finished');
    await client.query('set synchronous_commit = off');
  } catch (error) {
    await client.end();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: singleClientPool(client) }) });
  return {
    method: 'copy',
    save: (batch, alsoInTransaction) =>
      db.transaction().execute(async (trx) => {
        const saved = await copyPreparedBatch(trx, client, 'copy' in batch ? batch.copy : formatCopyBatch(batch.records));
        await alsoInTransaction?.(trx, saved);
        return saved;
      }),
    close: () => db.destroy(),
  };
}

const copyEscapes: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One field in COPY's text format. */
function copyField(value: string | number | boolean | null): string {
  if (value === null) return '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') return String(value);
  return copyEscaped.test(value) ? value.replace(copyEscapedGlobal, (character) => copyEscapes[character]!) : value;
}

const copyEscaped = /[\\\n\r\t]/;
const copyEscapedGlobal = /[\\\n\r\t]/g;

/** A text[] in COPY's text format: an array literal with every element quoted, then escaped as a field. */
function copyTextArray(values: readonly string[]): string {
  return copyField(`{${values.map((value) => `"${value.replace(/["\\]/g, '\\$&')}"`).join(',')}}`);
}

async function copyInto(client: pg.Client, statement: string, text: string): Promise<void> {
  if (text.length === 0) return;
  await pipeline(Readable.from([text]), client.query(copyFrom(statement)));
}

function copyText<T>(rows: readonly T[], line: (row: T) => string): string {
  const lines: string[] = [];
  for (const row of rows) lines.push(line(row));
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

const encounterLine = ({ encounter }: CohortEncounterRecord): string =>
  `${copyField(encounter.encounterKey)}\t${copyField(encounter.patientKey)}\t${copyField(encounter.site)}\t${encounter.ageYears}\t` +
  `${copyField(encounter.sex)}\t${copyField(encounter.acuity)}\t${copyField(encounter.chiefComplaintText)}\t` +
  `${copyTextArray(encounter.complaintConcepts)}\t${copyTextArray(encounter.icd10Codes)}\t${copyTextArray(encounter.icd10Categories)}\t` +
  `${copyTextArray(encounter.historyIcd10Codes)}\t${encounter.startYear}\t${copyField(encounter.disposition)}\t${copyField(encounter.admitted)}\t` +
  `${copyField(encounter.edLosMinutes)}\t${copyField(encounter.hospitalLosMinutes)}\t${copyField(encounter.returned72h)}\t${copyField(encounter.returned30d)}`;

const itemLine = (item: EncounterItemRow): string =>
  `${copyField(item.encounterKey)}\t${copyField(item.itemCode)}\t${item.category}\t${copyField(item.kind)}\t${copyField(item.display)}\t` +
  `${copyField(item.codeSystem)}\t${copyField(item.code)}\t${copyField(item.offsetMinutes)}\t${copyField(item.clinicianKey)}`;

const drawLine = (draw: LabDrawRow): string => `${copyField(draw.encounterKey)}\t${copyField(draw.drawKey)}\t${copyTextArray(draw.analyteCodes)}`;

/** A batch in COPY's text format: plain strings, so that a worker thread can make it and hand it over cheaply. */
export interface PreparedCopyBatch {
  /** The batch's encounter keys, each once. */
  readonly keys: readonly string[];
  readonly encounters: string;
  readonly items: string;
  readonly draws: string;
  readonly saved: SavedCohortEncounters;
}

/** Formats records for copyPreparedBatch; of records with the same encounter key the last wins, as in saveCohortEncounters. */
export function formatCopyBatch(records: readonly CohortEncounterRecord[]): PreparedCopyBatch {
  const byKey = new Map(records.map((record) => [record.encounter.encounterKey, record]));
  const unique = [...byKey.values()];
  const items = unique.flatMap((record) => record.items);
  const draws = unique.flatMap((record) => record.draws);
  return {
    keys: [...byKey.keys()],
    encounters: copyText(unique, encounterLine),
    items: copyText(items, itemLine),
    draws: copyText(draws, drawLine),
    saved: { encounters: unique.length, items: items.length, draws: draws.length, labResults: countLabResults(draws) },
  };
}

/**
 * saveCohortEncounters with COPY: the same rows, the same replacement of earlier rows of the same encounter
 * keys, ingested_at kept when nothing changed. Encounter rows go through a temporary table (COPY cannot
 * resolve conflicts); items and draws, whose earlier rows are deleted first, are copied straight in.
 * `trx` must be a transaction on `client`.
 */
export async function copyPreparedBatch(trx: Transaction<Database>, client: pg.Client, batch: PreparedCopyBatch): Promise<SavedCohortEncounters> {
  if (batch.keys.length === 0) return batch.saved;
  const existing = await trx
    .selectFrom('cohort_encounter')
    .select('encounter_key')
    .where(sql<boolean>`encounter_key = any(cast(${sql.val([...batch.keys])} as text[]))`)
    .execute();
  if (existing.length > 0) {
    const keys = sql<string[]>`cast(${sql.val(existing.map((row) => row.encounter_key))} as text[])`;
    await trx.deleteFrom('encounter_item').where(sql<boolean>`encounter_key = any(${keys})`).execute();
    await trx.deleteFrom('lab_draw').where(sql<boolean>`encounter_key = any(${keys})`).execute();
  }

  const columns = ['encounter_key', ...encounterColumns];
  const columnList = sql.join(columns.map((column) => sql.ref(column)));
  await sql`create temporary table if not exists ingest_encounter_stage (like cohort_encounter including defaults) on commit delete rows`.execute(trx);
  await copyInto(client, `copy ingest_encounter_stage (${columns.join(', ')}) from stdin`, batch.encounters);
  await sql`
    insert into cohort_encounter (${columnList})
    select ${columnList} from ingest_encounter_stage
    on conflict (encounter_key) do update
      set ${sql.join(encounterColumns.map((column) => sql`${sql.ref(column)} = ${sql.ref(`excluded.${column}`)}`))}
      where (${sql.join(encounterColumns.map((column) => sql.ref(`cohort_encounter.${column}`)))})
        is distinct from (${sql.join(encounterColumns.map((column) => sql.ref(`excluded.${column}`)))})`.execute(trx);
  await copyInto(
    client,
    'copy encounter_item (encounter_key, item_code, category, kind, display, code_system, code, offset_minutes, clinician_key) from stdin',
    batch.items,
  );
  await copyInto(client, 'copy lab_draw (encounter_key, draw_key, analyte_codes) from stdin', batch.draws);
  return batch.saved;
}

/** copyPreparedBatch for records. */
export async function copyCohortEncounters(trx: Transaction<Database>, client: pg.Client, records: readonly CohortEncounterRecord[]): Promise<SavedCohortEncounters> {
  return copyPreparedBatch(trx, client, formatCopyBatch(records));
}

// The keys and indexes of encounter_item and lab_draw, as migrations/20261123T0001_initial_schema.ts makes them.
// A large load into an empty cohort drops them and builds them once at the end: a btree build sorts once,
// where row-by-row maintenance of keys that arrive in random (HMAC) order, and the foreign-key check of every
// row, cost several times the load itself (measured: 1M items copy in 2.6 s bare, 17 s with the two indexes,
// 44 s with the foreign key too).
const itemConstraints = [
  { table: 'encounter_item', name: 'encounter_item_pk', add: 'primary key (encounter_key, item_code)' },
  { table: 'lab_draw', name: 'lab_draw_pk', add: 'primary key (encounter_key, draw_key)' },
  {
    table: 'encounter_item',
    name: 'encounter_item_encounter_key_fkey',
    add: 'foreign key (encounter_key) references cohort_encounter (encounter_key) on delete cascade not valid',
  },
  {
    table: 'lab_draw',
    name: 'lab_draw_encounter_key_fkey',
    add: 'foreign key (encounter_key) references cohort_encounter (encounter_key) on delete cascade not valid',
  },
] as const;
const itemIndexes = [{ name: 'encounter_item_code', create: 'create index if not exists encounter_item_code on encounter_item (item_code)' }] as const;

async function existingConstraints(db: Kysely<Database>): Promise<Map<string, boolean>> {
  const rows = await sql<{ name: string; validated: boolean }>`
    select conname as name, convalidated as validated from pg_constraint
    where conrelid in (cast('encounter_item' as regclass), cast('lab_draw' as regclass))`.execute(db);
  return new Map(rows.rows.map((row) => [row.name, row.validated]));
}

/** Whether a bulk load dropped the keys of encounter_item and lab_draw and has not built them again yet. */
export async function isItemBulkLoadPending(db: Kysely<Database>): Promise<boolean> {
  const constraints = await existingConstraints(db);
  const indexes = await sql<{ name: string }>`
    select indexname as name from pg_indexes where tablename in ('encounter_item', 'lab_draw')`.execute(db);
  const indexNames = new Set(indexes.rows.map((row) => row.name));
  const triggers = await sql<{ name: string }>`
    select tgname as name from pg_trigger
    where tgrelid in (cast('cohort_encounter' as regclass), cast('encounter_item' as regclass))`.execute(db);
  const triggerNames = new Set(triggers.rows.map((row) => row.name));
  return (
    itemConstraints.some((constraint) => !constraints.has(constraint.name)) ||
    itemIndexes.some((index) => !indexNames.has(index.name)) ||
    aggregateTouchTriggers.some((trigger) => !triggerNames.has(trigger.name))
  );
}

// The triggers that record changed encounters for the aggregate increments, as migration 20261202T0001 makes them.
// Transition tables hold every row a statement writes: a bulk load goes without them and ends in a full rebuild.
const aggregateTouchTriggers = [
  {
    table: 'cohort_encounter',
    name: 'cohort_encounter_aggregate_touch_insert',
    create: 'after insert on cohort_encounter referencing new table as inserted_rows for each statement execute function cohort_aggregate_touch_inserted_encounters()',
  },
  {
    table: 'cohort_encounter',
    name: 'cohort_encounter_aggregate_touch_update',
    create: 'after update on cohort_encounter referencing old table as old_rows for each statement execute function cohort_aggregate_touch_updated_encounters()',
  },
  {
    table: 'encounter_item',
    name: 'encounter_item_aggregate_touch_delete',
    create: 'after delete on encounter_item referencing old table as deleted_rows for each statement execute function cohort_aggregate_touch_deleted_items()',
  },
  {
    table: 'encounter_item',
    name: 'encounter_item_aggregate_touch_insert',
    create: 'after insert on encounter_item referencing new table as inserted_rows for each statement execute function cohort_aggregate_touch_inserted_items()',
  },
] as const;

/**
 * Drops the keys, foreign keys and indexes of encounter_item and lab_draw for a bulk load (one transaction), and the
 * triggers that record changes for the aggregate increments (the generation can then only be rebuilt).
 */
export async function dropItemKeysForBulkLoad(db: Kysely<Database>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const trigger of aggregateTouchTriggers) {
      await sql`drop trigger if exists ${sql.ref(trigger.name)} on ${sql.table(trigger.table)}`.execute(trx);
    }
    await sql`update cohort_aggregate_generation set increments_valid = false where increments_valid`.execute(trx);
    // Foreign keys first: the primary keys cannot go while something depends on them (nothing does today).
    for (const constraint of [...itemConstraints].reverse()) {
      await sql`alter table ${sql.table(constraint.table)} drop constraint if exists ${sql.ref(constraint.name)}`.execute(trx);
    }
    for (const index of itemIndexes) await sql`drop index if exists ${sql.ref(index.name)}`.execute(trx);
  });
}

/**
 * Builds again what dropItemKeysForBulkLoad dropped, each in its own transaction so that an interrupted
 * rebuild keeps what it finished; then validates the foreign keys. Does nothing that is in place already.
 */
export async function restoreItemKeys(db: Kysely<Database>): Promise<void> {
  const triggers = await sql<{ name: string }>`
    select tgname as name from pg_trigger
    where tgrelid in (cast('cohort_encounter' as regclass), cast('encounter_item' as regclass))`.execute(db);
  const triggerNames = new Set(triggers.rows.map((row) => row.name));
  for (const trigger of aggregateTouchTriggers) {
    if (!triggerNames.has(trigger.name)) await sql`create trigger ${sql.ref(trigger.name)} ${sql.raw(trigger.create)}`.execute(db);
  }
  const constraints = await existingConstraints(db);
  for (const index of itemIndexes) {
    await db.transaction().execute(async (trx) => {
      await sql`set local maintenance_work_mem = '512MB'`.execute(trx);
      await sql.raw(index.create).execute(trx);
    });
  }
  for (const constraint of itemConstraints) {
    if (!constraints.has(constraint.name)) {
      await db.transaction().execute(async (trx) => {
        await sql`set local maintenance_work_mem = '512MB'`.execute(trx);
        await sql`alter table ${sql.table(constraint.table)} add constraint ${sql.ref(constraint.name)} ${sql.raw(constraint.add)}`.execute(trx);
      });
    }
  }
  for (const constraint of itemConstraints) {
    if (constraints.get(constraint.name) === true || !constraint.add.startsWith('foreign key')) continue;
    // Added as not valid above (instant); validating reads both tables once and checks every row.
    await sql`alter table ${sql.table(constraint.table)} validate constraint ${sql.ref(constraint.name)}`.execute(db);
  }
}

/** Refreshes the planner's statistics of the cohort tables after a load. */
export async function analyzeCohortTables(db: Kysely<Database>): Promise<void> {
  await sql`analyze cohort_encounter, encounter_item, lab_draw`.execute(db);
}

/** How many ED stays the cohort holds. */
export async function countCohortEncounters(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('cohort_encounter')
    .select(sql<number>`cast(count(*) as integer)`.as('count'))
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

// ---------------------------------------------------------------------------------------------------------
// Lab panels

export interface LabPanel {
  readonly panelCode: string;
  readonly display: string;
  /** Lab item codes (`lab:<code>`), most often drawn first. */
  readonly analyteCodes: readonly string[];
}

export interface LabPanelOptions {
  /** Two analytes belong together when |draws with both| / |draws with either| reaches this. */
  readonly minimumJaccard?: number;
  /** …and they were drawn together at least this often, so that one shared draw of two rare tests is no panel. */
  readonly minimumSharedDraws?: number;
  /**
   * Encounters the co-occurrence is measured on; a larger cohort is sampled: the encounters with the smallest keys
   * (keys are HMACs, so these are a uniform, stable sample). Default 50,000: the pair count grows with the square of
   * the analytes per draw, and a million encounters would take minutes for the same panels.
   */
  readonly sampleEncounters?: number;
}

const defaultPanelSampleEncounters = 50_000;

interface Analyte {
  readonly code: string;
  readonly display: string;
  readonly draws: number;
}

interface PanelSignature {
  readonly display: string;
  readonly patterns: readonly RegExp[];
  /** How many of the patterns the panel's analytes must match. */
  readonly required: number;
}

// Checked in order; the first signature a panel satisfies names it. Patterns match analyte display names
// (MIMIC's d_labitems labels or LOINC display names), lower-cased.
const panelSignatures: readonly PanelSignature[] = [
  {
    display: 'Complete blood count with differential',
    patterns: [/hemoglobin$|^hemoglobin\b/, /hematocrit/, /white blood cells|^wbc\b|leukocytes \[/, /platelet/, /neutrophils/, /lymphocytes/, /monocytes/, /eosinophils/],
    required: 7,
  },
  { display: 'Complete blood count', patterns: [/^hemoglobin\b/, /^hematocrit\b/, /white blood cells|^wbc\b|leukocytes \[/, /^platelet/, /^mcv\b|^mch\b|^rdw\b/], required: 3 },
  { display: 'Blood count differential', patterns: [/neutrophils/, /lymphocytes/, /monocytes/, /eosinophils/, /basophils/], required: 3 },
  { display: 'Blood smear morphology', patterns: [/poikilocytosis/, /anisocytosis/, /polychromasia/, /microcytes/, /macrocytes/, /hypochromia/], required: 3 },
  {
    display: 'Basic metabolic panel',
    patterns: [/^sodium\b(?!.*urine)/, /^potassium\b(?!.*urine)/, /^chloride\b(?!.*urine)/, /bicarbonate|carbon dioxide/, /urea nitrogen(?!.*urine)|^bun\b/, /^creatinine\b(?!.*urine)/],
    required: 4,
  },
  { display: 'Urinalysis', patterns: [/specific gravity/, /urobilinogen/, /nitrite/, /ketone/, /urine color|urine appearance/, /leukocytes$|leukocyte esterase/], required: 3 },
  { display: 'Liver panel', patterns: [/aminotransferase|\bast\b|\balt\b/, /alkaline phosphatase/, /bilirubin, total|^bilirubin total/, /^albumin\b/], required: 3 },
  { display: 'Coagulation panel', patterns: [/inr/, /^pt\b|prothrombin time/, /^ptt\b|partial thromboplastin/], required: 2 },
  { display: 'Blood gas', patterns: [/^po2\b/, /^pco2\b/, /base excess/, /^ph\b/], required: 3 },
  { display: 'Urine toxicology screen', patterns: [/cocaine/, /opiate/, /amphetamine/, /methadone/, /benzodiazepine.*urine/, /barbiturate.*urine/], required: 3 },
  { display: 'Serum toxicology screen', patterns: [/salicylate/, /acetaminophen/, /ethanol/, /tricyclic/, /barbiturate/, /benzodiazepine/], required: 3 },
  { display: 'Urine electrolytes', patterns: [/sodium, urine/, /potassium, urine/, /chloride, urine/, /creatinine, urine/, /osmolality, urine/], required: 3 },
  { display: 'Calcium, magnesium and phosphate', patterns: [/^calcium\b/, /^magnesium\b/, /^phosphate\b|^phosphorus\b/], required: 3 },
  { display: 'Lipid panel', patterns: [/cholesterol, total|^cholesterol\b/, /triglycerides/, /\bhdl\b/, /\bldl\b/], required: 3 },
  { display: 'Iron studies', patterns: [/^iron\b/, /ferritin/, /transferrin/, /iron binding/], required: 3 },
  { display: 'Hepatitis serologies', patterns: [/hepatitis a/, /hepatitis b/, /hepatitis c/], required: 2 },
  { display: 'Serum indices (hemolysis, icterus, lipemia)', patterns: [/^h$/, /^i$/, /^l$/], required: 3 },
  { display: 'Co-oximetry', patterns: [/carboxyhemoglobin/, /methemoglobin/], required: 2 },
  { display: 'Whole blood chemistry', patterns: [/whole blood/, /^glucose\b/, /free calcium/], required: 2 },
  { display: 'Ventilator settings', patterns: [/tidal volume/, /peep/, /ventilation rate/], required: 2 },
  { display: 'Cerebrospinal fluid studies', patterns: [/\bcsf\b/], required: 1 },
  { display: 'Ascites fluid studies', patterns: [/ascites/], required: 1 },
  { display: 'Joint fluid studies', patterns: [/joint/], required: 1 },
  { display: 'Influenza A/B PCR', patterns: [/influenza a/, /influenza b/], required: 2 },
  { display: 'Thyroid function', patterns: [/thyroid stimulating|\btsh\b/, /thyroxine|\bt4\b/, /triiodothyronine|\bt3\b/], required: 2 },
  { display: 'Hemoglobin A1c', patterns: [/a1c/], required: 1 },
  { display: 'Reticulocyte count', patterns: [/reticulocyte/], required: 1 },
];

/** The clinical name of a set of analytes when it is recognisable, else null. */
export function recognisePanel(displays: readonly string[]): string | null {
  const lowered = displays.map((display) => display.toLowerCase().trim());
  for (const signature of panelSignatures) {
    const matched = signature.patterns.filter((pattern) => lowered.some((display) => pattern.test(display))).length;
    if (matched >= signature.required) return signature.display;
  }
  return null;
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * Groups analytes into panels from co-occurrence: two analytes are linked when drawn together from the same
 * specimen often enough (Jaccard over draws), and each connected group of two or more is a panel.
 */
export function derivePanels(
  analytes: readonly Analyte[],
  pairs: ReadonlyArray<{ readonly a: string; readonly b: string; readonly shared: number }>,
  options: LabPanelOptions = {},
): LabPanel[] {
  const minimumJaccard = options.minimumJaccard ?? 0.6;
  const minimumShared = options.minimumSharedDraws ?? 2;
  const byCode = new Map(analytes.map((analyte) => [analyte.code, analyte]));
  const parent = new Map(analytes.map((analyte) => [analyte.code, analyte.code]));
  const root = (code: string): string => {
    let current = code;
    while (parent.get(current) !== current) current = parent.get(current) ?? current;
    parent.set(code, current);
    return current;
  };
  for (const { a, b, shared } of pairs) {
    const first = byCode.get(a);
    const second = byCode.get(b);
    if (!first || !second || shared < minimumShared) continue;
    const jaccard = shared / (first.draws + second.draws - shared);
    if (jaccard < minimumJaccard) continue;
    const [rootA, rootB] = [root(a), root(b)];
    // The smaller code becomes the root, so the grouping does not depend on the order of the pairs.
    if (rootA !== rootB) parent.set(rootA < rootB ? rootB : rootA, rootA < rootB ? rootA : rootB);
  }
  const groups = new Map<string, Analyte[]>();
  for (const analyte of analytes) {
    const key = root(analyte.code);
    const group = groups.get(key) ?? [];
    group.push(analyte);
    groups.set(key, group);
  }
  const ordered = [...groups.values()]
    .filter((group) => group.length >= 2)
    .map((group) => group.sort((x, y) => y.draws - x.draws || (x.code < y.code ? -1 : 1)))
    .sort((x, y) => y.length - x.length || (x[0]!.code < y[0]!.code ? -1 : 1));
  const used = new Set<string>();
  return ordered.map((group) => {
    const leader = group[0]!;
    const base = recognisePanel(group.map((analyte) => analyte.display)) ?? `${leader.display} panel (+${group.length - 1})`;
    let display = base;
    for (let suffix = 2; used.has(slug(display)); suffix += 1) display = `${base} (${suffix})`;
    used.add(slug(display));
    return { panelCode: `panel:${slug(display)}`, display, analyteCodes: group.map((analyte) => analyte.code) };
  });
}

/**
 * How often each analyte was drawn and each pair of analytes was drawn together, from one row per draw (its
 * analytes): what a self-join of lab_draw counts, in a pass over the draws instead of a join whose rows grow with
 * the square of the analytes per draw (measured at 10,000 encounters: 4.9 s for the join alone).
 */
export function countAnalytePairs(draws: Iterable<readonly string[]>): {
  readonly draws: Map<string, number>;
  readonly pairs: { readonly a: string; readonly b: string; readonly shared: number }[];
} {
  const index = new Map<string, number>();
  const codes: string[] = [];
  const drawIds: Int32Array[] = [];
  for (const analytes of draws) {
    drawIds.push(
      Int32Array.from(analytes, (code) => {
        let id = index.get(code);
        if (id === undefined) {
          id = codes.length;
          index.set(code, id);
          codes.push(code);
        }
        return id;
      }),
    );
  }
  const size = codes.length;
  const drawCounts = new Float64Array(size);
  // A dense triangle of counters: a few hundred analytes in practice (a few thousand would still be a few MB).
  const pairCounts = new Float64Array(size * size);
  for (const ids of drawIds) {
    for (let first = 0; first < ids.length; first += 1) {
      const a = ids[first]!;
      drawCounts[a] = drawCounts[a]! + 1;
      for (let second = first + 1; second < ids.length; second += 1) {
        const b = ids[second]!;
        const cell = a < b ? a * size + b : b * size + a;
        pairCounts[cell] = pairCounts[cell]! + 1;
      }
    }
  }
  const pairs: { a: string; b: string; shared: number }[] = [];
  for (let a = 0; a < size; a += 1) {
    for (let b = a + 1; b < size; b += 1) {
      const shared = pairCounts[a * size + b]!;
      if (shared > 0) pairs.push({ a: codes[a]!, b: codes[b]!, shared });
    }
  }
  return { draws: new Map(codes.map((code, id) => [code, drawCounts[id]!])), pairs };
}

/**
 * Rebuilds lab_panel and lab_panel_member from the lab draws of the cohort (or a sample); returns the panels.
 * The sample is the `sampleEncounters` smallest encounter keys (HMACs: a pseudo-random, stable sample that a daily
 * increment changes only where a new key falls below its bound), so the cost stops growing with the cohort.
 */
export async function rebuildLabPanels(db: Kysely<Database>, options: LabPanelOptions = {}): Promise<LabPanel[]> {
  const sample = options.sampleEncounters ?? defaultPanelSampleEncounters;
  const boundRow = await db
    .selectFrom('cohort_encounter')
    .select('encounter_key')
    .orderBy('encounter_key')
    .offset(Math.max(0, sample - 1))
    .limit(1)
    .executeTakeFirst();
  // Null: the cohort is no larger than the sample, and every draw is read (those of no encounter too, as before).
  const bound = boundRow?.encounter_key ?? null;
  const displayRows = await db
    .selectFrom('encounter_item')
    .select(['item_code', (eb) => eb.fn.min('display').as('display')])
    .where('kind', '=', 'lab')
    .$if(bound !== null, (query) => query.where('encounter_key', '<=', bound!))
    .groupBy('item_code')
    .execute();
  const drawRows = await db
    .selectFrom('lab_draw')
    // json: parsed natively by both drivers, several times faster than a text[] by pg's array parser.
    .select(sql<string[]>`array_to_json(analyte_codes)`.as('analytes'))
    .$if(bound !== null, (query) => query.where('encounter_key', '<=', bound!))
    .execute();
  const counted = countAnalytePairs(drawRows.map((row) => row.analytes));
  const displays = new Map(displayRows.map((row) => [row.item_code, row.display]));
  const panels = derivePanels(
    [...counted.draws].map(([code, draws]) => ({ code, display: displays.get(code) ?? code, draws })),
    counted.pairs,
    options,
  );
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('lab_panel_member').execute();
    await trx.deleteFrom('lab_panel').execute();
    for (const batch of chunks(panels, rowsPerStatement)) {
      await trx
        .insertInto('lab_panel')
        .values(batch.map((panel) => ({ panel_code: panel.panelCode, display: panel.display, analyte_codes: [...panel.analyteCodes] })))
        .execute();
    }
    const members = panels.flatMap((panel) => panel.analyteCodes.map((code) => ({ analyte_code: code, panel_code: panel.panelCode })));
    for (const batch of chunks(members, rowsPerStatement)) await trx.insertInto('lab_panel_member').values(batch).execute();
  });
  return panels;
}
