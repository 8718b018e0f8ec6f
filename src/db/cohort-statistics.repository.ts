import { sql, type Expression, type ExpressionBuilder, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type {
  BaselineStatistics,
  CohortCriteria,
  CohortSource,
  CohortStatistics,
  DescribeCohortOptions,
  Icd10Overlap,
  ItemCategory,
  ItemCount,
} from '../cohort/types.js';
import type { Database } from './database.js';

/** Lab analytes are counted as the orderable panel they belong to; panels are derived at ingest. */
export const panelSystem = 'urn:cohort-cds:lab-panel';

type EncounterExpressions = ExpressionBuilder<Database, 'cohort_encounter'>;

/** A text[] parameter. */
export function textArray(values: readonly string[]) {
  return sql<string[]>`cast(${sql.val([...values])} as text[])`;
}

/** How much of the patient's ICD-10 set an encounter's set (`column`) must share; see `Icd10Overlap`. */
export function icd10OverlapCondition(column: RawBuilder<string[]>, wanted: readonly string[], overlap: Icd10Overlap): RawBuilder<SqlBool> {
  const codes = textArray(wanted);
  switch (overlap.measure) {
    case 'any':
      return sql<SqlBool>`${column} && ${codes}`;
    case 'all':
      return sql<SqlBool>`${column} @> ${codes}`;
    case 'jaccard': {
      // |A ∩ B| / |A ∪ B| as a float8 division: IEEE double precision, the very division the reference does.
      // `&&` first so that the GIN index narrows the rows before the per-row counts.
      const shared = sql`(select count(distinct code) from unnest(${column}) as code where code = any(${codes}))`;
      const union = sql`(select count(distinct code) from unnest(${column} || ${codes}) as code)`;
      return sql<SqlBool>`(${column} && ${codes} and cast(${shared} as double precision) / cast(${union} as double precision) >= cast(${overlap.atLeast} as double precision))`;
    }
  }
}

/** The SQL condition for one set of criteria; the reference semantics are `matchesCriteria` in cohort/. */
function criteriaCondition(eb: EncounterExpressions, criteria: CohortCriteria): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = [];
  if (criteria.sex !== null) conditions.push(eb('cohort_encounter.sex', '=', criteria.sex));
  if (criteria.ageMin !== null) conditions.push(eb('cohort_encounter.age_years', '>=', criteria.ageMin));
  if (criteria.ageMax !== null) conditions.push(eb('cohort_encounter.age_years', '<=', criteria.ageMax));
  if (criteria.acuity !== null) {
    // A null acuity fails both comparisons: encounters without one are outside any range, as in the reference.
    conditions.push(eb('cohort_encounter.acuity', '>=', criteria.acuity.min));
    conditions.push(eb('cohort_encounter.acuity', '<=', criteria.acuity.max));
  }
  if (criteria.complaintConcept !== null) {
    const concepts = [criteria.complaintConcept, ...criteria.otherComplaintConcepts];
    conditions.push(
      concepts.length === 1
        ? sql<SqlBool>`cohort_encounter.complaint_concepts @> ${textArray(concepts)}`
        : sql<SqlBool>`cohort_encounter.complaint_concepts && ${textArray(concepts)}`,
    );
  }
  if (criteria.icd10 !== null) {
    const { level, codes, overlap } = criteria.icd10;
    if (level === 'category') {
      const categories = [...new Set(codes.map((code) => code.slice(0, 3)))];
      conditions.push(icd10OverlapCondition(sql<string[]>`cohort_encounter.icd10_categories`, categories, overlap));
    } else {
      conditions.push(icd10OverlapCondition(sql<string[]>`cohort_encounter.icd10_codes`, [...new Set(codes)], overlap));
    }
  }
  if (criteria.sites !== null) conditions.push(sql<SqlBool>`cohort_encounter.site = any(${textArray(criteria.sites)})`);
  if (criteria.lookback !== null) {
    const { years, referenceYear } = criteria.lookback;
    // Without a reference year the window counts back from the newest start year on record (all sites).
    const oldestExcluded =
      referenceYear === null
        ? sql<number>`(select max(newest.start_year) from cohort_encounter as newest) - cast(${years} as integer)`
        : sql<number>`cast(${referenceYear - years} as integer)`;
    conditions.push(sql<SqlBool>`cohort_encounter.start_year > ${oldestExcluded}`);
  }
  return conditions.length === 0 ? sql<SqlBool>`true` : eb.and(conditions);
}

