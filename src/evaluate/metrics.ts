/**
 * The backtest's measures, as pure functions over plain arrays: ranked-list precision and recall, recall
 * weighted by inverse item frequency, AUROC, Brier score, a calibration table and a seeded bootstrap.
 */
import { randomIndex, seededRandom } from './random.js';

function hitsAmongFirst(ranked: readonly string[], actual: ReadonlySet<string>, k: number): string[] {
  return ranked.slice(0, k).filter((item) => actual.has(item));
}

/**
 * Share of the first k suggestions that the encounter received. The denominator is the number of
 * suggestions actually made (k, or fewer when the list is shorter); null when nothing was suggested.
 */
export function precisionAtK(ranked: readonly string[], actual: ReadonlySet<string>, k: number): number | null {
  const shown = Math.min(k, ranked.length);
  if (shown === 0) return null;
  return hitsAmongFirst(ranked, actual, k).length / shown;
}

/** Share of what the encounter received that is among the first k suggestions; null when it received nothing. */
export function recallAtK(ranked: readonly string[], actual: ReadonlySet<string>, k: number): number | null {
  if (actual.size === 0) return null;
  return hitsAmongFirst(ranked, actual, k).length / actual.size;
}

/**
 * An item's weight: the inverse of how many training encounters received it, with 0.5 in place of 0 for an
 * item never seen in training (so it weighs 2, more than any seen item).
 *
 * Definition followed: the weighted recall of Chen et al. — "Automated physician order recommendations and
 * outcome predictions by data-mining electronic medical records" (AMIA Jt Summits Transl Sci Proc 2014,
 * PMC4333710) introduced it; "OrderRex" (JAMIA 2016;23(2):339, doi:10.1093/jamia/ocv091) and "Predicting
 * inpatient clinical order patterns with probabilistic topic models vs conventional order sets" (JAMIA
 * 2017;24(3):472, doi:10.1093/jamia/ocw136, online 2016) report it. The formula and the 0.5 come from the
 * authors' evaluation code, HealthRex/CDSS medinfo/cpoe/analysis/RecommendationClassificationAnalysis.py
 * (calculateResultStats: weight = 1 / baseCount, baseCount ≤ 0 → 0.5; weightRecall = weightTP /
 * (weightTP + weightFN)), where baseCount is the item's count in the data the recommender learned from.
 */
export function inverseFrequencyWeight(trainingCount: number): number {
  return 1 / (trainingCount > 0 ? trainingCount : 0.5);
}

/**
 * Recall in which each received item counts by its inverse training frequency: finding a rare item the
 * encounter got is worth far more than finding the basic labs every visit gets. Null when it received nothing.
 */
export function weightedRecallAtK(
  ranked: readonly string[],
  actual: ReadonlySet<string>,
  k: number,
  trainingCounts: ReadonlyMap<string, number>,
): number | null {
  if (actual.size === 0) return null;
  const weight = (item: string) => inverseFrequencyWeight(trainingCounts.get(item) ?? 0);
  let received = 0;
  for (const item of actual) received += weight(item);
  const found = hitsAmongFirst(ranked, actual, k).reduce((sum, item) => sum + weight(item), 0);
  return found / received;
}

/** Mean of the values that are not null; null when there are none. */
export function mean(values: ReadonlyArray<number | null>): number | null {
  let sum = 0;
  let count = 0;
  for (const value of values) {
    if (value === null) continue;
    sum += value;
    count += 1;
  }
  return count === 0 ? null : sum / count;
}

/**
 * Area under the ROC curve: the probability that a random positive is ranked above a random negative, ties
 * counting one half (the Mann–Whitney U statistic with mid-ranks). Null without both positives and negatives.
 */
export function auroc(predicted: readonly number[], observed: readonly boolean[]): number | null {
  if (predicted.length !== observed.length) throw new RangeError('predicted and observed differ in length');
  const order = predicted.map((value, index) => ({ value, positive: observed[index]! })).sort((a, b) => a.value - b.value);
  let positives = 0;
  let positiveRankSum = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end += 1;
    // Ranks are 1-based; tied values share the mean of their ranks.
    const midRank = (start + end) / 2 + 1;
    for (let index = start; index <= end; index += 1) {
      if (order[index]!.positive) {
        positives += 1;
        positiveRankSum += midRank;
      }
    }
    start = end + 1;
  }
  const negatives = order.length - positives;
  if (positives === 0 || negatives === 0) return null;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Mean squared difference between the predicted probability and the outcome (0 or 1); null for no encounters. */
