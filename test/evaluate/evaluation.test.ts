import { describe, expect, it } from '@jest/globals';
import { defaultRules, rulesSchema, type VersionedRules } from '../../src/cohort/rules.js';
import { evaluateEncounters, type HeldOutTrace } from '../../src/evaluate/evaluation.js';
import { factsForEncounter } from '../../src/evaluate/predictors.js';
import { evaluationResultSchema, type EvaluationProgress, type EvaluationResult, type MethodResult } from '../../src/evaluate/result.js';
import { item, makeEncounter, makeSyntheticCohort } from './fixtures.js';

const rules = { version: 1, rules: defaultRules };
const cohort = makeSyntheticCohort();

async function traced(
  options: Parameters<typeof evaluateEncounters>[2],
  versionedRules: VersionedRules = rules,
): Promise<{ result: EvaluationResult; traces: HeldOutTrace[] }> {
  const traces: HeldOutTrace[] = [];
  const result = await evaluateEncounters(cohort, versionedRules, { bootstrapResamples: 200, ...options }, { inspect: (trace) => traces.push(trace) });
  return { result, traces };
}

function method(result: EvaluationResult, id: MethodResult['id']): MethodResult {
  return result.methods.find((one) => one.id === id)!;
}

describe('what a held-out encounter shows', () => {
  const encounter = makeEncounter({
    encounterKey: 'x',
    icd10Codes: ['K8590'],
    historyIcd10Codes: ['I10', 'E119'],
    items: [item('lab:lipase')],
    admitted: true,
  });

  it('at arrival: demographics, complaint, acuity and the problem list; not its own diagnoses, orders or outcome', () => {
    const facts = factsForEncounter(encounter, 'arrival');
    expect(facts).toEqual({
      ageYears: 50,
      sex: 'female',
      chiefComplaintText: 'abd pain',
      complaintConcepts: ['abdominal-pain'],
      icd10Codes: ['I10', 'E119'],
      acuity: 3,
      draftOrders: [],
    });
  });

  it('with diagnoses: its own ICD-10 codes as well', () => {
    expect(factsForEncounter(encounter, 'with-diagnoses').icd10Codes).toEqual(['K8590', 'I10', 'E119']);
  });
});

