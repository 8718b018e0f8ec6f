/** Small, exact statistics for cards: proportions with confidence intervals. */

export interface Proportion {
  readonly count: number;
  readonly total: number;
  readonly rate: number;
  /** 95% Wilson score interval. */
  readonly lower: number;
  readonly upper: number;
}

const z95 = 1.959963984540054;

/** Count out of total with its 95% Wilson score interval (sound for small cohorts and rates near 0 or 1). */
export function proportion(count: number, total: number): Proportion {
  if (!Number.isInteger(count) || !Number.isInteger(total) || total <= 0 || count < 0 || count > total) {
    throw new RangeError(`proportion needs 0 <= count <= total and total > 0, got ${count}/${total}`);
  }
  const rate = count / total;
  const z2 = z95 * z95;
  const denominator = 1 + z2 / total;
  const centre = (rate + z2 / (2 * total)) / denominator;
  const margin = (z95 * Math.sqrt((rate * (1 - rate)) / total + z2 / (4 * total * total))) / denominator;
  // At 0 and at total the bounds are exactly 0 and 1; computed, they carry rounding noise.
  const lower = count === 0 ? 0 : Math.max(0, centre - margin);
  const upper = count === total ? 1 : Math.min(1, centre + margin);
  return { count, total, rate, lower, upper };
}

/** Median of the values (mean of the middle two for an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
