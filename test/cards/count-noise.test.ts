import { describe, expect, it } from '@jest/globals';
import { buildCohortCards, type CardContext } from '../../src/cards/cohort-cards.js';
import { countNoiseKeyFromSecret, describeCountNoise, displayedStatistics, noiseDeviate, noisyCount } from '../../src/cards/count-noise.js';
import { cardUuidFactory } from '../../src/cards/uuid.js';
import type { CohortSelection } from '../../src/cohort/matching.js';
import { countNoiseSchema, defaultRules, rulesSchema, type CountNoise } from '../../src/cohort/rules.js';
import type { CohortCriteria, CohortStatistics, ItemCount } from '../../src/cohort/types.js';
import { makeCriteria, makeFacts } from '../cohort/fixtures.js';

// A fixed key: every figure below is reproducible, run after run.
const key = countNoiseKeyFromSecret('test-secret-test-secret-test-secret-0123');
const i2b2: CountNoise = { kind: 'gaussian', sigma: 1.3, zeroAtOrBelow: 3 };

function item(itemCode: string, encounters: number, overrides: Partial<ItemCount> = {}): ItemCount {
  return { itemCode, display: itemCode, encounters, category: 'workup', kind: 'lab', codeSystem: 'urn:test', code: itemCode, ...overrides };
}

const statistics: CohortStatistics = {
  size: 40,
  items: [item('lab:lipase', 30), item('lab:lactate', 15), item('lab:rare', 2), item('med:morphine', 20, { category: 'treatment', kind: 'medication' })],
  outcomes: { admitted: 22, returned72h: 3, edLosMedianMinutes: 330, edLosKnown: 40, hospitalLosMedianMinutes: 4320, hospitalLosKnown: 22 },
};

/** The n-th of many distinct cohorts: criteria differing in age band, sex and complaint. */
function cohort(n: number): CohortCriteria {
  return makeCriteria({ sex: n % 2 === 0 ? 'female' : 'male', ageMin: n % 90, ageMax: (n % 90) + 20, complaintConcept: `concept-${Math.floor(n / 90)}` });
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function standardDeviation(values: readonly number[]): number {
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - m) ** 2, 0) / (values.length - 1));
}

describe('count noise: the rules option', () => {
  it('is off by default, and i2b2 by default once asked for', () => {
    expect(defaultRules.countNoise).toEqual({ kind: 'none' });
    expect(rulesSchema.parse({ countNoise: { kind: 'gaussian' } }).countNoise).toEqual(i2b2);
    expect(countNoiseSchema.safeParse({ kind: 'gaussian', sigma: 0 }).success).toBe(false);
    expect(countNoiseSchema.safeParse({ kind: 'gaussian', sigma: 1.3, typo: 1 }).success).toBe(false);
    expect(countNoiseSchema.safeParse({ kind: 'laplace' }).success).toBe(false);
  });

  it('changes nothing when off', () => {
    expect(displayedStatistics(statistics, cohort(1), { kind: 'none' }, key)).toBe(statistics);
    expect(describeCountNoise({ kind: 'none' })).toBeNull();
  });
});

