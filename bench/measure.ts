/** What the benchmarks share: the nearest-rank percentile they print, and the scale bench's database names. */

/** The p-th percentile (0-100) of ascending values, nearest rank; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The database the scale bench loads a synthesized cohort into (and later runs, and bench:snapshot, reuse). */
export function scaleBenchDatabase(encounters: number, seed: number): string {
  return `cohort_bench_${encounters}_seed${seed}`;
}
