import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { rulesSchema } from '../../src/cohort/rules.js';
import {
  AggregateCohortSource,
  aggregateDimensionsFor,
  rebuildCohortAggregates,
  refreshCohortAggregates,
} from '../../src/db/cohort-aggregate.repository.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import { SnapshotCohortSource } from '../../src/cohort/snapshot-source.js';
import { loadAggregateSnapshot } from '../../src/db/aggregate-snapshot.repository.js';
import { deleteEncountersOfPatients } from '../../src/db/opt-out.repository.js';
import {
  demoCohortForSuite,
  distinctCriteria,
  expectedExactCalls,
  expectSnapshotExact,
  expectVariantExact,
  firstVariants,
  rememberedExact,
  visitFacts,
} from './cohort-aggregate-checks.js';

describe('AggregateCohortSource on the real demo', () => {
  const demo = demoCohortForSuite();

  it('is built by the ingest', async () => {
    const generations = await sql<{ status: string; encounters: number }>`
      select status, encounters from cohort_aggregate_generation`.execute(demo.database.db);
    expect(generations.rows).toEqual([{ status: 'active', encounters: demo.visits.length }]);
    expect(demo.visits.length).toBeGreaterThan(200);
  });

  for (const [name, overrides] of firstVariants) {
    it(`gives the exact path's statistics for every visit's cohorts: ${name}`, async () => {
      await expectVariantExact(demo.database.db, demo.visits, demo.exactAsIngested, overrides);
    }, 300000);
  }
  it('keeps serving the previous generation while a rebuild runs, then the new one', async () => {
    const rules = rulesSchema.parse({});
    const aggregates = new AggregateCohortSource(demo.database.db, { generationTtlMs: 0 });
    const exact = new SqlCohortSource(demo.database.db);
    const ladder = buildCohortLadder(demo.visits[0]!, rules).map((plan) => plan.criteria);
    const before = await sql<{ generation: number }>`select generation from cohort_aggregate_generation where status = 'active'`.execute(demo.database.db);
    const rebuild = rebuildCohortAggregates(demo.database.db, aggregateDimensionsFor(rules));
    const during = await Promise.all([aggregates.countCohorts(ladder), aggregates.describeCohort(ladder[0]!)]);
    const rebuilt = await rebuild;
    expect(rebuilt.generation).toBeGreaterThan(Number(before.rows[0]!.generation));
    expect(during).toEqual([await exact.countCohorts(ladder), await exact.describeCohort(ladder[0]!)]);
    expect(aggregates.answered).toEqual({ aggregates: 2, exact: 0 });
    const kept = await sql<{ status: string }>`select status from cohort_aggregate_generation order by generation`.execute(demo.database.db);
    expect(kept.rows.map((row) => row.status)).toEqual(['retired', 'active']);
  }, 120000);

  it('takes a deleted patient out of the aggregates in the deleting transaction', async () => {
    const rules = rulesSchema.parse({});
    await refreshCohortAggregates(demo.database.db);
    const patient = await sql<{ patient_key: string }>`
      select patient_key from cohort_encounter group by patient_key order by count(*) desc, patient_key limit 1`.execute(demo.database.db);
    const removed = await demo.database.db.transaction().execute((trx) => deleteEncountersOfPatients(trx, [patient.rows[0]!.patient_key]));
    expect(removed.encounters).toBeGreaterThan(1);
    const remaining = await visitFacts(demo.database.db);
    const aggregates = new AggregateCohortSource(demo.database.db, { generationTtlMs: 0 });
    const exact = rememberedExact(demo.database.db);
    const criteria = distinctCriteria(demo.visits, rules);
    for (const facts of demo.visits) {
      const ladder = buildCohortLadder(facts, rules).map((plan) => plan.criteria);
      expect(await aggregates.countCohorts(ladder)).toEqual(await exact.countCohorts(ladder));
    }
    for (const one of criteria) expect(await aggregates.describeCohort(one)).toEqual(await exact.describeCohort(one));
    expect(await aggregates.describeBaseline()).toEqual(await exact.describeBaseline());
    expect(aggregates.answered.exact).toBe(expectedExactCalls(demo.visits, rules, criteria));
    expect(remaining.length).toBe(demo.visits.length - removed.encounters);
    expect(await expectSnapshotExact(demo.database.db, demo.visits, rules, criteria, exact)).toBeGreaterThan(criteria.length / 2);
    demo.visits = remaining;
  }, 300000);

  it('falls back to the exact path once an encounter is moved to another cell, until the next rebuild', async () => {
    const rules = rulesSchema.parse({});
    await refreshCohortAggregates(demo.database.db);
    const target = demo.visits.find((facts) => facts.complaintConcepts.length > 0)!;
    const criteria = buildCohortLadder(target, rules).map((plan) => plan.criteria);
    await sql`update cohort_encounter set complaint_concepts = '{}' where encounter_key = (
      select encounter_key from cohort_encounter where complaint_concepts @> ${sql.val([target.complaintConcepts[0]!])}::text[] order by encounter_key limit 1)`.execute(demo.database.db);
    const aggregates = new AggregateCohortSource(demo.database.db, { generationTtlMs: 0 });
    const exact = new SqlCohortSource(demo.database.db);
    expect(await aggregates.countCohorts(criteria)).toEqual(await exact.countCohorts(criteria));
    expect(aggregates.answered).toEqual({ aggregates: 0, exact: 1 });
    await refreshCohortAggregates(demo.database.db);
    expect(await aggregates.describeCohort(criteria.at(-1)!)).toEqual(await exact.describeCohort(criteria.at(-1)!));
    expect(aggregates.answered).toEqual({ aggregates: 1, exact: 1 });
  }, 120000);

  it('answers from memory, sees a deletion made elsewhere at its next poll, and never serves the old numbers after clear()', async () => {
    const rules = rulesSchema.parse({});
    const exact = new SqlCohortSource(demo.database.db);
    const source = new SnapshotCohortSource(new AggregateCohortSource(demo.database.db), { load: () => loadAggregateSnapshot(demo.database.db), pollMs: 60_000 });
    await source.start();
    try {
      const ladders = demo.visits.map((facts) => buildCohortLadder(facts, rules).map((plan) => plan.criteria));
      for (const ladder of ladders) expect(await source.countCohorts(ladder)).toEqual(await exact.countCohorts(ladder));
      expect(source.answered.fallback).toBe(0);
      const versionBefore = source.knownVersion();
      expect(versionBefore).toBeDefined();

      // A deletion committed elsewhere: the snapshot still holds the old counts until the next poll, then not.
      const patient = await sql<{ patient_key: string }>`
        select patient_key from cohort_encounter group by patient_key order by count(*) desc, patient_key limit 1`.execute(demo.database.db);
      const removed = await demo.database.db.transaction().execute((trx) => deleteEncountersOfPatients(trx, [patient.rows[0]!.patient_key]));
      expect(removed.encounters).toBeGreaterThan(1);
      const widest = ladders.map((ladder) => ladder.at(-1)!);
      const stale = await source.countCohorts(widest);
      const truth = await exact.countCohorts(widest);
      expect(stale).not.toEqual(truth);
      await source.poll();
      expect(source.knownVersion()).not.toBe(versionBefore);
      expect(await source.countCohorts(widest)).toEqual(truth);
      expect(await source.describeCohort(widest[0]!)).toEqual(await exact.describeCohort(widest[0]!));
      expect(await source.describeBaseline()).toEqual(await exact.describeBaseline());

      // clear(): the very next call goes to the database, whatever the snapshot held.
      const fallbackBefore = source.answered.fallback;
      source.clear();
      expect(await source.countCohorts(widest)).toEqual(truth);
      expect(source.answered.fallback).toBe(fallbackBefore + 1);
      await source.poll();
      const snapshotBefore = source.answered.snapshot;
      expect(await source.countCohorts(widest)).toEqual(truth);
      expect(source.answered.snapshot).toBe(snapshotBefore + 1);
    } finally {
      source.close();
    }
  }, 300000);
});
