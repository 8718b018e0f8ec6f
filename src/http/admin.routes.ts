import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { CohortSource, PatientFacts } from '../cohort/types.js';
import { conceptsForComplaint } from '../cohort/complaint.js';
import { rulesSchema } from '../cohort/rules.js';
import { listAuditEvents, recordAuditEvent } from '../db/audit.repository.js';
import { searchIcd10Codes } from '../db/code-table.repository.js';
import { listUnmappedComplaints, remapComplaintConcepts, summarizeCohort } from '../db/complaint-mapping.repository.js';
import { listComplaintConcepts, loadComplaintVocabulary, saveComplaintSynonym } from '../db/complaint.repository.js';
import { summarizeHookCalls } from '../db/hook-call.repository.js';
import { aggregatesFitRules, refreshCohortAggregates } from '../db/cohort-aggregate.repository.js';
import {
  activateRuleSet,
  createDraftRuleSet,
  findActivationReadiness,
  findRuleSet,
  findVersionedRules,
  listRuleSets,
  RuleSetStateError,
  updateDraftRuleSet,
  type ActivationReadiness,
  type RuleSetRecord,
} from '../db/rule-set.repository.js';
import { AppError } from '../errors.js';
import { normalizeIcd10Code } from '../fhir/icd.js';
import { patientFactsFromContext } from '../fhir/patient-facts.js';
import { answerForFacts, type ExplanationSubject } from '../hooks/answer-hook.js';
import { hookRequestSchema } from '../hooks/cds-hooks.schema.js';
import { resolveHookContext, type ResolveContextOptions } from '../hooks/context-resolver.js';
import type { ReferenceDataCache } from '../hooks/reference-data.js';
import type { ServiceRegistry } from '../hooks/service-registry.js';
import type { Link } from '../cards/card.js';
import { describeCountNoise, displayedCohortSummary } from '../cards/count-noise.js';

export interface AdminRoutesOptions {
  readonly referenceData: ReferenceDataCache;
  readonly cohortSource: CohortSource;
  readonly registry: ServiceRegistry;
  readonly resolveOptions: ResolveContextOptions;
  readonly now: () => Date;
  readonly explanationLink?: (subject: ExplanationSubject) => Link | undefined;
  /** Called after anything that changes what a hook answers (rules, vocabulary): drop caches. */
  readonly onReferenceChange: () => void;
}

const versionParams = z.object({ version: z.coerce.number().int().min(1).max(2_147_483_647) });

/** A zod issue as the console shows it next to a field: the field's path and what is wrong. */
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

function fieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(rules)', message: issue.message }));
}

/** Rules as sent: unknown fields refused, so a typo in a field name is an error, not silently ignored. */
function parseRules(candidate: unknown): z.infer<typeof rulesSchema> {
  const strict = rulesSchema.safeParse(candidate);
  if (!strict.success) throw new AppError(400, 'invalid-rules', 'The rules are not valid', { details: fieldIssues(strict.error) });
  const known = new Set(Object.keys(rulesSchema.parse({})));
  const unknown = Object.keys((candidate ?? {}) as object).filter((key) => !known.has(key));
  if (unknown.length > 0) {
    throw new AppError(400, 'invalid-rules', 'The rules are not valid', {
      details: unknown.map((key) => ({ path: key, message: 'is not a rules field' })),
    });
  }
  return strict.data;
}

/** What the console needs to offer activation: allowed or not, why, and the backtest it rests on. */
function activationJson(readiness: ActivationReadiness | undefined) {
  if (!readiness) return null;
  switch (readiness.kind) {
    case 'active':
      return { kind: readiness.kind, allowed: false, reason: 'This version is active', backtestRunId: null };
    case 'rollback':
      return { kind: readiness.kind, allowed: true, reason: 'Was active before: going back needs no new backtest', backtestRunId: null };
    case 'backtested':
      return { kind: readiness.kind, allowed: true, reason: `Backtested (run #${readiness.runId})`, backtestRunId: readiness.runId };
    case 'not-backtested':
      return { kind: readiness.kind, allowed: false, reason: readiness.reason, backtestRunId: readiness.outdatedRunId };
  }
}

