import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildApp } from '../../src/app.js';
import { buildConfig, loadConfig } from '../../src/config.js';
import { RuntimeStats } from '../../src/http/runtime-stats.js';
import { loggerOptions } from '../../src/logger.js';
import { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

/** Keeps the event loop busy for `ms`, as a long synchronous task would. */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RuntimeStats', () => {
  it('counts the answers of an interval and keeps the slowest, then starts again', () => {
    const stats = new RuntimeStats();
    try {
      stats.recordResponse(3);
      stats.recordResponse(41.26);
      stats.recordResponse(7);
      const first = stats.take();
      expect(first.requests).toBe(3);
      expect(first.slowestResponseMs).toBe(41.3);
      const second = stats.take();
      expect(second.requests).toBe(0);
      expect(second.slowestResponseMs).toBe(0);
      expect(second.rssMb).toBeGreaterThan(0);
    } finally {
      stats.stop();
    }
  });

  it('gives the cohort-cache and card-cache lookups of each interval, not the running totals', () => {
    let totals = { hits: 10, misses: 4, cards: { hits: 7, misses: 3 } };
    const stats = new RuntimeStats(() => totals);
    try {
      totals = { hits: 25, misses: 6, cards: { hits: 12, misses: 4 } };
      expect(stats.take()).toMatchObject({ cohortCacheHits: 15, cohortCacheMisses: 2, cardCacheHits: 5, cardCacheMisses: 1 });
      expect(stats.take()).toMatchObject({ cohortCacheHits: 0, cohortCacheMisses: 0, cardCacheHits: 0, cardCacheMisses: 0 });
      const withoutCache = new RuntimeStats();
      expect(withoutCache.take()).not.toHaveProperty('cohortCacheHits');
      withoutCache.stop();
    } finally {
      stats.stop();
    }
  });

  it('sees the event loop held up by a synchronous task (where monitorEventLoopDelay did not), and less once it is free', async () => {
    const stats = new RuntimeStats();
    try {
      await pause(30);
      stats.take();
      blockFor(120);
      await pause(20);
      const blocked = stats.take();
      expect(blocked.eventLoopDelayMaxMs).toBeGreaterThanOrEqual(100);
      expect(blocked.eventLoopUtilization).toBeGreaterThan(0.5);
      await pause(100);
      const quiet = stats.take();
      expect(quiet.eventLoopDelayMaxMs).toBeLessThan(blocked.eventLoopDelayMaxMs);
      // Not strictly less: on a loaded CI machine other work of the jest worker kept its loop busy through both
      // intervals once, and both utilizations rounded to 1 (the delay above is what tells the block apart).
      expect(quiet.eventLoopUtilization).toBeLessThanOrEqual(blocked.eventLoopUtilization);
    } finally {
      stats.stop();
    }
  });
});

describe('RUNTIME_STATS_INTERVAL_MS', () => {
  it('is off by default and refuses an interval below 100 ms', () => {
    expect(loadConfig({}).runtimeStatsIntervalMs).toBe(0);
    expect(loadConfig({ RUNTIME_STATS_INTERVAL_MS: '1000' }).runtimeStatsIntervalMs).toBe(1000);
    expect(() => loadConfig({ RUNTIME_STATS_INTERVAL_MS: '50' })).toThrow(/RUNTIME_STATS_INTERVAL_MS/);
  });

  describe('in the running service', () => {
    const lines: Record<string, any>[] = [];
    let database: Awaited<ReturnType<typeof openTestDatabase>>;
    let app: Awaited<ReturnType<typeof buildApp>>;

    beforeAll(async () => {
      database = await openReferenceDatabase();
      const stream = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Record<string, any>);
          done();
        },
      });
      // LOG_LEVEL warn, as the benchmark runs it: the statistics still show.
      const config = buildConfig({ loadDemoCohort: false, logLevel: 'warn', runtimeStatsIntervalMs: 150 });
      app = await buildApp(config, { database, logger: { ...loggerOptions(config), stream } as never });
      await app.ready();
    });

    afterAll(async () => {
      await app.close();
      await database.close();
    });

    it('logs the answers of each interval at info, whatever LOG_LEVEL holds back', async () => {
      lines.length = 0;
      for (let index = 0; index < 5; index += 1) expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      await pause(400);
      const stats = lines.filter((line) => line.msg === 'runtime stats');
      expect(stats.length).toBeGreaterThanOrEqual(1);
      expect(stats.every((line) => line.level === 30)).toBe(true);
      expect(stats.reduce((sum, line) => sum + (line.requests as number), 0)).toBe(5);
      expect(stats.find((line) => line.requests > 0)!.slowestResponseMs).toBeGreaterThan(0);
      // The cohort cache is on by default: its lookups are in every line (none here: no hook was called).
      expect(stats.every((line) => line.cohortCacheHits === 0 && line.cohortCacheMisses === 0)).toBe(true);
      // Nothing else at info came through: the app's own level still holds.
      expect(lines.filter((line) => line.level === 30 && line.msg !== 'runtime stats')).toEqual([]);
    });
  });
});
