import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CachedCohortSource } from '../cohort/cached-source.js';
import type { Config } from '../config.js';
import { countOptOuts, listOptOuts } from '../db/opt-out.repository.js';
import { AppError } from '../errors.js';
import { createKeyHasher, type KeyHasher } from '../ingest/deidentify.js';
import { resolvePatientHashSecret } from '../ingest/secret.js';
import { optOutPatient, parsePatientId } from '../privacy/opt-out.js';

export interface PrivacyRoutesOptions {
  /** The hashing secret comes from here (PATIENT_HASH_SECRET, or the one generated in DATA_DIR), as at ingest. */
  readonly config: Pick<Config, 'patientHashSecret' | 'dataDirectory'>;
}

/**
 * Makes the next hook read the cohort afresh: the shared reference data (rules, vocabulary, baseline) and the
 * in-process cohort cache. Call after anything that changes which encounters the cohort holds.
 */
export function dropCohortCaches(app: Pick<FastifyInstance, 'referenceData' | 'cohortSource'>): void {
  app.referenceData.invalidate();
  // The cache clears the in-memory aggregates behind it too; without a cache, the aggregates are the source.
  (app.cohortSource as Partial<Pick<CachedCohortSource, 'clear'>>).clear?.();
}

// The identifier is never echoed, logged or put into an error message; the logger also redacts `patientId`.
const optOutBodySchema = z.strictObject({
  /** The FHIR Patient logical id as the source system (the export the ingest read) knows it, or `Patient/<id>`. */
  patientId: z.string().min(1).max(200),
});

/**
 * Opt-outs (docs/privacy.md): `POST /admin/opt-outs` removes one patient from the cohort at once and keeps them out;
 * `GET /admin/opt-outs` says how many have opted out, when and by whom, never who.
 */
export const privacyRoutes: FastifyPluginAsyncZod<PrivacyRoutesOptions> = async (app, options) => {
  const db = app.database.db;
  // Resolved on first use, so an app that never takes an opt-out never touches DATA_DIR.
  let hasher: Promise<KeyHasher> | undefined;
  const patientHasher = () => {
    hasher ??= resolvePatientHashSecret(options.config)
      .then(createKeyHasher)
      .catch((error: unknown) => {
        hasher = undefined;
        throw error;
      });
    return hasher;
  };

  app.post('/admin/opt-outs', { onRequest: app.requireRole('informaticist'), schema: { body: optOutBodySchema } }, async (request, reply) => {
    const patientId = parsePatientId(request.body.patientId);
    if (patientId === null) {
      throw new AppError(400, 'invalid-patient-id', 'patientId must be a FHIR Patient id (1-64 letters, digits, "-" or "."), optionally as Patient/<id>');
    }
    const actor = request.adminIdentity?.name ?? 'unknown';
    const result = await optOutPatient(db, { hasher: await patientHasher(), patientId, source: 'api', actor });
    dropCohortCaches(app);
    request.log.info({ optOut: { by: actor, newlyOptedOut: result.newlyOptedOut, encountersRemoved: result.removed.encounters } }, 'patient opted out');
    return reply.code(result.newlyOptedOut ? 201 : 200).send({
      optedOut: true,
      newlyOptedOut: result.newlyOptedOut,
      encountersRemoved: result.removed.encounters,
    });
  });

  app.get(
    '/admin/opt-outs',
    { onRequest: app.requireRole('viewer'), schema: { querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }) } },
    async (request) => {
      const bySource = await countOptOuts(db);
      const recent = await listOptOuts(db, request.query.limit);
      return {
        total: bySource.api + bySource.consent,
        bySource,
        recent: recent.map((optOut) => ({ source: optOut.source, optedOutAt: optOut.optedOutAt.toISOString(), recordedBy: optOut.recordedBy })),
      };
    },
  );
};
