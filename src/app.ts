import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/connection.js';
import type { ReadDatabase } from './db/read-replica.js';
import { databasePlugin } from './http/database.plugin.js';
import { cdsClientAuthPlugin } from './http/cds-client-auth.plugin.js';
import { securityPlugin } from './http/security.plugin.js';
import { fhirServerGate } from './fhir/fhir-server-allowlist.js';
import { registerErrorHandler } from './http/error-handler.js';
import { logRuntimeStats } from './http/runtime-stats.js';
import { healthRoutes } from './http/health.routes.js';
import { adminAuthPlugin } from './http/admin-auth.plugin.js';
import { adminRoutes } from './http/admin.routes.js';
import { privacyRoutes } from './http/privacy.routes.js';
import { adminEvaluationRoutes } from './http/admin-evaluation.routes.js';
import { consoleRoutes } from './http/console.routes.js';
import { createExplanationLinks, type ExplanationLinks } from './http/explanation-link.js';
import { HookCallLog } from './db/hook-call.repository.js';
import { cdsServicesRoutes } from './http/cds-services.routes.js';
import { createHookAnswerer, type HookTrace } from './hooks/answer-hook.js';
import { ReferenceDataCache, type ReferenceData } from './hooks/reference-data.js';
import { loadServiceRegistry, type ServiceRegistry } from './hooks/service-registry.js';
import { CachedCohortSource } from './cohort/cached-source.js';
import { AggregateCohortSource } from './db/cohort-aggregate.repository.js';
import { loadAggregateSnapshot } from './db/aggregate-snapshot.repository.js';
import { SnapshotCohortSource } from './cohort/snapshot-source.js';
import { loadIcd9ToIcd10Map } from './db/code-table.repository.js';
import { listComplaintConcepts, loadComplaintVocabulary } from './db/complaint.repository.js';
import { loadAcceptanceEvidence } from './db/feedback.repository.js';
import { IssuedCardWriter } from './db/issued-card-writer.js';
import { adminFeedbackRoutes } from './http/admin-feedback.routes.js';
import { findActiveRuleSet } from './db/rule-set.repository.js';
import { AppError } from './errors.js';
import type { Icd9ToIcd10Map } from './fhir/icd.js';
import type { CohortSource } from './cohort/types.js';
import { audienceBase } from './http/cds-client-auth.plugin.js';
import { countNoiseKeyFromSecret } from './cards/count-noise.js';
import { CohortCardCache } from './cards/card-cache.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Rules, vocabulary and baseline shared by the hooks; invalidate after an ingest or a rules change. */
    referenceData: ReferenceDataCache;
    /** Signs and checks the explanation link every card carries. */
    explanationLinks: ExplanationLinks;
    /** Cohort statistics as the hooks read them (cached). */
    cohortSource: CohortSource;
    /** Hook calls waiting to be written to the audit table. */
    hookCallLog: HookCallLog;
    /**
     * Key of the noise on displayed counts (rules `countNoise`), from the configured secret; undefined without one
     * (a random key per process). Cards, previews and explanation pages all use it, so they show the same counts.
     */
    countNoiseKey: string | undefined;
  }
}

/**
 * Reference data that, when invalidated (this process just changed rules, synonyms or opt-outs), reads from the
 * primary until the replicas have replayed that change, so a reload never caches what was just replaced.
 */
class ReadYourWritesReferenceData extends ReferenceDataCache {
  constructor(load: () => Promise<ReferenceData>, ttlMs: number, private readonly readDatabase: ReadDatabase | undefined) {
    super(load, ttlMs);
  }

  override invalidate(): void {
    this.readDatabase?.markPrimaryWrite();
    super.invalidate();
  }
}

/** What the app is given rather than makes: so tests can pass their own database, clock and logger. */
export interface AppDependencies {
  readonly database: DatabaseHandle;
  /** Close the database when the app closes. */
  readonly closeDatabase?: boolean;
  readonly logger?: FastifyServerOptions['logger'];
  readonly now?: () => Date;
  readonly registry?: ServiceRegistry;
  /** How long rules, vocabulary and baseline statistics are reused before they are read again. */
  readonly referenceTtlMs?: number;
  /** How long start-up waits for the first in-memory snapshot of the aggregates (5 s by default); see SnapshotCohortSource.start. */
  readonly firstSnapshotWaitMs?: number;
}