function toJson(record: RuleSetRecord, readiness?: ActivationReadiness) {
  return {
    version: record.version,
    status: record.status,
    note: record.note,
    createdAt: record.createdAt.toISOString(),
    createdBy: record.createdBy,
    activatedAt: record.activatedAt?.toISOString() ?? null,
    rules: record.rules,
    /** The stored rules with every default filled in: what the engine uses. */
    effectiveRules: rulesSchema.safeParse(record.rules).data ?? null,
    /** Whether it can be activated now: a draft needs a backtest since its last change, or `force` with a reason. */
    activation: activationJson(readiness),
  };
}

function rethrowRuleState(error: unknown): never {
  if (error instanceof RuleSetStateError) throw new AppError(error.reason === 'not-found' ? 404 : 409, error.reason, error.message);
  throw error;
}

const factsSchema = z.strictObject({
  ageYears: z.number().int().min(0).max(120).nullable().default(null),
  sex: z.enum(['female', 'male', 'other', 'unknown']).nullable().default(null),
  chiefComplaint: z.string().max(500).nullable().default(null),
  icd10Codes: z.array(z.string().max(16)).max(50).default([]),
  acuity: z.number().int().min(1).max(5).nullable().default(null),
});

const activateBodySchema = z
  .strictObject({
    force: z.boolean().default(false),
    reason: z.string().trim().max(2000).optional(),
  })
  .refine((body) => !body.force || (body.reason ?? '').length >= 10, {
    path: ['reason'],
    message: 'activating without a backtest needs a reason (10 characters or more) for the audit trail',
  })
  // fastify hands a request without a body to the validator as null.
  .nullish();

const previewBodySchema = z.union([
  z.strictObject({ facts: factsSchema }),
  z.strictObject({ serviceId: z.string().max(128), request: z.unknown() }),
]);

/**
 * The admin API (README "Admin API"): rules versions, previews, the audit trail, the cohort overview and the
 * complaint vocabulary. Every route needs an API key; `viewer` reads, `informaticist` changes.
 */
