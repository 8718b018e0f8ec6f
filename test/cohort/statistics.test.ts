import { describe, expect, it } from '@jest/globals';
import { median, proportion } from '../../src/cohort/statistics.js';

describe('proportion', () => {
  it('gives the Wilson score interval', () => {
    // Reference: 8 of 10 → 0.490–0.943 (Wilson 1927; e.g. Newcombe 1998, table I).
    const p = proportion(8, 10);
    expect(p.rate).toBeCloseTo(0.8, 10);
    expect(p.lower).toBeCloseTo(0.4902, 3);
    expect(p.upper).toBeCloseTo(0.9433, 3);
  });

  it('stays within 0–1 at the extremes', () => {
    expect(proportion(0, 12).lower).toBe(0);
    expect(proportion(0, 12).upper).toBeGreaterThan(0.2);
    expect(proportion(12, 12).upper).toBe(1);
  });

  it('refuses impossible counts', () => {
    expect(() => proportion(3, 2)).toThrow(RangeError);
    expect(() => proportion(1, 0)).toThrow(RangeError);
  });
});

describe('median', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});
