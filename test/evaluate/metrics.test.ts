import { describe, expect, it } from '@jest/globals';
import {
  auroc,
  bootstrapIntervals,
  brierScore,
  calibrationTable,
  inverseFrequencyWeight,
  mean,
  precisionAtK,
  quantile,
  recallAtK,
  weightedRecallAtK,
} from '../../src/evaluate/metrics.js';

describe('ranked-list measures', () => {
  const ranked = ['a', 'b', 'c', 'd'];
  const received = new Set(['a', 'c', 'x']);

  it('precision@k counts hits among the first k over the number suggested', () => {
    expect(precisionAtK(ranked, received, 1)).toBe(1);
    expect(precisionAtK(ranked, received, 2)).toBe(0.5);
    expect(precisionAtK(ranked, received, 4)).toBe(0.5);
    // Only four were suggested: a shorter list is not charged for the suggestions it did not make.
    expect(precisionAtK(ranked, received, 10)).toBe(0.5);
    expect(precisionAtK([], received, 5)).toBeNull();
  });

  it('recall@k is the share of what was received among the first k', () => {
    expect(recallAtK(ranked, received, 2)).toBeCloseTo(1 / 3, 12);
    expect(recallAtK(ranked, received, 4)).toBeCloseTo(2 / 3, 12);
    expect(recallAtK([], received, 4)).toBe(0);
    expect(recallAtK(ranked, new Set(), 4)).toBeNull();
  });

  it('weighted recall counts each received item by 1 / its training frequency, 0.5 for an unseen one', () => {
    expect(inverseFrequencyWeight(10)).toBe(0.1);
    expect(inverseFrequencyWeight(0)).toBe(2);
    const counts = new Map([
      ['a', 10],
      ['b', 4],
      ['c', 2],
    ]);
    // a = 0.1, c = 0.5, x (never seen) = 2: found a and c of 2.6.
    expect(weightedRecallAtK(ranked, received, 4, counts)).toBeCloseTo(0.6 / 2.6, 12);
    expect(weightedRecallAtK(ranked, received, 1, counts)).toBeCloseTo(0.1 / 2.6, 12);
    expect(weightedRecallAtK(['x'], received, 1, counts)).toBeCloseTo(2 / 2.6, 12);
    expect(weightedRecallAtK(ranked, new Set(), 4, counts)).toBeNull();
  });

  it('mean leaves out nulls', () => {
    expect(mean([1, null, 0, 0.5])).toBe(0.5);
    expect(mean([null])).toBeNull();
  });
});

describe('prognosis measures', () => {
  it('AUROC is the chance a positive outranks a negative, ties counting one half', () => {
    expect(auroc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
    // Pairs (positive, negative): (0.5, 0.2) 1, (0.5, 0.5) ½, (0.9, 0.2) 1, (0.9, 0.5) 1 → 3.5 / 4.
    expect(auroc([0.2, 0.5, 0.5, 0.9], [false, true, false, true])).toBe(0.875);
    expect(auroc([0.3, 0.3, 0.3, 0.3], [true, false, true, false])).toBe(0.5);
    expect(auroc([0.9, 0.1], [false, true])).toBe(0);
    expect(auroc([0.1, 0.2], [true, true])).toBeNull();
    expect(() => auroc([0.1], [true, false])).toThrow(RangeError);
  });

  it('Brier score is the mean squared error of the probabilities', () => {
    expect(brierScore([0.1, 0.9, 0.5], [false, true, true])).toBeCloseTo((0.01 + 0.01 + 0.25) / 3, 12);
    expect(brierScore([1, 0], [true, false])).toBe(0);
    expect(brierScore([], [])).toBeNull();
  });

  it('calibration groups by deciles of predicted risk and keeps ties together', () => {
    const predicted = Array.from({ length: 20 }, (_, index) => (index + 1) / 20);
    const observed = predicted.map((_, index) => index % 2 === 1);
    const table = calibrationTable(predicted, observed);
    expect(table).toHaveLength(10);
    expect(table[0]).toEqual({ group: 1, n: 2, meanPredicted: expect.closeTo(0.075, 12), observedRate: 0.5 });
    expect(table[9]!.meanPredicted).toBeCloseTo(0.975, 12);
    expect(table.reduce((sum, row) => sum + row.n, 0)).toBe(20);

    const constant = calibrationTable([0.3, 0.3, 0.3, 0.3], [true, false, false, false]);
    expect(constant).toEqual([{ group: 1, n: 4, meanPredicted: 0.3, observedRate: 0.25 }]);

    // Three equal predictions that straddle a decile boundary stay in one group.
    const tied = calibrationTable([0.1, 0.2, 0.2, 0.2, 0.9], [false, false, true, false, true], 5);
    expect(tied.map((row) => row.n)).toEqual([1, 3, 1]);
    expect(calibrationTable([], [])).toEqual([]);
  });
});

describe('bootstrap', () => {
  const values = Array.from({ length: 100 }, (_, index) => index);
  const meanOf = (indices: readonly number[]) => [indices.reduce((sum, index) => sum + values[index]!, 0) / indices.length];

  it('is the same for the same seed and differs for another', async () => {
    const first = await bootstrapIntervals(values.length, 500, 42, meanOf);
    const again = await bootstrapIntervals(values.length, 500, 42, meanOf);
    const other = await bootstrapIntervals(values.length, 500, 43, meanOf);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('brackets the mean with about ±1.96 standard errors', async () => {
    const [interval] = await bootstrapIntervals(values.length, 2000, 7, meanOf);
    // Standard error of the mean of 0..99: 29.01 / √100 ≈ 2.9, so the interval is about 49.5 ± 5.7.
    expect(interval!.lower).toBeGreaterThan(43);
    expect(interval!.lower).toBeLessThan(46);
    expect(interval!.upper).toBeGreaterThan(53);
    expect(interval!.upper).toBeLessThan(56);
  });

  it('leaves undefined resamples out, and gives null when every one is undefined', async () => {
    const intervals = await bootstrapIntervals(10, 100, 1, () => [1, null]);
    expect(intervals).toEqual([{ lower: 1, upper: 1 }, null]);
  });

  it('reports its progress', async () => {
    const seen: number[] = [];
    await bootstrapIntervals(5, 3, 1, () => [0], { onResample: (done) => seen.push(done) });
    expect(seen).toEqual([1, 2, 3]);
  });

  it('quantile interpolates between order statistics', () => {
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([0, 10], 0.025)).toBeCloseTo(0.25, 12);
  });
});
