import { afterAll, beforeAll, expect } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { AggregateSnapshot } from '../../src/cohort/aggregate-snapshot.js';
import { cohortCriteriaKey } from '../../src/cohort/cached-source.js';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { rulesSchema, type Rules } from '../../src/cohort/rules.js';
import type { BaselineStatistics, CohortCriteria, CohortSource, CohortStatistics, PatientFacts, Sex } from '../../src/cohort/types.js';
import { loadAggregateSnapshot } from '../../src/db/aggregate-snapshot.repository.js';
import { AggregateCohortSource, aggregateDimensionsFor, rebuildCohortAggregates } from '../../src/db/cohort-aggregate.repository.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import type { Database } from '../../src/db/database.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { openTestDatabase } from '../helpers/database.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { openIngestedDatabase } from '../helpers/test-templates.js';

/**
 * What the two aggregate suites (cohort-aggregate.int.test.ts, cohort-aggregate-variants.int.test.ts) share: the
 * demo's visits as patients, every distinct cohort of their ladders, and the comparisons with the exact path. Two
 * files so that jest's two workers run them side by side (together they were the longest suite, 2–4 min on PGlite).
 */

export const hasher = createKeyHasher('test-secret-test-secret-test-secret-0123');

export type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

export async function openDemo(directory: string): Promise<TestDatabase> {
  return openIngestedDatabase(directory, 'test-secret-test-secret-test-secret-0123');
}

/** Every ED visit of the cohort as the patient in front of a clinician: its own facts. */
export async function visitFacts(db: Kysely<Database>): Promise<PatientFacts[]> {
  const rows = await sql<{ age_years: number; sex: string; complaint_concepts: string[]; icd10_codes: string[]; acuity: number | null }>`
    select age_years, sex, complaint_concepts, icd10_codes, acuity from cohort_encounter order by encounter_key`.execute(db);
  return rows.rows.map((row) => ({
    ageYears: Number(row.age_years),
    sex: row.sex as Sex,
    chiefComplaintText: null,
    complaintConcepts: row.complaint_concepts,
    icd10Codes: row.icd10_codes,
    acuity: row.acuity === null ? null : Number(row.acuity),
    draftOrders: [],
  }));
}

/** Every rung of every visit's ladder under these rules, each distinct cohort once. */
export function distinctCriteria(visits: readonly PatientFacts[], rules: Rules): CohortCriteria[] {
  const byKey = new Map<string, CohortCriteria>();
  for (const facts of visits) {
    for (const plan of buildCohortLadder(facts, rules)) byKey.set(cohortCriteriaKey(plan.criteria), plan.criteria);
  }
  return [...byKey.values()];
}

/** Criteria the cells answer: one complaint concept or none, ICD-10 at category level (sites and look-back: built for them). */
export function answerable(criteria: CohortCriteria): boolean {
  return criteria.otherComplaintConcepts.length === 0 && (criteria.icd10 === null || criteria.icd10.level === 'category');
}

/** How many of the calls below must go to the exact path: ladders with a rung the cells cannot answer, and such criteria. */
export function expectedExactCalls(visits: readonly PatientFacts[], rules: Rules, criteria: readonly CohortCriteria[]): number {
  const ladders = visits.filter((facts) => !buildCohortLadder(facts, rules).every((plan) => answerable(plan.criteria))).length;
  return ladders + criteria.filter((one) => !answerable(one)).length;
}

/**
 * The exact path over `db`, each answer asked of the database once and then remembered: the suite compares two
 * sources (SQL aggregates, in-memory snapshot) with it, and the exact scan is the slow part (PGlite above all).
 * Only for a database that does not change while it is used.
 */
export function rememberedExact(db: Kysely<Database>): CohortSource {
  const exact = new SqlCohortSource(db);
  const counts = new Map<string, Promise<number[]>>();
  const cohorts = new Map<string, Promise<CohortStatistics>>();
  let baseline: Promise<BaselineStatistics> | undefined;
  const remember = <T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> => {
    let value = map.get(key);
    if (!value) map.set(key, (value = load()));
    return value;
  };
  return {
    countCohorts: (ladder) => remember(counts, ladder.map(cohortCriteriaKey).join('|'), () => exact.countCohorts(ladder)),
    describeCohort: (one) => remember(cohorts, cohortCriteriaKey(one), () => exact.describeCohort(one)),
    describeBaseline: () => (baseline ??= exact.describeBaseline()),
  };
}

/**
 * The in-memory snapshot of the usable generation gives the exact path's answer for every ladder and cohort it
 * answers; returns how many cohorts it described itself (the others: criteria it cannot answer, or a non-uniform item).
 */
