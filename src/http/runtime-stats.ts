/**
 * Opt-in runtime statistics (RUNTIME_STATS_INTERVAL_MS): one log line per interval with what a stall needs to be told
 * apart: requests answered and the slowest of them, the event loop's delay and utilization, garbage-collection pauses
 * and memory. A slow answer with a quiet loop and no pause points outside the process (a client, the network, another
 * process taking the cores); a delayed loop without a pause points at work on it. Found useful enough while chasing the
 * benchmark's half-rate stalls (docs/benchmarks.md) to be kept for operators: no patient data, only counts and times.
 */
import { performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

/** What one interval saw; times in ms, memory in MB. */
export interface RuntimeStatsLine {
  readonly intervalMs: number;
  readonly requests: number;
  /** The longest a request took from its headers to its last byte handed to the socket (fastify's elapsed time). */
  readonly slowestResponseMs: number;
  /** The most a 10 ms timer ran late in the interval (a p99 over ~100 samples a second would be the max again). */
  readonly eventLoopDelayMaxMs: number;
  /** Share of the interval the event loop was busy (0–1). */
  readonly eventLoopUtilization: number;
  readonly gcPauseMs: number;
  readonly gcPauseMaxMs: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  /** Cohort lookups answered from the cohort cache and loaded past it, when the service has the cache. */
  readonly cohortCacheHits?: number;
  readonly cohortCacheMisses?: number;
  /** Hooks whose cards came from a remembered card template, and those that built theirs (CohortCardCache). */
  readonly cardCacheHits?: number;
  readonly cardCacheMisses?: number;
}

/** Running totals of lookups in a cache: hits and misses since the start. */
export interface LookupTotals {
  readonly hits: number;
  readonly misses: number;
}

/** Running totals of cohort-cache lookups (CachedCohortSource.lookups) and, when there is one, of the card cache's. */
export type CacheLookups = () => LookupTotals & { readonly cards?: LookupTotals };

const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const megabytes = (bytes: number) => round(bytes / 2 ** 20, 0);

/** How often the event loop's delay is sampled: a timer due every this many ms, and how late it runs. */
const delaySampleMs = 10;

/**
 * Gathers one interval at a time: `recordResponse` on every answer, `take` at the end of an interval (the counters
 * start again).
 *
 * The event loop's delay is how late a 10 ms timer runs. Not perf_hooks' monitorEventLoopDelay: on Node 20 it reported
 * 7 ms for a loop held up 120 ms by a synchronous task, where a late timer saw 116 ms (a standalone check; the test
 * asserts that this one sees at least 100 ms of such a block).
 */
export class RuntimeStats {
  private delayMax = 0;
  private readonly sampler: NodeJS.Timeout;
  private readonly gc: PerformanceObserver;
  private utilization: EventLoopUtilization;
  private startedAt: number;
  private requests = 0;
  private slowest = 0;
  private gcTotal = 0;
  private gcMax = 0;
  private lookupsBefore: ReturnType<CacheLookups> | undefined;

  constructor(private readonly cacheLookups?: CacheLookups) {
    this.lookupsBefore = cacheLookups?.();
    this.gc = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.gcTotal += entry.duration;
        this.gcMax = Math.max(this.gcMax, entry.duration);
      }
    });
    this.gc.observe({ entryTypes: ['gc'] });
    let due = performance.now() + delaySampleMs;
    this.sampler = setInterval(() => {
      const now = performance.now();
      this.delayMax = Math.max(this.delayMax, now - due);
      due = now + delaySampleMs;
    }, delaySampleMs);
    this.sampler.unref();
    this.utilization = performance.eventLoopUtilization();
    this.startedAt = performance.now();
  }

  recordResponse(elapsedMs: number): void {
    this.requests += 1;
    if (elapsedMs > this.slowest) this.slowest = elapsedMs;
  }

  /** The interval since the last take (or the start), then a new one begins. */
  take(): RuntimeStatsLine {
    const now = performance.now();
    const utilization = performance.eventLoopUtilization(this.utilization);
    const memory = process.memoryUsage();
    const lookups = this.cacheLookups?.();
    const line: RuntimeStatsLine = {
      intervalMs: round(now - this.startedAt, 0),
      requests: this.requests,
      slowestResponseMs: round(this.slowest),
      eventLoopDelayMaxMs: round(this.delayMax),
      eventLoopUtilization: round(utilization.utilization, 2),
      gcPauseMs: round(this.gcTotal),
      gcPauseMaxMs: round(this.gcMax),
      rssMb: megabytes(memory.rss),
      heapUsedMb: megabytes(memory.heapUsed),
      ...(lookups && this.lookupsBefore
        ? { cohortCacheHits: lookups.hits - this.lookupsBefore.hits, cohortCacheMisses: lookups.misses - this.lookupsBefore.misses }
        : {}),
      ...(lookups?.cards && this.lookupsBefore?.cards
        ? { cardCacheHits: lookups.cards.hits - this.lookupsBefore.cards.hits, cardCacheMisses: lookups.cards.misses - this.lookupsBefore.cards.misses }
        : {}),
    };
    this.lookupsBefore = lookups;
    this.delayMax = 0;
    this.utilization = performance.eventLoopUtilization();
    this.startedAt = now;
    this.requests = 0;
    this.slowest = 0;
    this.gcTotal = 0;
    this.gcMax = 0;
    return line;
  }

  stop(): void {
    clearInterval(this.sampler);
    this.gc.disconnect();
  }
}

/**
 * Logs a RuntimeStatsLine every `intervalMs` for the whole app (call it on the root instance, before the routes).
 * The lines go out at info through a child logger of that level, so that setting the interval shows them whatever
 * LOG_LEVEL holds back (the benchmark runs the service at warn).
 */
export function logRuntimeStats(app: FastifyInstance, intervalMs: number, cacheLookups?: CacheLookups): void {
  const stats = new RuntimeStats(cacheLookups);
  const log: FastifyBaseLogger = app.log.child({}, { level: 'info' });
  app.addHook('onResponse', async (_request, reply) => {
    stats.recordResponse(reply.elapsedTime);
  });
  const timer = setInterval(() => log.info(stats.take(), 'runtime stats'), intervalMs);
  timer.unref();
  app.addHook('onClose', async () => {
    clearInterval(timer);
    stats.stop();
  });
}
