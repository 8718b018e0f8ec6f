import { describe, expect, it } from '@jest/globals';
import { CachedCohortSource } from '../../src/cohort/cached-source.js';
import { InMemoryCohortSource } from '../../src/cohort/in-memory-source.js';
import type { CohortCriteria, CohortSource } from '../../src/cohort/types.js';
import { makeEncounters } from './fixtures.js';

const criteria = (age: number): CohortCriteria => ({ sex: 'female', ageMin: age, ageMax: age + 10, complaintConcept: null, icd10: null });

function countingSource(): CohortSource & { calls: number } {
  const inner = new InMemoryCohortSource(makeEncounters(20));
  const counting = {
    calls: 0,
    countCohorts: async (list: readonly CohortCriteria[]) => {
      counting.calls += 1;
      return inner.countCohorts(list);
    },
    describeCohort: async (one: CohortCriteria) => {
      counting.calls += 1;
      return inner.describeCohort(one);
    },
    describeBaseline: async () => {
      counting.calls += 1;
      return inner.describeBaseline();
    },
  };
  return counting;
}

describe('CachedCohortSource', () => {
  it('answers a repeated cohort from memory, with the same numbers', async () => {
    const inner = countingSource();
    const cached = new CachedCohortSource(inner, { maxEntries: 10, ttlMs: 1000 });
    const first = await cached.describeCohort(criteria(45));
    const second = await cached.describeCohort(criteria(45));
    expect(second).toEqual(first);
    expect(first.size).toBe(20);
    expect(inner.calls).toBe(1);
  });

  it('reads again after the time limit and after clear()', async () => {
    let clock = 0;
    const inner = countingSource();
    const cached = new CachedCohortSource(inner, { maxEntries: 10, ttlMs: 1000, now: () => clock });
    await cached.countCohorts([criteria(45)]);
    clock = 999;
    await cached.countCohorts([criteria(45)]);
    expect(inner.calls).toBe(1);
    clock = 1000;
    await cached.countCohorts([criteria(45)]);
    expect(inner.calls).toBe(2);
    cached.clear();
    await cached.countCohorts([criteria(45)]);
    expect(inner.calls).toBe(3);
  });

  it('keeps at most maxEntries cohorts, dropping the least recently used', async () => {
    const inner = countingSource();
    const cached = new CachedCohortSource(inner, { maxEntries: 2, ttlMs: 60000 });
    await cached.describeCohort(criteria(1));
    await cached.describeCohort(criteria(2));
    await cached.describeCohort(criteria(1));
    await cached.describeCohort(criteria(3));
    expect(cached.cachedCohorts).toBe(2);
    inner.calls = 0;
    await cached.describeCohort(criteria(1));
    expect(inner.calls).toBe(0);
    await cached.describeCohort(criteria(2));
    expect(inner.calls).toBe(1);
  });

  it('does not remember a failure', async () => {
    let fail = true;
    const source: CohortSource = {
      countCohorts: async () => {
        if (fail) throw new Error('database away');
        return [7];
      },
      describeCohort: async () => {
        throw new Error('unused');
      },
      describeBaseline: async () => {
        throw new Error('unused');
      },
    };
    const cached = new CachedCohortSource(source, { maxEntries: 5, ttlMs: 60000 });
    await expect(cached.countCohorts([criteria(1)])).rejects.toThrow('database away');
    fail = false;
    await expect(cached.countCohorts([criteria(1)])).resolves.toEqual([7]);
  });
});