interface ItemRow {
  item_code: string;
  category: ItemCategory;
  kind: string;
  display: string;
  code_system: string | null;
  code: string | null;
  encounters: number;
}

/** Distinct encounters per item (analytes folded into their panel) among encounters passing `where`. */
async function countItems(db: Kysely<Database>, criteria: CohortCriteria | null): Promise<ItemCount[]> {
  const rows = await db
    .with('cohort', (qb) =>
      qb
        .selectFrom('cohort_encounter')
        .select('encounter_key')
        .where((eb) => (criteria === null ? sql<SqlBool>`true` : criteriaCondition(eb, criteria))),
    )
    .with('folded', (qb) =>
      qb
        .selectFrom('encounter_item as item')
        .innerJoin('cohort', 'cohort.encounter_key', 'item.encounter_key')
        .leftJoin('lab_panel_member as member', 'member.analyte_code', 'item.item_code')
        .leftJoin('lab_panel as panel', 'panel.panel_code', 'member.panel_code')
        .select((eb) => [
          'item.encounter_key',
          eb.fn.coalesce('panel.panel_code', 'item.item_code').as('item_code'),
          'item.category',
          sql<string>`case when panel.panel_code is null then item.kind else 'lab-panel' end`.as('kind'),
          eb.fn.coalesce('panel.display', 'item.display').as('display'),
          sql<string | null>`case when panel.panel_code is null then item.code_system else ${panelSystem} end`.as('code_system'),
          sql<string | null>`case when panel.panel_code is null then item.code else panel.panel_code end`.as('code'),
        ]),
    )
    .selectFrom('folded')
    .select((eb) => [
      'item_code',
      eb.fn.min('category').as('category'),
      eb.fn.min('kind').as('kind'),
      eb.fn.min('display').as('display'),
      eb.fn.min('code_system').as('code_system'),
      eb.fn.min('code').as('code'),
      sql<number>`cast(count(distinct encounter_key) as integer)`.as('encounters'),
    ])
    .groupBy('item_code')
    .orderBy('encounters', 'desc')
    .orderBy('item_code')
    .execute();
  return (rows as ItemRow[]).map((row) => ({
    itemCode: row.item_code,
    category: row.category,
    kind: row.kind,
    display: row.display,
    codeSystem: row.code_system,
    code: row.code,
    encounters: Number(row.encounters),
  }));
}

/**
 * Item code (analytes folded into their panel) → the sum over the cohort's encounters of the reputation weight of
 * the clinician who ordered it there (clinician_reputation, docs/reputation.md; 1 when none is rated), the largest
 * when several rows fold into one item. The opt-in path of rules `itemWeighting: 'clinician-reputation'`.
 */