export async function expectSnapshotExact(
  db: Kysely<Database>,
  visits: readonly PatientFacts[],
  rules: Rules,
  criteria: readonly CohortCriteria[],
  exact: CohortSource = new SqlCohortSource(db),
): Promise<number> {
  const loaded = await loadAggregateSnapshot(db);
  expect(loaded.data).not.toBeNull();
  const snapshot = new AggregateSnapshot(loaded.data!);
  for (const facts of visits) {
    const ladder = buildCohortLadder(facts, rules).map((plan) => plan.criteria);
    if (ladder.every((one) => snapshot.answers(one))) expect(snapshot.countCohorts(ladder)).toEqual(await exact.countCohorts(ladder));
  }
  let described = 0;
  for (const one of criteria) {
    expect(snapshot.answers(one)).toBe(answerable(one));
    const statistics = snapshot.answers(one) ? snapshot.describeCohort(one) : null;
    if (statistics === null) continue;
    expect(statistics).toEqual(await exact.describeCohort(one));
    described += 1;
  }
  expect(snapshot.describeBaseline()).toEqual(await exact.describeBaseline());
  // Both ways of finding an ICD-10 criterion's cells (the age band, or the categories' posting lists within it) were
  // taken on the demo's visits, so both gave the exact answers above.
  expect(snapshot.walks.band).toBeGreaterThan(0);
  expect(snapshot.walks.postings).toBeGreaterThan(0);
  return described;
}

/**
 * One rules variant: the aggregates rebuilt for its dimensions give `exact`'s answer for every visit's ladder, every
 * distinct cohort and the baseline, answer most of them themselves, and the in-memory snapshot answers the same.
 */
export async function expectVariantExact(db: Kysely<Database>, visits: readonly PatientFacts[], exact: CohortSource, overrides: Partial<Rules>): Promise<void> {
  const rules = rulesSchema.parse(overrides);
  await rebuildCohortAggregates(db, aggregateDimensionsFor(rules));
  const aggregates = new AggregateCohortSource(db, { generationTtlMs: 0 });
  const criteria = distinctCriteria(visits, rules);
  expect(criteria.length).toBeGreaterThan(50);
  for (const facts of visits) {
    const ladder = buildCohortLadder(facts, rules).map((plan) => plan.criteria);
    expect(await aggregates.countCohorts(ladder)).toEqual(await exact.countCohorts(ladder));
  }
  for (const one of criteria) {
    expect(await aggregates.describeCohort(one)).toEqual(await exact.describeCohort(one));
  }
  expect(await aggregates.describeBaseline()).toEqual(await exact.describeBaseline());
  // The aggregates did the work wherever the criteria allow (exact codes and several concepts do not).
  expect(aggregates.answered.exact).toBe(expectedExactCalls(visits, rules, criteria));
  expect(aggregates.answered.aggregates).toBeGreaterThan(criteria.length / 2);
  // The same cells held in memory answer the same.
  expect(await expectSnapshotExact(db, visits, rules, criteria, exact)).toBeGreaterThan(criteria.length / 2);
}

export const variants: Record<string, Partial<Rules>> = {
  default: {},
  'acuity within 1': { acuityMatch: 'within-1' },
  'acuity exact, sex ignored, age ±5': { acuityMatch: 'exact', matchSex: false, ageWindowYears: 5, widenedAgeWindowYears: 15 },
  'all categories': { icd10Overlap: 'all' },
  'jaccard 0.5': { icd10Overlap: 'jaccard', icd10MinJaccard: 0.5 },
  'jaccard 0.34': { icd10Overlap: 'jaccard', icd10MinJaccard: 0.34 },
  'any complaint concept': { complaintMatch: 'any' },
  'full ICD-10 codes': { icd10Level: 'full' },
  'look back 30 years at one site': { lookbackYears: 30, sites: ['default'] },
};

/** The variants each file checks: the first five in cohort-aggregate.int.test.ts, the others beside the opt-out suite. */
export const firstVariants = Object.entries(variants).slice(0, 5);
export const otherVariants = Object.entries(variants).slice(5);

/** What a suite of the demo shares between its tests (filled by its beforeAll). */
export interface DemoCohort {
  database: TestDatabase;
  visits: PatientFacts[];
  /**
   * The exact path, each answer asked once: the rules variants rebuild the aggregates only and the encounters stay as
   * ingested until a test deletes some, so criteria two variants share are one question.
   */
  exactAsIngested: CohortSource;
}

/** Registers the suite's beforeAll/afterAll: a copy of the ingested demo, its visits, the remembered exact path. */
export function demoCohortForSuite(): DemoCohort {
  const demo = {} as DemoCohort;
  beforeAll(async () => {
    demo.database = await openDemo(mimicDemoDirectory);
    demo.visits = await visitFacts(demo.database.db);
    demo.exactAsIngested = rememberedExact(demo.database.db);
  }, 180000);
  afterAll(async () => {
    await demo.database?.close();
  });
  return demo;
}
