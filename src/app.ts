import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.js';
import type { DatabaseHandle } from './db/connection.js';
import { databasePlugin } from './http/database.plugin.js';
import { cdsClientAuthPlugin } from './http/cds-client-auth.plugin.js';
import { securityPlugin } from './http/security.plugin.js';
import { fhirServerGate } from './fhir/fhir-server-allowlist.js';
import { registerErrorHandler } from './http/error-handler.js';
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
import { ReferenceDataCache } from './hooks/reference-data.js';
import { loadServiceRegistry, type ServiceRegistry } from './hooks/service-registry.js';
import { CachedCohortSource } from './cohort/cached-source.js';
import { SqlCohortSource } from './db/cohort-statistics.repository.js';
import { loadIcd9ToIcd10Map } from './db/code-table.repository.js';
import { listComplaintConcepts, loadComplaintVocabulary } from './db/complaint.repository.js';
import { recordIssuedCards } from './db/feedback.repository.js';
import { findActiveRuleSet } from './db/rule-set.repository.js';
import { AppError } from './errors.js';
import type { Icd9ToIcd10Map } from './fhir/icd.js';
import type { CohortSource } from './cohort/types.js';
import { audienceBase } from './http/cds-client-auth.plugin.js';

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
  const referenceTtlMs = dependencies.referenceTtlMs ?? 30000;
  // Many patients share a cohort; an ingest shows within the TTL (the reference data reloads on the same clock).
  const sqlSource = new SqlCohortSource(db);
  const cohortSource: CohortSource =
    config.cohortCacheSize > 0 ? new CachedCohortSource(sqlSource, { maxEntries: config.cohortCacheSize, ttlMs: referenceTtlMs }) : sqlSource;
  // The code tables do not change while the service runs: read them once.
  let icd9Map: Promise<Icd9ToIcd10Map> | undefined;
  const referenceData = new ReferenceDataCache(async () => {
    icd9Map ??= loadIcd9ToIcd10Map(db).catch((error: unknown) => {
      icd9Map = undefined;
      throw error;
    });
    const [rules, vocabulary, concepts, map, baseline] = await Promise.all([
      findActiveRuleSet(db),
      loadComplaintVocabulary(db),
      listComplaintConcepts(db),
      icd9Map,
      cohortSource.describeBaseline(),
    ]);
    if (!rules) throw new AppError(503, 'no-active-rules', 'No rules version is active');
    return {
      rules,
      vocabulary,
      conceptDisplays: new Map(concepts.map((concept) => [concept.concept, concept.display])),
      icd9Map: map,
      baseline,
    };
  }, referenceTtlMs);
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

  const resolveOptions = { timeoutMs: config.fhirFetchTimeoutMs, allowFhirServer: fhirServerGate(config.fhirServerAllowlist, app.log) };
  const registry = dependencies.registry ?? loadServiceRegistry();
  const answerHook = createHookAnswerer({
    referenceData,
    cohortSource,
    resolveOptions,
    recordIssuedCards: (cards) => recordIssuedCards(db, cards),
    now,
    explanationLink: (subject) => explanationLinks.link(subject),
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
      if (cohortSource instanceof CachedCohortSource) cohortSource.clear();
    },
  });
  await app.register(adminEvaluationRoutes);
  await app.register(privacyRoutes, { config });
  await app.register(consoleRoutes, { now });
  return app;
}
