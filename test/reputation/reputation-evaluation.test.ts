import { describe, expect, it } from '@jest/globals';
import { defaultRules } from '../../src/cohort/rules.js';
import { evaluateEncounters } from '../../src/evaluate/evaluation.js';
import { formatEvaluationReport } from '../../src/evaluate/report.js';
import type { EvaluationResult } from '../../src/evaluate/result.js';
import { makeSyntheticCohort } from '../evaluate/fixtures.js';

const rules = { version: 4, rules: { ...defaultRules, minCellSize: 3, minCohortSize: 5 } };
const options = { bootstrapResamples: 50, seed: 3 };

function method(result: EvaluationResult, id: string) {
  const found = result.methods.find((one) => one.id === id);
  if (!found) throw new Error(`no method ${id}`);
  return found;
}

describe('the backtest with and without reputation weighting', () => {
  it('reports both rules columns in one run; without any clinician on record they are the same', async () => {
    const result = await evaluateEncounters(makeSyntheticCohort(), rules, options);
    expect(result.methods.map((one) => one.id)).toEqual(['rules', 'rules-reputation-weighted', 'overall-baseline', 'complaint-baseline']);
    expect(method(result, 'rules-reputation-weighted').label).toBe('Rules v4, weighted by clinician reputation');
    expect(result.reputation).toMatchObject({ clinicians: 0, trainingItemsWithClinician: 0, weight: null });
    const { id: _a, label: _b, ...unweighted } = method(result, 'rules');
    const { id: _c, label: _d, ...weighted } = method(result, 'rules-reputation-weighted');
    expect(weighted).toEqual(unweighted);
    const report = formatEvaluationReport(result);
    expect(report).toContain('Rules v4, weighted by clinician reputation');
    expect(report).toContain('both rules columns are the same');
  });

  it('learns the weights from the training encounters and reports them beside the rules', async () => {
    // Imaging and ECG orders name one of four clinicians; one of them orders off-complaint studies.
    const cohort = makeSyntheticCohort().map((encounter, index) => {
      const clinicians = new Map<string, string>();
      for (const { itemCode } of encounter.items) {
        if (itemCode.startsWith('img:') || itemCode === 'order:ecg') clinicians.set(itemCode, `clinician-${index % 4}`);
      }
      return { ...encounter, clinicianByItem: clinicians };
    });
    const result = await evaluateEncounters(cohort, rules, options);
    expect(result.reputation!.clinicians).toBe(4);
    expect(result.reputation!.trainingItemsWithClinician).toBeGreaterThan(0);
    expect(result.reputation!.trainingItemsWithClinician).toBeLessThan(result.reputation!.trainingItems);
    expect(result.reputation!.weight!.min).toBeGreaterThan(0);
    const weighted = method(result, 'rules-reputation-weighted');
    const unweighted = method(result, 'rules');
    // Weighting reorders items only: the same visits get suggestions and the same risks.
    expect(weighted.suggested).toBe(unweighted.suggested);
    expect(weighted.admission).toEqual(unweighted.admission);
    expect(formatEvaluationReport(result)).toMatch(/Clinician reputation \(training set\): \d+ of \d+ items name their ordering clinician, 4 clinicians, weights/);
  });
});
