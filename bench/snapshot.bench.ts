/**
 * `npm run bench:snapshot -- --encounters N [--seed S] [--patients P]`: the cost of a cohort-cache miss, without
 * HTTP. Loads the active aggregate generation of the scale bench's database (`cohort_bench_N_seedS` on the server
 * of DATABASE_URL, left by `npm run bench -- --encounters N`) into an in-memory snapshot, draws P prior encounters
 * from the cohort at random (their sex, age, complaint and ICD-10 codes as a hook would see them), and for each one
 * times what a hook does on a miss: `countCohorts` over its relaxation ladder, `describeCohort` of the rung chosen,
 * and the card templates built from it (`cohortCardTemplates`: ranking the items). Prints the per-patient
 * percentiles, and the slowest patients with their cohort's shape.
 */
import { performance } from 'node:perf_hooks';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { AggregateSnapshot } from '../src/cohort/aggregate-snapshot.js';
import { cohortCardTemplates } from '../src/cards/cohort-cards.js';
import { buildCohortLadder, strictestCriteria } from '../src/cohort/matching.js';
import { defaultRules, type Rules } from '../src/cohort/rules.js';
import type { CohortCriteria, PatientFacts, Sex } from '../src/cohort/types.js';
import { loadAggregateSnapshot } from '../src/db/aggregate-snapshot.repository.js';
import type { Database } from '../src/db/database.js';
import { findActiveRuleSet } from '../src/db/rule-set.repository.js';
import { percentile, scaleBenchDatabase } from './measure.js';

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

const encounters = Number((option('encounters') ?? '100000').replace(/_/g, ''));
const seed = Number(option('seed') ?? '1');
const patients = Number(option('patients') ?? '12000');
const serverUrl = process.env.DATABASE_URL;

function describeCriteria(criteria: CohortCriteria): string {
  const icd10 = criteria.icd10 === null ? 'any ICD-10' : `${criteria.icd10.codes.length} ICD-10 (${criteria.icd10.level})`;
  return `${criteria.complaintConcept ?? '*'} ${criteria.sex ?? 'any sex'} ${criteria.ageMin ?? '-'}–${criteria.ageMax ?? '-'} ${icd10}`;
}

interface Timed {
  readonly ms: number;
  readonly countMs: number;
  readonly describeMs: number;
  readonly cardsMs: number;
  readonly items: number;
  readonly chosen: CohortCriteria | null;
  readonly size: number;
}