export function brierScore(predicted: readonly number[], observed: readonly boolean[]): number | null {
  if (predicted.length !== observed.length) throw new RangeError('predicted and observed differ in length');
  if (predicted.length === 0) return null;
  let sum = 0;
  for (let index = 0; index < predicted.length; index += 1) sum += (predicted[index]! - (observed[index]! ? 1 : 0)) ** 2;
  return sum / predicted.length;
}

export interface CalibrationRow {
  /** 1 = lowest predicted risk. */
  readonly group: number;
  readonly n: number;
  readonly meanPredicted: number;
  readonly observedRate: number;
}

/**
 * Encounters in (up to) `groups` groups of equal size by predicted risk (deciles by default), each with its mean
 * prediction and the rate observed. Encounters with the same prediction always share a group, so a group can
 * be larger than n / groups and fewer groups than asked are returned when few predictions differ.
 */
export function calibrationTable(predicted: readonly number[], observed: readonly boolean[], groups = 10): CalibrationRow[] {
  if (predicted.length !== observed.length) throw new RangeError('predicted and observed differ in length');
  const order = predicted.map((value, index) => ({ value, positive: observed[index]! })).sort((a, b) => a.value - b.value);
  const rows: CalibrationRow[] = [];
  let current: { group: number; n: number; predicted: number; positives: number } | undefined;
  let previousValue: number | undefined;
  order.forEach((entry, position) => {
    const group = Math.floor((position * groups) / order.length) + 1;
    // A tie stays in the group of its first member.
    if (current === undefined || (group !== current.group && entry.value !== previousValue)) {
      if (current) rows.push(finishRow(current));
      current = { group, n: 0, predicted: 0, positives: 0 };
    }
    current.n += 1;
    current.predicted += entry.value;
    current.positives += entry.positive ? 1 : 0;
    previousValue = entry.value;
  });
  if (current) rows.push(finishRow(current));
  return rows;
}

function finishRow(row: { group: number; n: number; predicted: number; positives: number }): CalibrationRow {
  return { group: row.group, n: row.n, meanPredicted: row.predicted / row.n, observedRate: row.positives / row.n };
}

/** The q-quantile (0 ≤ q ≤ 1) of sorted values, interpolating linearly between order statistics. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('no values');
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below);
}

export interface Interval {
  readonly lower: number;
  readonly upper: number;
}

/** Lets timers and I/O run: a long backtest inside the service must not hold up the hooks. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface BootstrapOptions {
  readonly onResample?: (done: number) => void;
  /** Resamples between two yields to the event loop (default 50). */
  readonly yieldEvery?: number;
}

/**
 * Percentile bootstrap: `resamples` times, draw n indices with replacement (seeded), compute every statistic
 * on them, and take the 2.5th and 97.5th percentiles of each. `statistics` returns one value per statistic,
 * always in the same order; a null (undefined on that resample, e.g. AUROC without a positive) is left out of
 * that statistic's percentiles. All statistics see the same resamples, so the intervals are paired.
 */
export async function bootstrapIntervals(
  n: number,
  resamples: number,
  seed: number,
  statistics: (indices: readonly number[]) => ReadonlyArray<number | null>,
  options: BootstrapOptions = {},
): Promise<Array<Interval | null>> {
  const random = seededRandom(seed);
  const yieldEvery = options.yieldEvery ?? 50;
  const draws: number[][] = [];
  const indices: number[] = new Array<number>(n);
  for (let resample = 0; resample < resamples; resample += 1) {
    for (let position = 0; position < n; position += 1) indices[position] = randomIndex(random, n);
    statistics(indices).forEach((value, index) => {
      draws[index] ??= [];
      if (value !== null && Number.isFinite(value)) draws[index]!.push(value);
    });
    options.onResample?.(resample + 1);
    if ((resample + 1) % yieldEvery === 0) await yieldToEventLoop();
  }
  return draws.map((values) => {
    if (values.length === 0) return null;
    const sorted = values.sort((a, b) => a - b);
    return { lower: quantile(sorted, 0.025), upper: quantile(sorted, 0.975) };
  });
}