describe('evaluateEncounters', () => {
  it('patient split: no held-out patient has any encounter in the training set, the cohorts or the complaint groups', async () => {
    const { result, traces } = await traced({ split: 'patient' });
    expect(traces).toHaveLength(result.split.heldOutEncounters);
    const heldOutPatients = new Set(traces.map((trace) => trace.encounter.patientKey));
    let cohorts = 0;
    for (const trace of traces) {
      expect(trace.training.filter((encounter) => heldOutPatients.has(encounter.patientKey))).toEqual([]);
      expect(trace.cohort?.filter((encounter) => heldOutPatients.has(encounter.patientKey)) ?? []).toEqual([]);
      expect(trace.complaintGroup?.filter((encounter) => heldOutPatients.has(encounter.patientKey)) ?? []).toEqual([]);
      if (trace.cohort !== null && trace.rules.outcome.kind === 'selected') {
        cohorts += 1;
        // The cohort in the trace is the one the cards were built from.
        expect(trace.cohort.length).toBe(trace.rules.outcome.selection.statistics.size);
        expect(trace.cohort.every((member) => trace.training.includes(member))).toBe(true);
      }
    }
    expect(cohorts).toBeGreaterThan(0);
  });

  it('temporal split: every encounter learnt from started in an earlier year than the held-out one', async () => {
    const { result, traces } = await traced({ split: 'temporal' });
    expect(result.split.cutoffYear).not.toBeNull();
    for (const trace of traces) {
      const year = trace.encounter.startYear;
      expect(trace.training.filter((encounter) => encounter.startYear >= year)).toEqual([]);
      expect(trace.cohort?.filter((encounter) => encounter.startYear >= year) ?? []).toEqual([]);
    }
    expect(traces.some((trace) => trace.cohort !== null)).toBe(true);
  });

  it("the baselines never learn from held-out encounters: an item only they received is never suggested and weighs as unseen", async () => {
    const marked = cohort.map((encounter) =>
      encounter.patientKey === 'p00' || encounter.patientKey === 'p01' ? { ...encounter, items: [...encounter.items, item('lab:only-held-out')] } : encounter,
    );
    // Hold out exactly p00 and p01 by making them the only patients of the latest year.
    const shaped = marked.map((encounter) => ({
      ...encounter,
      startYear: encounter.patientKey === 'p00' || encounter.patientKey === 'p01' ? 2200 : encounter.startYear,
    }));
    const traces: HeldOutTrace[] = [];
    await evaluateEncounters(shaped, rules, { split: 'temporal', holdout: 0.01, bootstrapResamples: 0 }, { inspect: (trace) => traces.push(trace) });
    expect(new Set(traces.map((trace) => trace.encounter.patientKey))).toEqual(new Set(['p00', 'p01']));
    for (const trace of traces) {
      for (const prediction of [trace.rules, trace.overall, trace.complaint]) expect(prediction.workup).not.toContain('lab:only-held-out');
    }
  });

  it("the rules' list starts with exactly the card's suggestions and goes on with the same ranking", async () => {
    // Small cells and two items a card, so that lists go on past the card.
    const { traces } = await traced({ split: 'patient' }, { version: 2, rules: rulesSchema.parse({ minCellSize: 3, maxItemsPerCard: 2 }) });
    let longer = 0;
    for (const trace of traces) {
      for (const category of ['workup', 'treatment'] as const) {
        const card = trace.rules.cards.find((built) => built.kind === category);
        const suggested = card?.suggestedItemCodes ?? [];
        expect(trace.rules[category].slice(0, suggested.length)).toEqual(suggested);
        expect(suggested.length).toBeLessThanOrEqual(2);
        if (trace.rules[category].length > suggested.length) longer += 1;
        // Routine items are a line on the card, never a suggestion.
        expect(trace.rules[category]).not.toContain('panel:routine');
      }
    }
    expect(longer).toBeGreaterThan(10);
  });

  it('measures the rules, both baselines, prognosis and coverage; on data with complaint-specific care the rules beat the overall list', async () => {
    // Cohorts here hold about 20 visits: under the default small-cell rule (11) an item would need more than half
    // of them to be suggested, which leaves short lists (as on the MIMIC demo). A cell size of 3 shows the signal.
    const result = await evaluateEncounters(cohort, { version: 2, rules: rulesSchema.parse({ minCellSize: 3 }) }, { bootstrapResamples: 200 });
    expect(() => evaluationResultSchema.parse(result)).not.toThrow();
    expect(result.methods.map((one) => one.id)).toEqual(['rules', 'rules-reputation-weighted', 'overall-baseline', 'complaint-baseline']);
    const at10 = (id: MethodResult['id']) => method(result, id).workup.atK.find((entry) => entry.k === 10)!;
    expect(at10('rules').weightedRecall.value!).toBeGreaterThan(at10('overall-baseline').weightedRecall.value!);
    expect(at10('complaint-baseline').weightedRecall.value!).toBeGreaterThan(at10('overall-baseline').weightedRecall.value!);
    for (const one of result.methods) {
      for (const entry of [...one.workup.atK, ...one.treatment.atK]) {
        for (const estimate of [entry.precision, entry.recall, entry.weightedRecall]) {
          if (estimate.value === null) continue;
          expect(estimate.lower!).toBeLessThanOrEqual(estimate.value + 1e-12);
          expect(estimate.upper!).toBeGreaterThanOrEqual(estimate.value - 1e-12);
        }
      }
    }
    // Everyone gets the base rate from the overall baseline: no discrimination at all.
    expect(method(result, 'overall-baseline').admission.auroc.value).toBe(0.5);
    expect(method(result, 'overall-baseline').usedBaseRate).toBe(result.split.heldOutEncounters);
    const { coverage } = result;
    const carded = Math.round(coverage.withCard.value! * coverage.heldOutEncounters);
    expect(carded + coverage.noCard.cohortTooSmall + coverage.noCard.nothingToMatch).toBe(coverage.heldOutEncounters);
    expect(method(result, 'rules').usedBaseRate).toBe(coverage.heldOutEncounters - carded);
    expect(coverage.relaxation.map((step) => step.step)).toEqual(defaultRules.relaxationOrder);
    const calibrated = method(result, 'rules').admission.calibration;
    expect(calibrated.reduce((sum, row) => sum + row.n, 0)).toBe(result.split.heldOutEncounters);
  });

  it('is the same for the same seed, apart from the time it took', async () => {
    const first = await evaluateEncounters(cohort, rules, { bootstrapResamples: 100, seed: 5 });
    const again = await evaluateEncounters([...cohort].reverse(), rules, { bootstrapResamples: 100, seed: 5 });
    expect({ ...again, durationMs: 0 }).toEqual({ ...first, durationMs: 0 });
  });

  it('labels the mode and measures at the k asked for, and reports its phases', async () => {
    const phases: EvaluationProgress['phase'][] = [];
    const result = await evaluateEncounters(
      cohort,
      { version: 3, rules: rulesSchema.parse({ maxItemsPerCard: 3 }) },
      { mode: 'with-diagnoses', k: [10, 3, 3], bootstrapResamples: 0 },
      { onProgress: (progress) => phases.push(progress.phase) },
    );
    expect(result.mode.id).toBe('with-diagnoses');
    expect(result.mode.label).toMatch(/order-sign/);
    expect(result.options.k).toEqual([3, 10]);
    expect(result.methods[0]!.label).toBe('Rules v3');
    expect(result.methods[0]!.workup.atK[0]!.precision.lower).toBeNull();
    expect([...new Set(phases)]).toEqual(['predicting', 'bootstrapping', 'done']);
  });
});
