import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { rulesSchema } from '../../src/cohort/rules.js';
import type { CohortSource, PatientFacts } from '../../src/cohort/types.js';
import { AggregateCohortSource, aggregateDimensionsFor, rebuildCohortAggregates } from '../../src/db/cohort-aggregate.repository.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import { optOutPatient } from '../../src/privacy/opt-out.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { writeDemoWithoutPatient } from '../helpers/demo-without-patient.js';
import {
  distinctCriteria,
  expectedExactCalls,
  expectSnapshotExact,
  hasher,
  otherVariants,
  openDemo,
  rememberedExact,
  visitFacts,
  type TestDatabase,
} from './cohort-aggregate-checks.js';

describe('AggregateCohortSource on the real demo, more rules variants', () => {
  let database: TestDatabase;
  let visits: PatientFacts[];
  // The variants rebuild the aggregates only: the exact answers are asked once for all of them.
  let exactAsIngested: CohortSource;

  beforeAll(async () => {
    database = await openDemo(mimicDemoDirectory);
    visits = await visitFacts(database.db);
    exactAsIngested = rememberedExact(database.db);
  }, 180000);

  afterAll(async () => {
    await database?.close();
  });

  for (const [name, overrides] of otherVariants) {
    it(`gives the exact path's statistics for every visit's cohorts: ${name}`, async () => {
      const rules = rulesSchema.parse(overrides);
      await rebuildCohortAggregates(database.db, aggregateDimensionsFor(rules));
      const aggregates = new AggregateCohortSource(database.db, { generationTtlMs: 0 });
      const exact = exactAsIngested;
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
      expect(await expectSnapshotExact(database.db, visits, rules, criteria, exact)).toBeGreaterThan(criteria.length / 2);
    }, 300000);
  }
});

describe('AggregateCohortSource after an opt-out', () => {
  let full: TestDatabase;
  let without: TestDatabase;
  let directory: string;
  let patientId: string;

  beforeAll(async () => {
    const encounters = gunzipSync(await readFile(path.join(mimicDemoDirectory, 'MimicEncounterED.ndjson.gz')))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { subject: { reference: string } });
    const visitsPerPatient = new Map<string, number>();
    for (const encounter of encounters) {
      const id = encounter.subject.reference.split('/')[1]!;
      visitsPerPatient.set(id, (visitsPerPatient.get(id) ?? 0) + 1);
    }
    // The patient with the most ED visits: the most cells to take them out of.
    patientId = [...visitsPerPatient.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    directory = await mkdtemp(path.join(tmpdir(), 'aggregate-opt-out-'));
    await writeDemoWithoutPatient(directory, patientId);
    full = await openDemo(mimicDemoDirectory);
    without = await openDemo(directory);
  }, 300000);

  afterAll(async () => {
    await full?.close();
    await without?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('answers as a fresh ingest without the patient, from the aggregates', async () => {
    const rules = rulesSchema.parse({});
    const visits = await visitFacts(full.db);
    const removed = await optOutPatient(full.db, { hasher, patientId, source: 'api', actor: 'test' });
    expect(removed.removed.encounters).toBeGreaterThan(1);
    const afterOptOut = new AggregateCohortSource(full.db, { generationTtlMs: 0 });
    const fresh = new AggregateCohortSource(without.db, { generationTtlMs: 0 });
    const exact = new SqlCohortSource(full.db);
    const criteria = distinctCriteria(visits, rules);
    for (const facts of visits) {
      const ladder = buildCohortLadder(facts, rules).map((plan) => plan.criteria);
      const counts = await afterOptOut.countCohorts(ladder);
      expect(counts).toEqual(await fresh.countCohorts(ladder));
      expect(counts).toEqual(await exact.countCohorts(ladder));
    }
    for (const one of criteria) {
      const statistics = await afterOptOut.describeCohort(one);
      expect(statistics).toEqual(await fresh.describeCohort(one));
      expect(statistics).toEqual(await exact.describeCohort(one));
    }
    expect(await afterOptOut.describeBaseline()).toEqual(await fresh.describeBaseline());
    // The fresh ingest answers from its aggregates. After the opt-out the lab panels were derived again without the
    // patient; where that changed a panel, the folded item counts are no longer the aggregates' and the exact path
    // answers until the next rebuild (the test below covers the deletion trigger with the panels unchanged).
    expect(fresh.answered.exact).toBe(expectedExactCalls(visits, rules, criteria));
  }, 300000);
});
