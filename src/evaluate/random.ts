/** A seeded pseudo-random source, so that a backtest's split and bootstrap are the same for the same seed. */

/** Uniform numbers in [0, 1) from a 32-bit seed (mulberry32: small, fast, and good enough for resampling). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A whole number in [0, below). */
export function randomIndex(random: () => number, below: number): number {
  return Math.floor(random() * below);
}

/** A shuffled copy (Fisher–Yates). */
export function shuffled<T>(values: readonly T[], random: () => number): T[] {
  const copy = [...values];
  for (let index = copy.length - 1; index > 0; index -= 1) {
    const other = randomIndex(random, index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}

/**
 * Independent streams from one user-given seed: the split and the bootstrap must not share draws, or
 * changing the number of resamples would move the split.
 */
export function derivedSeed(seed: number, stream: 'split' | 'bootstrap'): number {
  const salt = stream === 'split' ? 0x9e3779b9 : 0x85ebca6b;
  return (Math.imul(seed >>> 0, 0x27d4eb2d) ^ salt) >>> 0;
}