describe('count noise: the numbers', () => {
  it('is the same on every call for the same cohort, so repeated calls cannot average it away', () => {
    const first = displayedStatistics(statistics, cohort(7), i2b2, key);
    for (let call = 0; call < 20; call += 1) expect(displayedStatistics(statistics, cohort(7), i2b2, key)).toEqual(first);
    // The same criteria written in another order (set-valued fields) are the same cohort.
    const sites = makeCriteria({ sites: ['b', 'a'] });
    expect(displayedStatistics(statistics, sites, i2b2, key)).toEqual(displayedStatistics(statistics, makeCriteria({ sites: ['a', 'b'] }), i2b2, key));
  });

  it('differs between cohorts, between counts of one cohort, and between keys', () => {
    const deviates = Array.from({ length: 200 }, (_, n) => noiseDeviate(key, JSON.stringify(cohort(n)), 'size', 40));
    expect(new Set(deviates).size).toBe(200);
    const shownSizes = new Set(Array.from({ length: 200 }, (_, n) => displayedStatistics(statistics, cohort(n), i2b2, key).size));
    expect(shownSizes.size).toBeGreaterThanOrEqual(5);
    expect(noiseDeviate(key, 'c', 'size', 40)).not.toBe(noiseDeviate(key, 'c', 'item:lab:lipase', 40));
    expect(noiseDeviate(key, 'c', 'size', 40)).not.toBe(noiseDeviate(countNoiseKeyFromSecret('another-secret-another-secret-000'), 'c', 'size', 40));
  });

  it('is drawn afresh when the true count changes, so one patient leaving does not move it by exactly one', () => {
    const moves = Array.from({ length: 500 }, (_, n) => {
      const criteria = cohort(n);
      const before = noisyCount(40, i2b2, { key, cohort: JSON.stringify(criteria), cell: 'size' });
      const after = noisyCount(39, i2b2, { key, cohort: JSON.stringify(criteria), cell: 'size' });
      return before - after;
    });
    // Were the noise fixed per cohort, every difference would be 1; drawn afresh, it spreads like N(1, 2σ²).
    expect(moves.filter((move) => move === 1).length).toBeLessThan(200);
    expect(standardDeviation(moves)).toBeGreaterThan(1.6);
  });

  it('has σ ≈ 1.3 and mean ≈ 0 over many cohorts (fixed key, 20,000 cohorts)', () => {
    const errors = Array.from({ length: 20_000 }, (_, n) => displayedStatistics({ ...statistics, size: 500 }, cohort(n), i2b2, key).size - 500);
    expect(Math.abs(mean(errors))).toBeLessThan(0.05);
    // Rounding adds a uniform error of variance 1/12: sqrt(1.3² + 1/12) = 1.33.
    expect(standardDeviation(errors)).toBeGreaterThan(1.28);
    expect(standardDeviation(errors)).toBeLessThan(1.38);
    const deviates = Array.from({ length: 20_000 }, (_, n) => noiseDeviate(key, `cohort-${n}`, 'size', 100));
    expect(Math.abs(mean(deviates))).toBeLessThan(0.03);
    expect(Math.abs(standardDeviation(deviates) - 1)).toBeLessThan(0.02);
    // Normal, not merely of the right spread: 68.3% within one σ, 95.4% within two.
    expect(Math.abs(deviates.filter((z) => Math.abs(z) < 1).length / deviates.length - 0.6827)).toBeLessThan(0.015);
    expect(Math.abs(deviates.filter((z) => Math.abs(z) < 2).length / deviates.length - 0.9545)).toBeLessThan(0.008);
  });

  it('reports small counts as 0: never 1, 2 or 3 after the noise, and 0 as often as N(count, σ²) says', () => {
    // Shown as 0 when count + σz rounds to 3 or less, i.e. z < (3.5 − count) / σ.
    const normalCdf = (x: number) => {
      // Abramowitz–Stegun 7.1.26 erf, accurate to 1.5e-7: plenty for a share of 4,000 draws.
      const t = 1 / (1 + 0.3275911 * (Math.abs(x) / Math.SQRT2));
      const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-(x * x) / 2);
      return x >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
    };
    for (const trueCount of [0, 1, 2, 3, 4, 5, 6, 8]) {
      const shown = Array.from({ length: 4000 }, (_, n) => noisyCount(trueCount, i2b2, { key, cohort: `cohort-${n}`, cell: 'item:x' }));
      expect(shown.filter((count) => count >= 1 && count <= 3)).toEqual([]);
      for (const count of shown) expect(count).toBeGreaterThanOrEqual(0);
      const zeroShare = shown.filter((count) => count === 0).length / shown.length;
      expect(Math.abs(zeroShare - normalCdf((3.5 - trueCount) / 1.3))).toBeLessThan(0.025);
    }
  });

  it('keeps items and outcomes at or below the shown cohort size, and drops items shown as 0', () => {
    for (let n = 0; n < 2000; n += 1) {
      const tight: CohortStatistics = { ...statistics, size: 12, items: [item('lab:all', 12), item('lab:few', 1)], outcomes: { ...statistics.outcomes, admitted: 12, edLosKnown: 12 } };
      const shown = displayedStatistics(tight, cohort(n), i2b2, key);
      for (const shownItem of shown.items) expect(shownItem.encounters).toBeLessThanOrEqual(shown.size);
      expect(shown.outcomes.admitted).toBeLessThanOrEqual(shown.size);
      expect(shown.outcomes.edLosKnown).toBeLessThanOrEqual(shown.size);
      expect(shown.items.every((shownItem) => shownItem.encounters > 0)).toBe(true);
      expect(shown.outcomes.edLosMedianMinutes).toBe(330);
    }
  });

  it('uses one process key when none is given: stable within the process', () => {
    expect(displayedStatistics(statistics, cohort(3), i2b2)).toEqual(displayedStatistics(statistics, cohort(3), i2b2));
  });
});