/** Builds the fastify instance with every plugin and route; never listens (server.ts does). */
export async function buildApp(config: Config, dependencies: AppDependencies): Promise<FastifyInstance> {
  const app = Fastify({
    logger: dependencies.logger ?? false,
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    // Deeply nested or huge JSON is refused before it reaches a handler.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestTimeout: 30000,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);
  // Before any route, so that every answer is counted; the cohort cache is made further down.
  let cohortCache: CachedCohortSource | undefined;
  let cardCache: CohortCardCache | undefined;
  if (config.runtimeStatsIntervalMs > 0) {
    const lookups =
      config.cohortCacheSize > 0
        ? () => ({ ...(cohortCache?.lookups() ?? { hits: 0, misses: 0 }), ...(cardCache ? { cards: cardCache.lookups() } : {}) })
        : undefined;
    logRuntimeStats(app, config.runtimeStatsIntervalMs, lookups);
  }

  await app.register(databasePlugin, { database: dependencies.database, closeOnShutdown: dependencies.closeDatabase ?? false });
  await app.register(cors, {
    origin: config.corsOrigins === '*' ? '*' : [...config.corsOrigins],
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ['Authorization', 'Content-Type'],
  });
  // Trust boundary (README "Security"): who may call, security headers, per-client rate limit; before any route.
  await app.register(cdsClientAuthPlugin, { config });
  await app.register(securityPlugin, { config });
  await app.register(healthRoutes);
  await app.register(adminAuthPlugin);

  const db = dependencies.database.db;
  // The hook path reads through `readDb` (streaming replicas when configured and fit, else the primary); every write uses `db`.
  const readDatabase = dependencies.database.read;
  const readDb = readDatabase?.db ?? db;
  readDatabase?.onStateChange((status, previous) => {
    app.log[status.state === 'healthy' ? 'info' : 'warn']({ replica: status.name, state: status.state, previous, lagMs: status.lagMs, reason: status.reason }, 'read replica state changed');
  });
  const referenceTtlMs = dependencies.referenceTtlMs ?? 30000;
  // Many patients share a cohort; an ingest shows within the TTL (the reference data reloads on the same clock).
  // Precomputed aggregates where they answer exactly, else the exact SQL scan (src/db/cohort-aggregate.repository.ts).
  // The aggregates are held in memory and swapped when their data version moves (polled off the request path), so a
  // hook sums cells without a round trip; the SQL aggregates (then the exact scan) answer what the snapshot cannot.
  const sqlSource = new AggregateCohortSource(readDb);
  const firstSnapshotWaitMs = dependencies.firstSnapshotWaitMs ?? 5000;
  const snapshotSource = new SnapshotCohortSource(sqlSource, {
    load: () => loadAggregateSnapshot(readDb),
    pollMs: config.aggregatePollMs,
    onError: (error) => app.log.warn({ err: error }, 'could not read the cohort aggregates; hooks use the database until they can'),
    onLoaded: (loaded) => app.log.info(loaded, 'cohort aggregates loaded into memory'),
  });
  // Ready once the first snapshot is in, or after a few seconds with the SQL aggregates answering until it is.
  app.addHook('onReady', async () => snapshotSource.start({ waitAtMostMs: firstSnapshotWaitMs }));
  app.addHook('onClose', async () => snapshotSource.close());
  if (config.cohortCacheSize > 0) {
    cohortCache = new CachedCohortSource(snapshotSource, { maxEntries: config.cohortCacheSize, maxItems: config.cohortCacheItems, ttlMs: referenceTtlMs });
  }
  const cohortSource: CohortSource = cohortCache ?? snapshotSource;
  // The code tables do not change while the service runs: read them once.
  let icd9Map: Promise<Icd9ToIcd10Map> | undefined;
  const referenceData = new ReadYourWritesReferenceData(async () => {
    icd9Map ??= loadIcd9ToIcd10Map(readDb).catch((error: unknown) => {
      icd9Map = undefined;
      throw error;
    });
    const [rules, vocabulary, concepts, map, baseline, acceptance] = await Promise.all([
      findActiveRuleSet(readDb),
      loadComplaintVocabulary(readDb),
      listComplaintConcepts(readDb),
      icd9Map,
      cohortSource.describeBaseline(),
      loadAcceptanceEvidence(db),
    ]);
    if (!rules) throw new AppError(503, 'no-active-rules', 'No rules version is active');
    return {
      rules,
      vocabulary,
      conceptDisplays: new Map(concepts.map((concept) => [concept.concept, concept.display])),
      icd9Map: map,
      baseline,
      acceptance,
    };
  }, referenceTtlMs, readDatabase);
  app.decorate('referenceData', referenceData);

  const now = dependencies.now ?? (() => new Date());
  const explanationLinks = createExplanationLinks({
    secret: config.linkSigningSecret,
    baseUrl: audienceBase(config),
    ttlMs: config.explanationLinkTtlMs,
    now,
  });
  if (explanationLinks.ephemeralSecret) {
    app.log.warn('LINK_SIGNING_SECRET and PATIENT_HASH_SECRET are unset: the explanation links on cards stop opening when the service restarts');
  }
  app.decorate('explanationLinks', explanationLinks);
  app.decorate('cohortSource', cohortSource);

  // Every hook call goes to the audit table (no patient identifiers), written in batches off the hook's path.
  const hookCallLog = new HookCallLog(db, { onError: (error) => app.log.warn({ err: error }, 'could not write hook calls; will retry') });
  app.decorate('hookCallLog', hookCallLog);
  app.addHook('onClose', async () => hookCallLog.close());

  const issuedCards = new IssuedCardWriter(db);
  const resolveOptions = { timeoutMs: config.fhirFetchTimeoutMs, allowFhirServer: fhirServerGate(config.fhirServerAllowlist, app.log) };
  const registry = dependencies.registry ?? loadServiceRegistry();
  const noiseSecret = config.patientHashSecret ?? config.linkSigningSecret;
  const countNoiseKey = noiseSecret === undefined ? undefined : countNoiseKeyFromSecret(noiseSecret);
  app.decorate('countNoiseKey', countNoiseKey);
  const answerHook = createHookAnswerer({
    referenceData,
    cohortSource,
    resolveOptions,
    // Concurrent hooks share one insert (group commit); each still waits for its own cards to be stored.
    recordIssuedCards: (cards) => issuedCards.record(cards),
    now,
    explanationLink: (subject) => explanationLinks.link(subject),
    // Noise keyed by the configured secret: every instance and every restart shows the same noisy counts (docs/privacy.md).
    ...(countNoiseKey === undefined ? {} : { countNoiseKey }),
    // Patients who share a cohort share its card templates: one per cohort and set of draft orders, so twice as many as
    // the cohort cache keeps cohorts (the hooks without draft orders and order-select/-sign with the same drafts).
    cardCache: (cardCache = new CohortCardCache(config.cohortCacheSize * 2)),
    onTrace: (trace: HookTrace) => {
      app.log.info({ hook: trace }, 'hook answered');
      hookCallLog.record({
        at: now(),
        serviceId: trace.serviceId,
        hook: trace.hook,
        rulesVersion: trace.rulesVersion,
        cohortSize: trace.cohortSize,
        relaxation: trace.relaxation,
        cards: trace.cards,
        latencyMs: trace.latencyMs,
      });
    },
  });
  await app.register(cdsServicesRoutes, { registry, answerHook });
  await app.register(adminRoutes, {
    referenceData,
    cohortSource,
    registry,
    resolveOptions,
    now,
    explanationLink: (subject) => explanationLinks.link(subject),
    onReferenceChange: () => {
      referenceData.invalidate();
      // The cache clears the in-memory aggregates behind it too.
      if (cohortSource instanceof CachedCohortSource) cohortSource.clear();
      else snapshotSource.clear();
    },
  });
  await app.register(adminEvaluationRoutes);
  await app.register(adminFeedbackRoutes, { now });
  await app.register(privacyRoutes, { config });
  await app.register(consoleRoutes, { now });
  return app;
}
