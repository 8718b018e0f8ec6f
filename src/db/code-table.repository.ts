import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';
import { readCsvRecords } from '../ingest/csv.js';
import type { Database, Icd10CodeTable } from './database.js';

/** File names of the CMS tables in a code-table folder. */
export const codeTableFiles = {
  icd10: 'icd10cm-order-Jan-2021.csv.gz',
  icd9ToIcd10: 'icd_cm_9_to_10_mapping.csv.gz',
} as const;

export interface CodeTableLoad {
  /** Rows inserted now; 0 when the table already held rows. */
  readonly icd10Codes: number;
  readonly icd9ToIcd10Mappings: number;
}

// One statement per batch through unnest(): four array parameters instead of 20,000 scalars.
const batchSize = 5000;

async function* gzipCsvRecords(file: string): AsyncGenerator<string[]> {
  const source = createReadStream(file);
  const input = source.pipe(createGunzip());
  source.on('error', (error) => input.destroy(error));
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    let header = true;
    for await (const record of readCsvRecords(lines)) {
      if (header) header = false;
      else yield record;
    }
  } finally {
    lines.close();
    source.destroy();
  }
}

async function isEmpty(db: Kysely<Database> | Transaction<Database>, table: 'icd10_code' | 'icd9_to_icd10'): Promise<boolean> {
  const row = await db.selectFrom(table).select(sql<number>`1`.as('present')).limit(1).executeTakeFirst();
  return row === undefined;
}

async function insertIcd10Codes(db: Transaction<Database>, file: string): Promise<number> {
  let inserted = 0;
  let batch: string[][] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await sql`
      insert into icd10_code (code, billable, short_description, long_description)
      select * from unnest(
        ${batch.map((row) => row[0])}::text[], ${batch.map((row) => row[1] === '1')}::boolean[],
        ${batch.map((row) => row[2])}::text[], ${batch.map((row) => row[3])}::text[])
      on conflict (code) do nothing`.execute(db);
    inserted += batch.length;
    batch = [];
  };
  for await (const [code, billable, short, long] of gzipCsvRecords(file)) {
    if (!code || short === undefined) continue;
    batch.push([code.trim().toUpperCase(), billable ?? '0', short, long || short]);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return inserted;
}

async function insertIcd9Mappings(db: Transaction<Database>, file: string): Promise<number> {
  let inserted = 0;
  let batch: Array<readonly [string, string]> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await sql`
      insert into icd9_to_icd10 (icd9_code, icd10_code)
      select * from unnest(${batch.map((row) => row[0])}::text[], ${batch.map((row) => row[1])}::text[])
      on conflict do nothing`.execute(db);
    inserted += batch.length;
    batch = [];
  };
  for await (const [icd9, icd10, flags] of gzipCsvRecords(file)) {
    // GEM flags, second digit: 1 = "no map" (the ICD-10 column then reads NoDx).
    if (!icd9 || !icd10 || flags?.[1] === '1') continue;
    batch.push([icd9.trim().toUpperCase(), icd10.trim().toUpperCase()]);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return inserted;
}

/** The words of the loaded descriptions into icd10_description_word (what listIcd10DescriptionWords reads). */
async function storeDescriptionWords(db: Transaction<Database>): Promise<void> {
  await sql`delete from icd10_description_word`.execute(db);
  await sql`
    insert into icd10_description_word (word)
    select distinct word from (
      select regexp_split_to_table(lower(long_description || ' ' || short_description), '[^a-z0-9]+') as word from icd10_code
    ) as words
    where word <> '' and word !~ '^[0-9]+$'`.execute(db);
}

/** Loads the ICD-10-CM codes and the ICD-9→10 GEMs from `directory` into tables that are still empty. */
export async function loadCodeTables(db: Kysely<Database>, directory: string): Promise<CodeTableLoad> {
  return db.transaction().execute(async (trx) => {
    const icd10Codes = (await isEmpty(trx, 'icd10_code')) ? await insertIcd10Codes(trx, path.join(directory, codeTableFiles.icd10)) : 0;
    if (icd10Codes > 0) await storeDescriptionWords(trx);
    const icd9ToIcd10Mappings = (await isEmpty(trx, 'icd9_to_icd10'))
      ? await insertIcd9Mappings(trx, path.join(directory, codeTableFiles.icd9ToIcd10))
      : 0;
    return { icd10Codes, icd9ToIcd10Mappings };
  });
}

/** The whole GEM table as a map, for mapping ICD-9-CM diagnoses at ingest and in hooks. */
export async function loadIcd9ToIcd10Map(db: Kysely<Database>): Promise<Icd9ToIcd10Map> {
  const rows = await db.selectFrom('icd9_to_icd10').select(['icd9_code', 'icd10_code']).orderBy('icd9_code').orderBy('icd10_code').execute();
  const map = new Map<string, string[]>();
  for (const row of rows) {
    const codes = map.get(row.icd9_code);
    if (codes) codes.push(row.icd10_code);
    else map.set(row.icd9_code, [row.icd10_code]);
  }
  return map;
}

const codeLike = /^[A-Z][0-9][0-9A-Z]{0,5}$/;

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

/** ICD-10-CM codes starting with a code prefix ("r07", "R07.8"), else whose description contains the words. */
export async function searchIcd10Codes(db: Kysely<Database>, prefixOrText: string, limit = 20): Promise<Selectable<Icd10CodeTable>[]> {
  const query = prefixOrText.trim();
  if (query.length === 0) return [];
  const compact = query.replace(/\./g, '').toUpperCase();
  const columns = ['code', 'billable', 'short_description', 'long_description'] as const;
  if (codeLike.test(compact)) {
    const byCode = await db
      .selectFrom('icd10_code')
      .select(columns)
      .where('code', 'like', `${escapeLike(compact)}%`)
      .orderBy(sql`length(code)`)
      .orderBy('code')
      .limit(limit)
      .execute();
    if (byCode.length > 0) return byCode;
  }
  const words = query.toLowerCase().split(/\s+/).filter(Boolean).slice(0, 8);
  return db
    .selectFrom('icd10_code')
    .select(columns)
    .where((eb) => eb.and(words.map((word) => eb('long_description', 'ilike', `%${escapeLike(word)}%`))))
    .orderBy('billable', 'desc')
    .orderBy(sql`length(long_description)`)
    .orderBy('code')
    .limit(limit)
    .execute();
}

/**
 * The lower-case words of the ICD-10-CM descriptions: the clinical language a stored chief complaint may keep
 * (src/ingest/fhir-to-cohort.ts, docs/privacy.md). Split out once when the codes are loaded (numbers left out: a
 * stored complaint keeps those of up to three digits, whatever the descriptions hold); empty before that.
 */
export async function listIcd10DescriptionWords(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db.selectFrom('icd10_description_word').select('word').execute();
  return new Set(rows.map((row) => row.word));
}
