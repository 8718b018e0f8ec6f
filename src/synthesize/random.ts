/**
 * The seeded pseudo-random source of the synthesizer: sfc32 (Chris Doty-Humphrey's Small Fast Counting
 * generator, 128 bits of state, period at least 2^32 and in practice about 2^127), seeded through a string
 * hash so that any whole number is a seed. Same seed, same sequence, on every platform: only 32-bit integer
 * arithmetic, no Math.random, no clock.
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** A whole number in [0, below). */
  below(below: number): number;
  /** True with probability `probability`. */
  chance(probability: number): boolean;
  /** Uniform in [low, high). */
  between(low: number, high: number): number;
  /** Standard normal (Box–Muller; one of the pair is dropped so every call takes exactly two draws). */
  normal(): number;
}

/** 32-bit FNV-1a then murmur3's finalizer, with a salt so the four state words differ. */
function hashToWord(text: string, salt: number): number {
  let hash = (0x811c9dc5 ^ salt) >>> 0;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b) >>> 0;
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35) >>> 0;
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** Eight hex digits that name a seed (used in the ids the synthesizer mints, so two seeds never share ids). */
export function seedTag(seed: number | string): string {
  return hashToWord(`cohort-cds-synthesize:${seed}`, 0x5eed).toString(16).padStart(8, '0');
}

/** A generator for `seed`; `stream` separates independent sequences drawn from the same seed. */
export function createRandom(seed: number | string, stream = ''): Random {
  const text = `${seed}\u0000${stream}`;
  let a = hashToWord(text, 1);
  let b = hashToWord(text, 2);
  let c = hashToWord(text, 3);
  let d = 1;
  const word = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // The first outputs of sfc32 are weakly mixed; discard them as its author recommends.
  for (let index = 0; index < 15; index += 1) word();
  const next = () => word() / 4294967296;
  return {
    next,
    below: (below) => Math.floor(next() * below),
    chance: (probability) => next() < probability,
    between: (low, high) => low + next() * (high - low),
    normal: () => {
      const u = 1 - next();
      const v = next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
  };
}

/** Fisher–Yates, in place. */
export function shuffleInPlace<T>(values: T[], random: Random): T[] {
  for (let index = values.length - 1; index > 0; index -= 1) {
    const other = random.below(index + 1);
    const kept = values[index] as T;
    values[index] = values[other] as T;
    values[other] = kept;
  }
  return values;
}
