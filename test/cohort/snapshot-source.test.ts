/**
 * The start of the in-memory snapshot source: bounded when asked (a first load slower than the wait does not hold up
 * the caller, and calls meanwhile go to the fallback), unbounded otherwise.
 */
import { describe, expect, it } from '@jest/globals';
import { SnapshotCohortSource } from '../../src/cohort/snapshot-source.js';
import type { VersionedCohortSource } from '../../src/cohort/cached-source.js';
import { makeCriteria } from './fixtures.js';

function fallbackSource(): VersionedCohortSource & { calls: number } {
  const source = {
    calls: 0,
    dataVersion: async () => 'v1',
    countCohorts: async (criteria: readonly unknown[]) => {
      source.calls += 1;
      return criteria.map(() => 7);
    },
    describeCohort: async () => {
      throw new Error('not used');
    },
    describeBaseline: async () => {
      throw new Error('not used');
    },
  };
  return source;
}

const criteria = [makeCriteria()];

describe('SnapshotCohortSource.start', () => {
  it('returns after waitAtMostMs while the first load goes on, and answers from the fallback until it is in', async () => {
    let finishLoad!: () => void;
    const loading = new Promise<void>((resolve) => {
      finishLoad = resolve;
    });
    const fallback = fallbackSource();
    const source = new SnapshotCohortSource(fallback, {
      pollMs: 60_000,
      load: async () => {
        await loading;
        return { version: 'v1', data: null };
      },
    });
    try {
      const started = Date.now();
      await source.start({ waitAtMostMs: 50 });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(source.loaded).toBe(false);
      expect(source.knownVersion()).toBeUndefined();
      await expect(source.countCohorts(criteria)).resolves.toEqual([7]);
      expect(fallback.calls).toBe(1);
      expect(source.answered.fallback).toBe(1);
      // The load finishing later is kept: the version becomes known.
      finishLoad();
      await source.poll();
      expect(source.knownVersion()).toBe('v1');
    } finally {
      source.close();
    }
  });

  it('waits for the first load when no bound is given', async () => {
    let loads = 0;
    const source = new SnapshotCohortSource(fallbackSource(), {
      pollMs: 60_000,
      load: async () => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        loads += 1;
        return { version: 'v1', data: null };
      },
    });
    try {
      await source.start();
      expect(loads).toBe(1);
      expect(source.knownVersion()).toBe('v1');
    } finally {
      source.close();
    }
  });
});