async function main(): Promise<void> {
  if (!serverUrl) throw new Error('DATABASE_URL must name the PostgreSQL server the scale bench loaded');
  const url = new URL(serverUrl);
  url.pathname = `/${scaleBenchDatabase(encounters, seed)}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    const active = await findActiveRuleSet(db);
    const rules: Rules = active?.rules ?? defaultRules;
    const loadStarted = performance.now();
    const loaded = await loadAggregateSnapshot(db);
    if (loaded.data === null) throw new Error(`${url.pathname.slice(1)} has no usable aggregate generation: run the scale bench first`);
    const loadMs = performance.now() - loadStarted;
    const buildStarted = performance.now();
    const snapshot = new AggregateSnapshot(loaded.data);
    const buildMs = performance.now() - buildStarted;

    // A seeded sample, so that runs compare: the same encounters every time for the same database and size.
    await sql`select setseed(${1 / (seed + 1)})`.execute(db);
    const rows = await sql<{ sex: string; age_years: number; complaint_concepts: string[]; icd10_codes: string[] }>`
      select sex, age_years, complaint_concepts, icd10_codes from cohort_encounter order by random() limit ${patients}`.execute(db);
    const facts: PatientFacts[] = rows.rows.map((row) => ({
      ageYears: row.age_years,
      sex: row.sex as Sex,
      chiefComplaintText: null,
      complaintConcepts: row.complaint_concepts,
      icd10Codes: row.icd10_codes,
      acuity: null,
      draftOrders: [],
    }));

    const baseline = snapshot.describeBaseline();
    const timed: Timed[] = [];
    let unanswerable = 0;
    // One pass to warm the code up, one measured.
    for (const pass of [0, 1]) {
      timed.length = 0;
      for (const one of facts) {
        const strictest = strictestCriteria(one, rules);
        if (strictest.complaintConcept === null && strictest.icd10 === null) continue;
        const ladder = buildCohortLadder(one, rules).map((plan) => plan.criteria);
        if (!ladder.every((criteria) => snapshot.answers(criteria))) {
          if (pass === 1) unanswerable += 1;
          continue;
        }
        const started = performance.now();
        const sizes = snapshot.countCohorts(ladder);
        const counted = performance.now();
        const index = sizes.findIndex((size) => size >= rules.minCohortSize);
        const chosen = index < 0 ? null : ladder[index]!;
        const statistics = chosen === null ? null : snapshot.describeCohort(chosen);
        const described = performance.now();
        if (chosen !== null && statistics !== null) {
          cohortCardTemplates({
            facts: one,
            selection: { plan: { criteria: chosen, relaxation: [] }, statistics, sizesTried: sizes.slice(0, index + 1) },
            baseline,
            rules,
            rulesVersion: active?.version ?? 1,
            patientId: 'bench',
            encounterId: undefined,
            uuidFor: (name) => name,
            conceptDisplay: (concept) => concept,
            countNoiseKey: 'bench',
          });
        }
        const ended = performance.now();
        timed.push({
          ms: ended - started,
          countMs: counted - started,
          describeMs: described - counted,
          cardsMs: ended - described,
          chosen,
          size: index < 0 ? 0 : sizes[index]!,
          items: statistics?.items.length ?? 0,
        });
      }
    }

    const sorted = timed.map((one) => one.ms).sort((a, b) => a - b);
    const total = sorted.reduce((sum, ms) => sum + ms, 0);
    const share = (part: (one: Timed) => number): string => `${((100 * timed.reduce((sum, one) => sum + part(one), 0)) / total).toFixed(0)}%`;
    const heapMb = process.memoryUsage().heapUsed / 1024 / 1024;
    const lines = [
      `Cohort CDS snapshot bench — ${new Date().toISOString()} — ${url.pathname.slice(1)}: generation ${loaded.data.generation}, ` +
        `${loaded.data.cells.length.toLocaleString('en-US')} cells, ${loaded.data.items.length.toLocaleString('en-US')} items, ` +
        `${loaded.data.encounters.toLocaleString('en-US')} encounters`,
      `load ${(loadMs / 1000).toFixed(1)} s, index ${buildMs.toFixed(0)} ms, heap used ${heapMb.toFixed(0)} MB`,
      `${timed.length.toLocaleString('en-US')} patients measured (${unanswerable} not answerable by the cells, ${facts.length - timed.length - unanswerable} with nothing to match)`,
      `per patient (count + describe + cards, ms): mean ${(total / sorted.length).toFixed(3)}, p50 ${percentile(sorted, 50).toFixed(3)}, ` +
        `p90 ${percentile(sorted, 90).toFixed(3)}, p99 ${percentile(sorted, 99).toFixed(3)}, max ${sorted.at(-1)!.toFixed(3)}; ` +
        `countCohorts ${share((one) => one.countMs)}, describeCohort ${share((one) => one.describeMs)}, cards ${share((one) => one.cardsMs)}`,
      'slowest:',
      ...[...timed]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 8)
        .map((one) => `  ${one.ms.toFixed(2)} ms (count ${one.countMs.toFixed(2)}, describe ${one.describeMs.toFixed(2)}, cards ${one.cardsMs.toFixed(2)}): ` +
            `${one.chosen ? describeCriteria(one.chosen) : 'no rung large enough'}, ${one.size.toLocaleString('en-US')} encounters, ${one.items} items`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await db.destroy();
  }
}

await main();