async function weightedItemSums(db: Kysely<Database>, criteria: CohortCriteria): Promise<Map<string, number>> {
  const rows = await db
    .with('cohort', (qb) => qb.selectFrom('cohort_encounter').select('encounter_key').where((eb) => criteriaCondition(eb, criteria)))
    .with('per_encounter', (qb) =>
      qb
        .selectFrom('encounter_item as item')
        .innerJoin('cohort', 'cohort.encounter_key', 'item.encounter_key')
        .leftJoin('lab_panel_member as member', 'member.analyte_code', 'item.item_code')
        .leftJoin('clinician_reputation as reputation', 'reputation.clinician_key', 'item.clinician_key')
        .select((eb) => [
          eb.fn.coalesce('member.panel_code', 'item.item_code').as('item_code'),
          sql<number>`max(coalesce(reputation.weight, 1))`.as('weight'),
        ])
        .groupBy(['item.encounter_key', sql`coalesce(member.panel_code, item.item_code)`]),
    )
    .selectFrom('per_encounter')
    .select(['item_code', sql<number>`cast(sum(weight) as double precision)`.as('weighted')])
    .groupBy('item_code')
    .execute();
  return new Map(rows.map((row) => [row.item_code, Number(row.weighted)]));
}

/** Statistics straight from the cohort tables: every hook scans its cohort (fine for the demo's size). */
export class SqlCohortSource implements CohortSource {
  constructor(private readonly db: Kysely<Database>) {}

  /** All rungs in one pass over the table: one FILTER-ed count per criteria. */
  async countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    if (criteria.length === 0) return [];
    const row = await this.db
      .selectFrom('cohort_encounter')
      .select((eb) =>
        criteria.map((one, index) =>
          sql<number>`cast(count(*) filter (where ${criteriaCondition(eb, one)}) as integer)`.as(`rung_${index}`),
        ),
      )
      .executeTakeFirstOrThrow();
    const counts = row as Record<string, number>;
    return criteria.map((_, index) => Number(counts[`rung_${index}`] ?? 0));
  }

  async describeCohort(criteria: CohortCriteria, options: DescribeCohortOptions = {}): Promise<CohortStatistics> {
    const [outcomes, counted, weights] = await Promise.all([
      this.db
        .selectFrom('cohort_encounter')
        .where((eb) => criteriaCondition(eb, criteria))
        .select([
          sql<number>`cast(count(*) as integer)`.as('size'),
          sql<number>`cast(count(*) filter (where admitted) as integer)`.as('admitted'),
          sql<number>`cast(count(*) filter (where returned_72h) as integer)`.as('returned_72h'),
          sql<number | null>`percentile_cont(0.5) within group (order by ed_los_minutes)`.as('ed_los_median'),
          sql<number>`cast(count(ed_los_minutes) as integer)`.as('ed_los_known'),
          sql<number | null>`percentile_cont(0.5) within group (order by hospital_los_minutes) filter (where admitted)`.as(
            'hospital_los_median',
          ),
          sql<number>`cast(count(hospital_los_minutes) filter (where admitted) as integer)`.as('hospital_los_known'),
        ])
        .executeTakeFirstOrThrow(),
      countItems(this.db, criteria),
      options.itemWeighting === 'clinician-reputation' ? weightedItemSums(this.db, criteria) : null,
    ]);
    const items = weights === null ? counted : counted.map((item) => ({ ...item, weightedEncounters: weights.get(item.itemCode) ?? 0 }));
    return {
      size: Number(outcomes.size),
      items,
      outcomes: {
        admitted: Number(outcomes.admitted),
        returned72h: Number(outcomes.returned_72h),
        edLosMedianMinutes: outcomes.ed_los_median === null ? null : Number(outcomes.ed_los_median),
        edLosKnown: Number(outcomes.ed_los_known),
        hospitalLosMedianMinutes: outcomes.hospital_los_median === null ? null : Number(outcomes.hospital_los_median),
        hospitalLosKnown: Number(outcomes.hospital_los_known),
      },
    };
  }

  async describeBaseline(): Promise<BaselineStatistics> {
    const [size, items] = await Promise.all([
      this.db
        .selectFrom('cohort_encounter')
        .select(sql<number>`cast(count(*) as integer)`.as('size'))
        .executeTakeFirstOrThrow(),
      countItems(this.db, null),
    ]);
    return { size: Number(size.size), items: new Map(items.map((item) => [item.itemCode, item.encounters])) };
  }
}
