import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';

/** A column of a table in the service's schema, as information_schema describes it. */
export interface StoredColumn {
  readonly table: string;
  readonly column: string;
  /** information_schema data_type: `text`, `ARRAY`, `jsonb`, `integer`, `timestamp with time zone`, … */
  readonly dataType: string;
}

/** What to look for in a column's values (cast to text): a literal, case-insensitive, or a PostgreSQL regular expression. */
export type ValueMatcher =
  | { readonly name: string; readonly literal: string }
  | { readonly name: string; readonly pattern: string };

/** Every column of every table of the current schema (migrations' bookkeeping included), in table and column order. */
export async function listStoredColumns(db: Kysely<Database>): Promise<StoredColumn[]> {
  const result = await sql<{ table_name: string; column_name: string; data_type: string }>`
    select c.table_name, c.column_name, c.data_type
    from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
    order by c.table_name, c.ordinal_position`.execute(db);
  return result.rows.map((row) => ({ table: row.table_name, column: row.column_name, dataType: row.data_type }));
}

/** Columns whose values are text a person or a program wrote: text, varchar, text[], json. */
export function isTextLike(column: StoredColumn): boolean {
  return ['text', 'character varying', 'character', 'ARRAY', 'json', 'jsonb'].includes(column.dataType);
}

/** How many rows of one column match each matcher (the value cast to text); one pass over the table. */
export async function countMatchesInColumn(
  db: Kysely<Database>,
  column: Pick<StoredColumn, 'table' | 'column'>,
  matchers: readonly ValueMatcher[],
): Promise<Map<string, number>> {
  if (matchers.length === 0) return new Map();
  const value = sql`cast(${sql.ref(`${column.table}.${column.column}`)} as text)`;
  const counts = matchers.map((matcher, index) => {
    const condition =
      'literal' in matcher ? sql`strpos(lower(${value}), lower(${matcher.literal})) > 0` : sql`${value} ~* ${matcher.pattern}`;
    return sql<number>`cast(count(*) filter (where ${condition}) as integer)`.as(`m${index}`);
  });
  const row = (await db
    .selectFrom(sql.table(column.table).as(column.table))
    .select(counts)
    .executeTakeFirstOrThrow()) as Record<string, number>;
  return new Map(matchers.map((matcher, index) => [matcher.name, Number(row[`m${index}`] ?? 0)]));
}

/** Up to `limit` distinct values of one column that match a regular expression, for a masked example. */
export async function sampleMatches(db: Kysely<Database>, column: Pick<StoredColumn, 'table' | 'column'>, pattern: string, limit: number): Promise<string[]> {
  const value = sql<string>`cast(${sql.ref(`${column.table}.${column.column}`)} as text)`;
  const rows = await db
    .selectFrom(sql.table(column.table).as(column.table))
    .select(value.as('value'))
    .where(sql<boolean>`${value} ~* ${pattern}`)
    .distinct()
    .limit(limit)
    .execute();
  return rows.map((row) => String((row as { value: string }).value));
}

/** One group of encounters sharing the quasi-identifiers age, sex, primary complaint concept and site. */
export interface QuasiIdentifierGroup {
  readonly ageYears: number;
  readonly sex: string;
  /** The primary complaint concept, or null when the complaint mapped to none. */
  readonly complaint: string | null;
  readonly site: string;
  readonly encounters: number;
  readonly patients: number;
}

/** Every (age, sex, primary complaint, site) group of the cohort, smallest first. */
export async function quasiIdentifierGroups(db: Kysely<Database>): Promise<QuasiIdentifierGroup[]> {
  const rows = await db
    .selectFrom('cohort_encounter')
    .select([
      'age_years',
      'sex',
      sql<string | null>`complaint_concepts[1]`.as('complaint'),
      'site',
      sql<number>`cast(count(*) as integer)`.as('encounters'),
      sql<number>`cast(count(distinct patient_key) as integer)`.as('patients'),
    ])
    .groupBy(['age_years', 'sex', sql`complaint_concepts[1]`, 'site'])
    .orderBy('encounters')
    .orderBy('age_years')
    .orderBy('sex')
    .orderBy(sql`complaint_concepts[1]`)
    .orderBy('site')
    .execute();
  return rows.map((row) => ({
    ageYears: Number(row.age_years),
    sex: row.sex,
    complaint: row.complaint,
    site: row.site,
    encounters: Number(row.encounters),
    patients: Number(row.patients),
  }));
}

/** Free-text values of one column that occur in fewer than `k` encounters: rare text can single a patient out. */
export async function countRareComplaintTexts(db: Kysely<Database>, k: number): Promise<{ readonly values: number; readonly encounters: number }> {
  const row = await db
    .with('texts', (qb) =>
      qb
        .selectFrom('cohort_encounter')
        .select([sql<string>`lower(chief_complaint_text)`.as('text'), sql<number>`count(*)`.as('encounters')])
        .where('chief_complaint_text', 'is not', null)
        .groupBy(sql`lower(chief_complaint_text)`),
    )
    .selectFrom('texts')
    .select([sql<number>`cast(count(*) as integer)`.as('values'), sql<number>`cast(coalesce(sum(encounters), 0) as integer)`.as('encounters')])
    .where('encounters', '<', k)
    .executeTakeFirstOrThrow();
  return { values: Number(row.values), encounters: Number(row.encounters) };
}
