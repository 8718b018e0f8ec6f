/**
 * i2b2-style noise on displayed counts (docs/privacy.md, "Noise"). Each count a card shows is replaced by
 * round(count + σ·z), and by 0 when that is at or below the threshold, where z is a standard normal deviate drawn
 * deterministically from an HMAC of the secret key, the cohort's criteria, which count it is (the cohort size,
 * one item, one outcome) and the true count. Asking again for the same cohort gives the same numbers, so
 * repeated calls cannot be averaged; the true count is part of the draw so that, when one patient leaves or joins
 * a cohort, the shown count is drawn afresh instead of moving by exactly one (which would tell that they were in
 * it). Pure: no clock, no randomness besides the key; a process key stands in when none is given.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { cohortCriteriaKey } from '../cohort/cached-source.js';
import type { CountNoise } from '../cohort/rules.js';
import type { CohortCriteria, CohortStatistics, ItemCount } from '../cohort/types.js';

/** The key the app derives from its secret: a separate HMAC, so the noise key is not the hashing key. */
export function countNoiseKeyFromSecret(secret: string): string {
  return createHmac('sha256', secret).update('cohort-cds count noise v1').digest('hex');
}

let processKey: string | undefined;

/**
 * Used when the caller gives no key: random per process, so counts stay the same within one process but not
 * across restarts or instances. The app passes a key derived from its secret so that they do.
 */
function fallbackKey(): string {
  processKey ??= randomBytes(32).toString('hex');
  return processKey;
}

/** A standard normal deviate from 32 bytes (Box–Muller on two 48-bit uniforms in (0, 1)). */
function standardNormal(digest: Buffer): number {
  const u1 = (digest.readUIntBE(0, 6) + 0.5) / 2 ** 48;
  const u2 = (digest.readUIntBE(6, 6) + 0.5) / 2 ** 48;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** The deviate of one count of one cohort; exported for the tests of its distribution. */
export function noiseDeviate(key: string, cohort: string, cell: string, trueCount: number): number {
  const digest = createHmac('sha256', key).update(`${cohort}\u0000${cell}\u0000${trueCount}`).digest();
  return standardNormal(digest);
}

/** One noisy count: rounded, never negative, 0 at or below the threshold, at most `ceiling` when given. */
export function noisyCount(
  trueCount: number,
  noise: CountNoise,
  draw: { readonly key: string; readonly cohort: string; readonly cell: string; readonly ceiling?: number },
): number {
  if (noise.kind === 'none') return trueCount;
  const shown = Math.round(trueCount + noise.sigma * noiseDeviate(draw.key, draw.cohort, draw.cell, trueCount));
  if (shown <= noise.zeroAtOrBelow) return 0;
  return draw.ceiling === undefined ? shown : Math.min(shown, draw.ceiling);
}

/**
 * The statistics a card or the explanation page shows for a cohort: every count noisy under `noise` (unchanged
 * under `none`), and consistent with each other: no item or outcome above the cohort size, so shares computed from
 * them stay between 0 and 1. Items whose noisy count is 0 are left out. Medians are not counts and stay as they are.
 */
export function displayedStatistics(statistics: CohortStatistics, criteria: CohortCriteria, noise: CountNoise, key?: string): CohortStatistics {
  if (noise.kind === 'none') return statistics;
  const draw = { key: key ?? fallbackKey(), cohort: cohortCriteriaKey(criteria) };
  const size = noisyCount(statistics.size, noise, { ...draw, cell: 'size' });
  const count = (value: number, cell: string) => noisyCount(value, noise, { ...draw, cell, ceiling: size });
  const items: ItemCount[] = [];
  for (const item of statistics.items) {
    const encounters = count(item.encounters, `item:${item.itemCode}`);
    if (encounters > 0) items.push({ ...item, encounters });
  }
  const { outcomes } = statistics;
  return {
    size,
    items,
    outcomes: {
      ...outcomes,
      admitted: count(outcomes.admitted, 'admitted'),
      returned72h: count(outcomes.returned72h, 'returned72h'),
      edLosKnown: count(outcomes.edLosKnown, 'edLosKnown'),
      hospitalLosKnown: count(outcomes.hospitalLosKnown, 'hospitalLosKnown'),
    },
  };
}

/** One cell of the cohort summary (GET /admin/cohort/summary): visits by primary complaint, age band and sex. */
export interface CohortSummaryCell {
  readonly complaintConcept: string | null;
  readonly ageBand: string;
  readonly sex: string;
  /** null: under the minimum cell size. */
  readonly encounters: number | null;
}

/**
 * The cohort summary as the admin API shows it: under `noise`, the total and every cell's count noisy exactly as a
 * card's counts are (reproducible per cell under the same key, 0 at or below the threshold), and a noisy count under
 * the minimum cell size suppressed like a true one. Cells suppressed on their true count stay suppressed.
 */
export function displayedCohortSummary<Cell extends CohortSummaryCell>(
  summary: { readonly total: number; readonly cells: readonly Cell[] },
  minCellSize: number,
  noise: CountNoise,
  key?: string,
): { total: number; cells: Cell[] } {
  if (noise.kind === 'none') return { total: summary.total, cells: [...summary.cells] };
  const noiseKey = key ?? fallbackKey();
  const total = noisyCount(summary.total, noise, { key: noiseKey, cohort: 'cohort-summary', cell: 'total' });
  const cells = summary.cells.map((cell) => {
    if (cell.encounters === null) return cell;
    const cohort = `cohort-summary\u0000${cell.complaintConcept ?? ''}\u0000${cell.ageBand}\u0000${cell.sex}`;
    const shown = noisyCount(cell.encounters, noise, { key: noiseKey, cohort, cell: 'size' });
    return { ...cell, encounters: shown < minCellSize ? null : shown };
  });
  return { total, cells };
}

/** What a card says about the noise, or null when there is none. */
export function describeCountNoise(noise: CountNoise): string | null {
  if (noise.kind === 'none') return null;
  return `Counts carry random noise (standard deviation ${noise.sigma}), the same each time for this cohort, so that no count can be traced to one patient; counts of ${noise.zeroAtOrBelow} or fewer after the noise are shown as 0.`;
}
