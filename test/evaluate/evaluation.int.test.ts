import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { InMemoryCohortSource } from '../../src/cohort/in-memory-source.js';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { defaultRules } from '../../src/cohort/rules.js';
import { SqlCohortSource } from '../../src/db/cohort-statistics.repository.js';
import { loadEvaluationEncounters, type EvaluationEncounter } from '../../src/db/evaluation-data.repository.js';
import {
  createEvaluationRun,
  findEvaluationRun,
  listEvaluationRuns,
  markRunning,
} from '../../src/db/evaluation-run.repository.js';
import { runEvaluation, type HeldOutTrace } from '../../src/evaluate/evaluation.js';
import { executeEvaluationRun, EvaluationRunNotFoundError } from '../../src/evaluate/execute-run.js';
import { factsForEncounter } from '../../src/evaluate/predictors.js';
import {
  evaluationOptionsSchema,
  evaluationResultSchema,
  type EvaluationProgress,
  type EvaluationResult,
  type MethodResult,
} from '../../src/evaluate/result.js';
import { openTestDatabase } from '../helpers/database.js';
import { openDemoDatabase } from '../helpers/test-templates.js';

const rules = { version: 1, rules: defaultRules };

function figure(result: EvaluationResult, id: MethodResult['id'], category: 'workup' | 'treatment', k: number) {
  return result.methods.find((method) => method.id === id)![category].atK.find((entry) => entry.k === k)!;
}