describe('count noise on cards', () => {
  const selection = (n: number, stats: CohortStatistics = statistics): CohortSelection => ({
    plan: { criteria: cohort(n), relaxation: [] },
    sizesTried: [stats.size],
    statistics: stats,
  });
  const context = (n: number, noise: CountNoise, stats?: CohortStatistics): CardContext => ({
    facts: makeFacts(),
    selection: selection(n, stats),
    baseline: { size: 1000, items: new Map([['lab:lipase', 100], ['lab:lactate', 100], ['med:morphine', 150]]) },
    rules: { ...defaultRules, countNoise: noise },
    rulesVersion: 3,
    patientId: 'p1',
    encounterId: undefined,
    uuidFor: cardUuidFactory('order-select', 'hook-1', 3),
    conceptDisplay: (concept) => concept,
    countNoiseKey: key,
  });

  it('shows the noisy counts everywhere on the card, with shares computed from them, and says so', () => {
    let differed = 0;
    for (let n = 0; n < 100; n += 1) {
      const cards = buildCohortCards(context(n, i2b2));
      const shown = displayedStatistics(statistics, cohort(n), i2b2, key);
      if (cards.length === 0) {
        expect(shown.size).toBeLessThan(defaultRules.minCohortSize);
        continue;
      }
      if (shown.size !== statistics.size) differed += 1;
      for (const { card } of cards) {
        expect(card.source.label).toContain(`· ${shown.size} similar ED visits ·`);
        expect(card.detail).toContain('Counts carry random noise (standard deviation 1.3)');
        expect(card.detail).toContain('counts of 3 or fewer after the noise are shown as 0');
      }
      const workup = cards.find((built) => built.kind === 'workup')!.card;
      // Each row "NN% (n of N)": N is the shown size and NN the share of the shown counts.
      for (const [, percent, count, total] of workup.detail!.matchAll(/(\d+)% \((\d+) of (\d+)\)/g)) {
        expect(Number(total)).toBe(shown.size);
        expect(Number(percent)).toBe(Math.round((Number(count) / Number(total)) * 100));
        expect(shown.items.some((shownItem) => shownItem.encounters === Number(count))).toBe(true);
      }
      const prognosis = cards.find((built) => built.kind === 'prognosis')!.card;
      expect(prognosis.summary).toContain(`${shown.size} similar visits`);
      if (shown.outcomes.admitted >= defaultRules.minCellSize) {
        expect(prognosis.summary).toContain(`admitted ${Math.round((shown.outcomes.admitted / shown.size) * 100)}%`);
      }
    }
    expect(differed).toBeGreaterThan(30);
  });

  it('still hides cells under the minimum, counted after the noise', () => {
    // lactate: 15 true, often shown at 13-17; rare: 2 true, shown as 0 or hidden; both respect the minimum cell size.
    for (let n = 0; n < 100; n += 1) {
      const workup = buildCohortCards(context(n, i2b2)).find((built) => built.kind === 'workup')?.card;
      if (!workup) continue;
      expect(workup.detail).not.toMatch(/\| lab:rare \|/);
      for (const [, count] of workup.detail!.matchAll(/\((\d+) of \d+\)/g)) expect(Number(count)).toBeGreaterThanOrEqual(defaultRules.minCellSize);
      const shown = displayedStatistics(statistics, cohort(n), i2b2, key);
      const lactate = shown.items.find((shownItem) => shownItem.itemCode === 'lab:lactate');
      if (!lactate || lactate.encounters < defaultRules.minCellSize) expect(workup.detail).not.toContain('| lab:lactate |');
    }
    // Returns: 3 true, never shown as a rate, whatever the noise.
    for (let n = 0; n < 100; n += 1) {
      const prognosis = buildCohortCards(context(n, i2b2)).find((built) => built.kind === 'prognosis')?.card;
      if (prognosis) expect(prognosis.summary).toMatch(/72-h return (fewer than 11 visits|0%)/);
    }
  });

  it('gives no card when the noisy size falls under the minimum cohort size', () => {
    const atMinimum: CohortStatistics = { ...statistics, size: 11, items: [item('lab:lipase', 11)], outcomes: { ...statistics.outcomes, admitted: 11, edLosKnown: 11, hospitalLosKnown: 11 } };
    let none = 0;
    for (let n = 0; n < 200; n += 1) {
      const cards = buildCohortCards(context(n, i2b2, atMinimum));
      const shown = displayedStatistics(atMinimum, cohort(n), i2b2, key);
      expect(cards.length === 0).toBe(shown.size < 11);
      if (cards.length === 0) none += 1;
    }
    // About half of the draws fall below 11.
    expect(none).toBeGreaterThan(50);
    expect(none).toBeLessThan(150);
  });

  it('is the same card JSON on every call', () => {
    expect(buildCohortCards(context(11, i2b2))).toEqual(buildCohortCards(context(11, i2b2)));
  });
});