export const adminRoutes: FastifyPluginAsyncZod<AdminRoutesOptions> = async (app, options) => {
  const db = app.database.db;
  const viewer = { onRequest: app.requireRole('viewer') };
  const informaticist = { onRequest: app.requireRole('informaticist') };

  app.get('/admin/whoami', viewer, async (request) => request.adminIdentity);

  app.get('/admin/rules', viewer, async () => {
    const versions = await listRuleSets(db);
    const readiness = await findActivationReadiness(db, versions.map((version) => version.version));
    return {
      active: versions.find((version) => version.status === 'active')?.version ?? null,
      versions: versions.map((version) => toJson(version, readiness.get(version.version))),
    };
  });

  app.get('/admin/rules/defaults', viewer, async () => ({ rules: rulesSchema.parse({}) }));

  app.get('/admin/rules/:version', { ...viewer, schema: { params: versionParams } }, async (request) => {
    const record = await findRuleSet(db, request.params.version);
    if (!record) throw new AppError(404, 'not-found', `There is no rules version ${request.params.version}`);
    return toJson(record, (await findActivationReadiness(db, [record.version])).get(record.version));
  });

  // Validate without saving: the console checks a draft as it is edited.
  app.post('/admin/rules/validate', { ...viewer, schema: { body: z.strictObject({ rules: z.unknown() }) } }, async (request) => {
    try {
      return { valid: true, rules: parseRules(request.body.rules), issues: [] };
    } catch (error) {
      if (error instanceof AppError) return { valid: false, rules: null, issues: error.details as FieldIssue[] };
      throw error;
    }
  });

  app.post(
    '/admin/rules',
    {
      ...informaticist,
      schema: { body: z.strictObject({ rules: z.unknown(), note: z.string().max(2000).nullable().default(null), basedOn: z.number().int().min(1).optional() }) },
    },
    async (request, reply) => {
      const rules = parseRules(request.body.rules);
      const record = await createDraftRuleSet(db, {
        rules,
        note: request.body.note,
        createdBy: request.adminIdentity?.name ?? 'unknown',
        ...(request.body.basedOn === undefined ? {} : { basedOn: request.body.basedOn }),
      });
      return reply.code(201).header('location', `/admin/rules/${record.version}`).send(toJson(record));
    },
  );

  app.put(
    '/admin/rules/:version',
    { ...informaticist, schema: { params: versionParams, body: z.strictObject({ rules: z.unknown(), note: z.string().max(2000).nullable().default(null) }) } },
    async (request) => {
      const rules = parseRules(request.body.rules);
      const record = await updateDraftRuleSet(db, request.params.version, { rules, note: request.body.note, updatedBy: request.adminIdentity?.name ?? 'unknown' }).catch(
        rethrowRuleState,
      );
      return toJson(record);
    },
  );

  // A draft needs a backtest since its last change; `{force: true, reason}` skips it, on the record (audit trail).
  app.post('/admin/rules/:version/activate', { ...informaticist, schema: { params: versionParams, body: activateBodySchema } }, async (request) => {
    const record = await findRuleSet(db, request.params.version);
    if (!record) throw new AppError(404, 'not-found', `There is no rules version ${request.params.version}`);
    // A version that no longer validates (e.g. after a schema change) is never put in front of clinicians.
    parseRules(record.rules);
    const force = request.body?.force ? { reason: request.body.reason ?? '' } : undefined;
    const { previous, readiness } = await activateRuleSet(db, request.params.version, request.adminIdentity?.name ?? 'unknown', force ? { force } : {}).catch(
      rethrowRuleState,
    );
    options.onReferenceChange();
    const forced = readiness.kind === 'not-backtested';
    request.log.info({ rules: { active: request.params.version, previous, by: request.adminIdentity?.name, forced } }, 'rules version activated');
    // Rules that filter by site or look back over years need aggregates split that way: rebuilt in the background
    // (a new generation; hooks keep serving from the current one, then from the exact scan where it cannot answer).
    const aggregates = (await aggregatesFitRules(db, parseRules(record.rules))) ? 'current' : 'rebuilding';
    if (aggregates === 'rebuilding') {
      refreshCohortAggregates(db).then(
        (rebuilt) => {
          request.log.info({ aggregates: rebuilt }, 'cohort aggregates rebuilt for the active rules');
          options.onReferenceChange();
        },
        (error: unknown) => request.log.error({ err: error }, 'could not rebuild the cohort aggregates for the active rules'),
      );
    }
    return { active: request.params.version, previous, forced, backtestRunId: readiness.kind === 'backtested' ? readiness.runId : null, aggregates };
  });

  app.post('/admin/rules/:version/preview', { ...viewer, schema: { params: versionParams, body: previewBodySchema } }, async (request) => {
    const versioned = await findVersionedRules(db, request.params.version);
    if (!versioned) throw new AppError(404, 'not-found', `There is no rules version ${request.params.version}`);
    const reference = await options.referenceData.get();
    let facts: PatientFacts;
    let serviceId = 'preview';
    let patientId = 'preview';
    let encounterId: string | undefined;
    if ('facts' in request.body) {
      const given = request.body.facts;
      const icd10Codes = given.icd10Codes.map((code) => normalizeIcd10Code(code));
      const bad = given.icd10Codes.filter((_, index) => icd10Codes[index] === null);
      if (bad.length > 0) throw new AppError(400, 'invalid-icd10', `Not ICD-10-CM codes: ${bad.join(', ')}`);
      facts = {
        ageYears: given.ageYears,
        sex: given.sex,
        chiefComplaintText: given.chiefComplaint,
        complaintConcepts: conceptsForComplaint(given.chiefComplaint, reference.vocabulary).concepts,
        icd10Codes: [...new Set(icd10Codes as string[])],
        acuity: given.acuity,
        draftOrders: [],
      };
    } else {
      const service = options.registry.services.find((candidate) => candidate.id === (request.body as { serviceId: string }).serviceId);
      if (!service) throw new AppError(404, 'unknown-service', `There is no service ${request.body.serviceId}`);
      const hookRequest = hookRequestSchema.safeParse(request.body.request);
      if (!hookRequest.success || hookRequest.data.hook !== service.hook) {
        throw new AppError(400, 'invalid-request', `request must be a CDS Hooks ${service.hook} request`, {
          details: hookRequest.success ? [{ path: 'hook', message: `must be ${service.hook}` }] : fieldIssues(hookRequest.error),
        });
      }
      const resolved = await resolveHookContext(service, hookRequest.data, options.resolveOptions);
      facts = patientFactsFromContext(resolved, { vocabulary: reference.vocabulary, icd9Map: reference.icd9Map, now: options.now() });
      serviceId = service.id;
      patientId = hookRequest.data.context.patientId;
      encounterId = 'encounterId' in hookRequest.data.context ? hookRequest.data.context.encounterId : undefined;
    }
    const { outcome, built } = await answerForFacts({
      facts,
      versionedRules: versioned,
      reference,
      cohortSource: options.cohortSource,
      serviceId,
      hookInstance: 'preview',
      patientId,
      encounterId,
      ...(options.explanationLink ? { explanationLink: options.explanationLink } : {}),
      // The same noise key as the hooks, so a preview shows the counts a clinician would see.
      ...(app.countNoiseKey === undefined ? {} : { countNoiseKey: app.countNoiseKey }),
    });
    return {
      rulesVersion: versioned.version,
      facts: {
        ageYears: facts.ageYears,
        sex: facts.sex,
        complaintConcepts: facts.complaintConcepts,
        icd10Codes: facts.icd10Codes,
        acuity: facts.acuity,
      },
      cohortSize: outcome.kind === 'selected' ? outcome.selection.statistics.size : null,
      relaxation: outcome.kind === 'selected' ? outcome.selection.plan.relaxation : [],
      criteria: outcome.kind === 'selected' ? outcome.selection.plan.criteria : null,
      sizesTried: outcome.kind === 'selected' ? outcome.selection.sizesTried : outcome.sizesTried,
      noCohortReason: outcome.kind === 'none' ? outcome.reason : null,
      cards: built.map(({ card }) => card),
    };
  });

  app.get(
    '/admin/audit',
    { ...viewer, schema: { querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), before: z.string().regex(/^\d{1,18}$/).optional(), action: z.string().max(64).optional() }) } },
    async (request) => ({
      events: await listAuditEvents(db, {
        limit: request.query.limit,
        ...(request.query.before === undefined ? {} : { beforeId: request.query.before }),
        ...(request.query.action === undefined ? {} : { action: request.query.action }),
      }),
    }),
  );

  app.get('/admin/hook-calls', { ...viewer, schema: { querystring: z.object({ sinceHours: z.coerce.number().min(0.01).max(24 * 366).default(24) }) } }, async (request) => ({
    since: new Date(options.now().getTime() - request.query.sinceHours * 3600_000).toISOString(),
    services: await summarizeHookCalls(db, new Date(options.now().getTime() - request.query.sinceHours * 3600_000)),
  }));

  app.get('/admin/icd10', { ...viewer, schema: { querystring: z.object({ q: z.string().max(100), limit: z.coerce.number().int().min(1).max(50).default(15) }) } }, async (request) => ({
    codes: (await searchIcd10Codes(db, request.query.q, request.query.limit)).map((row) => ({ code: row.code, display: row.short_description, billable: row.billable })),
  }));

  app.get('/admin/cohort/summary', viewer, async () => {
    const { rules } = (await options.referenceData.get()).rules;
    // Under the rules' countNoise, noisy with the hooks' key, as the cards' counts (docs/privacy.md).
    const summary = displayedCohortSummary(await summarizeCohort(db, rules.minCellSize), rules.minCellSize, rules.countNoise, app.countNoiseKey);
    return { minCellSize: rules.minCellSize, countNoise: describeCountNoise(rules.countNoise), ...summary };
  });

  app.get('/admin/complaints', viewer, async () => ({ concepts: await listComplaintConcepts(db) }));

  app.get('/admin/complaints/unmapped', { ...viewer, schema: { querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }) } }, async (request) => ({
    unmapped: await listUnmappedComplaints(db, await loadComplaintVocabulary(db), request.query.limit),
  }));

  app.post(
    '/admin/complaints/synonyms',
    { ...informaticist, schema: { body: z.strictObject({ phrase: z.string().min(1).max(200), concept: z.string().min(1).max(100) }) } },
    async (request, reply) => {
      const actor = request.adminIdentity?.name ?? 'unknown';
      const saved = await db.transaction().execute(async (trx) => {
        const synonym = await saveComplaintSynonym(trx, request.body.phrase, request.body.concept, actor);
        await recordAuditEvent(trx, { actor, action: 'complaint.map', target: synonym.phrase, details: { concept: synonym.concept } });
        return synonym;
      });
      const remapped = await remapComplaintConcepts(db, await loadComplaintVocabulary(db));
      options.onReferenceChange();
      return reply.code(201).send({ ...saved, remapped });
    },
  );
};
