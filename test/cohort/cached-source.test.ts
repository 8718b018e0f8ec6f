import { describe, expect, it } from '@jest/globals';
import { CachedCohortSource, cohortCriteriaKey } from '../../src/cohort/cached-source.js';
import { InMemoryCohortSource } from '../../src/cohort/in-memory-source.js';
import type { CohortCriteria, CohortSource } from '../../src/cohort/types.js';
import { makeCriteria, makeEncounters } from './fixtures.js';

const criteria = (age: number): CohortCriteria => makeCriteria({ sex: 'female', ageMin: age, ageMax: age + 10 });

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

  it('counts its hits and misses (the runtime statistics report them)', async () => {
    const inner = countingSource();
    const cached = new CachedCohortSource(inner, { maxEntries: 10, ttlMs: 1000 });
    expect(cached.lookups()).toEqual({ hits: 0, misses: 0 });
    await cached.describeCohort(criteria(45));
    await cached.describeCohort(criteria(45));
    await cached.countCohorts([criteria(45), criteria(50)]);
    await cached.describeCohort(criteria(50));
    // The baseline has a cache of its own and is not a cohort lookup.
    await cached.describeBaseline();
    expect(cached.lookups()).toEqual({ hits: 1, misses: 3 });
    expect(inner.calls).toBe(4);
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

  it('keeps at most maxItems item counts over all cohorts, dropping the least recently used, and not a cohort heavier than that', async () => {
    // Cohorts of 1, 2 and 3 items (plus one each for the entry): a source that tells them apart by the age asked.
    const itemsFor = (criteria: CohortCriteria) => Array.from({ length: criteria.ageMin! }, (_, index) => ({
      itemCode: `item-${index}`,
      category: 'workup' as const,
      kind: 'lab',
      display: `Item ${index}`,
      codeSystem: null,
      code: null,
      encounters: 1,
    }));
    let calls = 0;
    const source: CohortSource = {
      countCohorts: async (list) => list.map(() => 1),
      describeCohort: async (one) => {
        calls += 1;
        return { size: 1, items: itemsFor(one), outcomes: (await countingSource().describeCohort(one)).outcomes };
      },
      describeBaseline: async () => ({ size: 0, items: new Map() }),
    };
    const cached = new CachedCohortSource(source, { maxEntries: 100, maxItems: 7, ttlMs: 60000 });
    await cached.describeCohort(criteria(1));
    await cached.describeCohort(criteria(2));
    expect(cached.cachedItems).toBe(2 + 3);
    await cached.describeCohort(criteria(1));
    // 2 + 3 + 4 > 7: the least recently used (2 items) goes, the one just used (1 item) stays.
    await cached.describeCohort(criteria(3));
    expect(cached.cachedCohorts).toBe(2);
    expect(cached.cachedItems).toBe(2 + 4);
    calls = 0;
    await cached.describeCohort(criteria(1));
    await cached.describeCohort(criteria(3));
    expect(calls).toBe(0);
    await cached.describeCohort(criteria(2));
    expect(calls).toBe(1);
    // A cohort heavier than the whole bound is answered, not kept, and empties the cache on its way.
    const heavy = await cached.describeCohort(criteria(9));
    expect(heavy.items).toHaveLength(9);
    expect(cached.cachedItems).toBeLessThanOrEqual(7);
    expect(cached.cachedCohorts).toBe(0);
    cached.clear();
    expect(cached.cachedItems).toBe(0);
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

describe('cohortCriteriaKey', () => {
  const base = makeCriteria({
    sex: 'female',
    ageMin: 40,
    ageMax: 60,
    acuity: { min: 2, max: 3 },
    complaintConcept: 'abdominal-pain',
    otherComplaintConcepts: ['nausea-vomiting', 'fever'],
    icd10: { level: 'full', codes: ['K5730', 'R1084'], overlap: { measure: 'jaccard', atLeast: 0.5 } },
    sites: ['north', 'south'],
    lookback: { years: 5, referenceYear: null },
  });

  it('tells apart criteria that differ in any one field', () => {
    const variants: CohortCriteria[] = [
      { ...base, sex: 'male' },
      { ...base, sex: null },
      { ...base, ageMin: 41 },
      { ...base, ageMax: 61 },
      { ...base, acuity: null },
      { ...base, acuity: { min: 2, max: 2 } },
      { ...base, complaintConcept: 'chest-pain' },
      { ...base, otherComplaintConcepts: [] },
      { ...base, icd10: null },
      { ...base, icd10: { ...base.icd10!, level: 'category' } },
      { ...base, icd10: { ...base.icd10!, codes: ['K5730'] } },
      { ...base, icd10: { ...base.icd10!, overlap: { measure: 'any' } } },
      { ...base, icd10: { ...base.icd10!, overlap: { measure: 'all' } } },
      { ...base, icd10: { ...base.icd10!, overlap: { measure: 'jaccard', atLeast: 0.6 } } },
      { ...base, sites: null },
      { ...base, sites: ['north'] },
      { ...base, lookback: null },
      { ...base, lookback: { years: 4, referenceYear: null } },
      { ...base, lookback: { years: 5, referenceYear: 2150 } },
    ];
    const keys = new Set([base, ...variants].map(cohortCriteriaKey));
    expect(keys.size).toBe(variants.length + 1);
  });

  it('gives one key to criteria that ask for the same cohort', () => {
    const reordered: CohortCriteria = {
      ...base,
      otherComplaintConcepts: ['fever', 'nausea-vomiting'],
      icd10: { ...base.icd10!, codes: ['R1084', 'K5730', 'R1084'] },
      sites: ['south', 'north'],
    };
    expect(cohortCriteriaKey(reordered)).toBe(cohortCriteriaKey(base));
    const category = (codes: string[]): CohortCriteria => ({ ...base, icd10: { level: 'category', codes, overlap: { measure: 'any' } } });
    expect(cohortCriteriaKey(category(['K5730', 'R1084']))).toBe(cohortCriteriaKey(category(['R1010', 'K5792'])));
  });

  it('keeps cohorts that differ only in acuity apart in the cache', async () => {
    const source = new InMemoryCohortSource([...makeEncounters(4, { acuity: 1 }), ...makeEncounters(9, { acuity: 3 })]);
    const cached = new CachedCohortSource(source, { maxEntries: 10, ttlMs: 60000 });
    const esi = (min: number, max: number) => makeCriteria({ acuity: { min, max } });
    expect(await cached.countCohorts([esi(1, 1), esi(3, 3), esi(1, 3)])).toEqual([4, 9, 13]);
    expect((await cached.describeCohort(esi(1, 1))).size).toBe(4);
    expect((await cached.describeCohort(esi(3, 3))).size).toBe(9);
  });
});

describe('CachedCohortSource over a source with a data version', () => {
  it('empties itself when the source reports a new data version, asking at most once per interval', async () => {
    let clock = 0;
    let version = 'generation-1';
    let versionQuestions = 0;
    const inner = countingSource();
    const versioned = Object.assign(inner, {
      dataVersion: async () => {
        versionQuestions += 1;
        return version;
      },
    });
    const cached = new CachedCohortSource(versioned, { maxEntries: 10, ttlMs: 60000, versionCheckMs: 1000, now: () => clock });
    await cached.describeCohort(criteria(45));
    await cached.describeCohort(criteria(45));
    expect(inner.calls).toBe(1);
    expect(versionQuestions).toBe(1);
    // Another process ingested: the new version is seen at the next check, not before.
    version = 'generation-2';
    clock = 999;
    await cached.describeCohort(criteria(45));
    expect(inner.calls).toBe(1);
    clock = 1000;
    await cached.describeCohort(criteria(45));
    expect(versionQuestions).toBe(2);
    expect(inner.calls).toBe(2);
    // Same version again: the cache stays.
    clock = 2500;
    await cached.describeCohort(criteria(45));
    expect(versionQuestions).toBe(3);
    expect(inner.calls).toBe(2);
  });

  it('keeps answers past the time limit while the source tells its version without a round trip, until it moves', async () => {
    let clock = 0;
    let known: string | undefined = 'generation-1';
    const inner = countingSource();
    const versioned = Object.assign(inner, { dataVersion: async () => known ?? 'unknown', knownVersion: () => known });
    const cached = new CachedCohortSource(versioned, { maxEntries: 10, ttlMs: 1000, now: () => clock });
    await cached.describeCohort(criteria(45));
    await cached.countCohorts([criteria(45)]);
    await cached.describeBaseline();
    expect(inner.calls).toBe(3);
    clock = 60000;
    await cached.describeCohort(criteria(45));
    await cached.countCohorts([criteria(45)]);
    await cached.describeBaseline();
    expect(inner.calls).toBe(3);
    // A new version (an ingest anywhere) empties the cache.
    known = 'generation-2';
    await cached.describeCohort(criteria(45));
    expect(inner.calls).toBe(4);
    // Version unknown (the aggregates are being reloaded, or the database is away): the time limit applies again.
    known = undefined;
    clock = 120000;
    await cached.describeCohort(criteria(45));
    expect(inner.calls).toBe(5);
  });

  it('keeps serving when the version cannot be read', async () => {
    let clock = 0;
    const inner = countingSource();
    const versioned = Object.assign(inner, {
      dataVersion: async (): Promise<string> => {
        throw new Error('database away');
      },
    });
    const cached = new CachedCohortSource(versioned, { maxEntries: 10, ttlMs: 60000, now: () => clock });
    const first = await cached.countCohorts([criteria(45)]);
    clock = 5000;
    expect(await cached.countCohorts([criteria(45)])).toEqual(first);
    expect(inner.calls).toBe(1);
  });
});
