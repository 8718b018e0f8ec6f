// Times the hook path's two cohort queries (SqlCohortSource: the rungs' counts, then the chosen cohort's
// statistics) against a loaded PostgreSQL, uncached, for patients drawn from the cohort itself: the latency
// figures of docs/scaling.md. Read-only.
//   DATABASE_URL=postgres://… node --import ./test/helpers/run-typescript.mjs deploy/measure-cohort-queries.ts [patients]
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/connection.js';
import { SqlCohortSource } from '../src/db/cohort-statistics.repository.js';
import type { CohortCriteria, Sex } from '../src/cohort/types.js';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required (a PostgreSQL database with a cohort loaded)');
const patients = Number(process.argv[2] ?? 200);
const database = await openDatabase({ databaseUrl: url, dataDirectory: 'memory', poolSize: 2 });
const source = new SqlCohortSource(database.db);
// Patients as the default rules match them: primary concept, sex, age ±10 then ±20 then any sex, any shared category.
const sample = await database.db
  .selectFrom('cohort_encounter')
  .select(['sex', 'age_years', 'complaint_concepts', 'icd10_categories'])
  .where(sql<boolean>`cardinality(complaint_concepts) > 0`)
  .orderBy(sql`md5(encounter_key)`)
  .limit(patients)
  .execute();
const encounters = await sql<{ n: number }>`select count(*)::int as n from cohort_encounter`.execute(database.db);

function rungs(row: (typeof sample)[number]): CohortCriteria[] {
  const base = {
    acuity: null,
    complaintConcept: row.complaint_concepts[0]!,
    otherComplaintConcepts: [],
    icd10: row.icd10_categories.length > 0 ? { level: 'category' as const, codes: row.icd10_categories, overlap: { measure: 'any' as const } } : null,
    sites: null,
    lookback: null,
  };
  return [
    { ...base, sex: row.sex as Sex, ageMin: row.age_years - 10, ageMax: row.age_years + 10 },
    { ...base, sex: row.sex as Sex, ageMin: row.age_years - 20, ageMax: row.age_years + 20 },
    { ...base, sex: null, ageMin: row.age_years - 20, ageMax: row.age_years + 20 },
  ];
}

const counting: number[] = [];
const describing: number[] = [];
for (const row of sample) {
  const criteria = rungs(row);
  let started = performance.now();
  const counts = await source.countCohorts(criteria);
  counting.push(performance.now() - started);
  const chosen = criteria[Math.max(0, counts.findIndex((count) => count >= 11))]!;
  started = performance.now();
  await source.describeCohort(chosen);
  describing.push(performance.now() - started);
}

function summary(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (share: number) => sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))]!.toFixed(1);
  return `p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`;
}
process.stdout.write(`${encounters.rows[0]!.n} encounters, ${sample.length} patients drawn from them\n`);
process.stdout.write(`countCohorts (3 rungs):  ${summary(counting)}\n`);
process.stdout.write(`describeCohort (chosen): ${summary(describing)}\n`);
await database.close();