describe('backtest on the MIMIC-IV ED demo', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let encounters: EvaluationEncounter[];
  let patientSplit: EvaluationResult;
  let patientTraces: HeldOutTrace[];

  beforeAll(async () => {
    ({ database } = await openDemoDatabase());
    encounters = await loadEvaluationEncounters(database.db);
    patientTraces = [];
    patientSplit = await runEvaluation(database.db, rules, { split: 'patient' }, undefined, (trace) => patientTraces.push(trace));
  }, 120000);
  afterAll(async () => {
    await database?.close();
  });

  it('loads every encounter with its items folded into panels exactly as the SQL cohort source counts them', async () => {
    expect(encounters).toHaveLength(222);
    const memory = new InMemoryCohortSource(encounters);
    const sql = new SqlCohortSource(database.db);
    const [memoryBaseline, sqlBaseline] = await Promise.all([memory.describeBaseline(), sql.describeBaseline()]);
    expect(memoryBaseline.size).toBe(sqlBaseline.size);
    expect(new Map([...memoryBaseline.items].sort())).toEqual(new Map([...sqlBaseline.items].sort()));
    expect([...memoryBaseline.items.keys()].some((code) => code.startsWith('panel:'))).toBe(true);
    // Every rung of the ladder of a spread of demo encounters: the same sizes, items, counts and outcomes.
    for (const encounter of encounters.filter((_, index) => index % 20 === 0)) {
      const ladder = buildCohortLadder(factsForEncounter(encounter, 'with-diagnoses'), defaultRules);
      const criteria = ladder.map((plan) => plan.criteria);
      expect(await memory.countCohorts(criteria)).toEqual(await sql.countCohorts(criteria));
      const loosest = criteria.at(-1)!;
      const [fromMemory, fromSql] = await Promise.all([memory.describeCohort(loosest), sql.describeCohort(loosest)]);
      const counts = (statistics: typeof fromMemory) => new Map(statistics.items.map((item) => [item.itemCode, [item.encounters, item.category, item.kind]]));
      expect(counts(fromMemory)).toEqual(counts(fromSql));
      expect(fromMemory.outcomes.admitted).toBe(fromSql.outcomes.admitted);
      expect(fromMemory.outcomes.returned72h).toBe(fromSql.outcomes.returned72h);
    }
  });

  it('patient split: a held-out patient is never in the training set or a cohort', () => {
    expect(() => evaluationResultSchema.parse(patientSplit)).not.toThrow();
    const heldOutPatients = new Set(patientTraces.map((trace) => trace.encounter.patientKey));
    expect(patientTraces).toHaveLength(patientSplit.split.heldOutEncounters);
    for (const trace of patientTraces) {
      expect(trace.training.filter((encounter) => heldOutPatients.has(encounter.patientKey))).toEqual([]);
      expect(trace.cohort?.filter((encounter) => heldOutPatients.has(encounter.patientKey)) ?? []).toEqual([]);
    }
    expect(patientSplit.split.trainingEncounters + patientSplit.split.heldOutEncounters).toBe(222);
  });

  it('temporal split: nothing from the held-out year or later is learnt from', async () => {
    const traces: HeldOutTrace[] = [];
    const result = await runEvaluation(database.db, rules, { split: 'temporal', bootstrapResamples: 100 }, undefined, (trace) => traces.push(trace));
    const cutoff = result.split.cutoffYear!;
    for (const trace of traces) {
      expect(trace.encounter.startYear).toBeGreaterThanOrEqual(cutoff);
      expect(trace.training.filter((encounter) => encounter.startYear >= cutoff)).toEqual([]);
      expect(trace.cohort?.filter((encounter) => encounter.startYear >= trace.encounter.startYear) ?? []).toEqual([]);
    }
    expect(traces.some((trace) => trace.cohort !== null)).toBe(true);
  });

  it('baselines at analyte level land near the independent leave-one-patient-out figures (workup P@10 ≈ 0.96, weighted R@10 ≈ 0.07)', async () => {
    const result = await runEvaluation(database.db, rules, { split: 'patient', itemLevel: 'analyte', bootstrapResamples: 200 });
    const overall = figure(result, 'overall-baseline', 'workup', 10);
    expect(Math.abs(overall.precision.value! - 0.96)).toBeLessThan(0.05);
    expect(Math.abs(overall.weightedRecall.value! - 0.07)).toBeLessThan(0.04);
    // Folding analytes into the panel they were drawn in (what the cards suggest) leaves fewer, rarer items.
    const folded = figure(patientSplit, 'overall-baseline', 'workup', 10);
    expect(folded.precision.value!).toBeLessThan(overall.precision.value!);
    expect(folded.weightedRecall.value!).toBeGreaterThan(overall.weightedRecall.value!);
  });

  // Known failure, kept so that it turns red the day it passes (then make it a plain `it`). Measured with the
  // default rules, patient split, seed 1, on the demo ingested with this file's secret (the README's table is the
  // same split: `npm run cli -- evaluate --split patient` with PATIENT_HASH_SECRET set to it; another secret
  // holds out other patients): workup weighted recall@10 0.013 (95% CI 0.00–0.03) for the rules against 0.202
  // (0.12–0.29) for the overall baseline. Two causes: only 16 of 45 held-out encounters get a card (a training
  // set of 177 visits rarely gives 11 with the same complaint, sex and age), and a cohort of 11–21 visits can
  // suggest only items given to at least 11 of them (minCellSize), which are the routine panels that the card
  // sets apart; workup precision@10 rests on the 6 encounters that had a workup and were suggested any of it,
  // and no treatment card suggests anything.
  it.failing('the default rules beat the overall baseline on workup weighted recall@10', () => {
    const rulesFigure = figure(patientSplit, 'rules', 'workup', 10).weightedRecall.value!;
    const baselineFigure = figure(patientSplit, 'overall-baseline', 'workup', 10).weightedRecall.value!;
    expect(rulesFigure).toBeGreaterThan(baselineFigure);
  });

  it('executes a stored run: queued → running → succeeded with its result and progress, once only', async () => {
    const options = evaluationOptionsSchema.parse({ split: 'temporal', bootstrapResamples: 50 });
    const queued = await createEvaluationRun(database.db, { rulesVersion: 1, options, requestedBy: 'test' });
    expect(queued).toMatchObject({ status: 'queued', rulesVersion: 1, requestedBy: 'test', result: null, startedAt: null });
    expect(queued.progress).toEqual({ phase: 'queued', done: 0, total: 0 });
    const seen: EvaluationProgress[] = [];
    const finished = await executeEvaluationRun(database.db, queued.id, { onProgress: (progress) => seen.push(progress), progressIntervalMs: 0 });
    expect(finished.status).toBe('succeeded');
    expect(evaluationResultSchema.parse(finished.result).split.kind).toBe('temporal');
    expect(finished.options).toEqual(options);
    expect(finished.progress.phase).toBe('done');
    expect(finished.startedAt).toBeInstanceOf(Date);
    expect(finished.finishedAt!.getTime()).toBeGreaterThanOrEqual(finished.startedAt!.getTime());
    expect(seen.map((progress) => progress.phase)).toEqual(expect.arrayContaining(['loading', 'predicting', 'bootstrapping', 'done']));
    // Not queued any more: nobody runs it twice.
    expect(await markRunning(database.db, queued.id)).toBe(false);
    const again = await executeEvaluationRun(database.db, queued.id);
    expect(again.finishedAt).toEqual(finished.finishedAt);
    expect((await listEvaluationRuns(database.db, 1)).map((run) => run.id)).toContain(queued.id);
    expect(await listEvaluationRuns(database.db, 99)).toEqual([]);
  });

  it('records a failure with its message instead of throwing; unknown runs are not found', async () => {
    const broken = await createEvaluationRun(database.db, {
      rulesVersion: 1,
      options: { ...evaluationOptionsSchema.parse({}), holdout: 7 },
      requestedBy: 'test',
    });
    const failed = await executeEvaluationRun(database.db, broken.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/holdout|below 1/);
    expect(failed.result).toBeNull();
    expect(await findEvaluationRun(database.db, 'not-a-number')).toBeUndefined();
    expect(await findEvaluationRun(database.db, '987654321')).toBeUndefined();
    await expect(executeEvaluationRun(database.db, '987654321')).rejects.toThrow(EvaluationRunNotFoundError);
    const listed = await listEvaluationRuns(database.db);
    expect(listed[0]!.id).toBe(broken.id);
  });
});
