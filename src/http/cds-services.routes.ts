import { serializerCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError } from '../errors.js';
import type { HookAnswerer } from '../hooks/answer-hook.js';
import { feedbackRequestSchema, hookRequestSchemas, hookResponseSchema, serializeHookResponse, type HookResponse } from '../hooks/cds-hooks.schema.js';
import type { ServiceRegistry } from '../hooks/service-registry.js';
import { findIssuedCardOffers, saveFeedback } from '../db/feedback.repository.js';
import { findFeedbackProblems } from '../feedback/validate-feedback.js';

export interface CdsServicesOptions {
  readonly registry: ServiceRegistry;
  readonly answerHook: HookAnswerer;
}

/** A 200 is written as the card builders made it (serializeHookResponse, checked by the tests); other statuses by their schema. */
function hookSerializerCompiler(route: { readonly schema: unknown; readonly method: string; readonly url: string; readonly httpStatus?: string }) {
  if (route.httpStatus === '200') return (data: unknown) => serializeHookResponse(data as HookResponse);
  // fastify types the argument with the whole route schema; at run time `schema` is the one of this status.
  return serializerCompiler(route as Parameters<typeof serializerCompiler>[0]);
}

const errorBody = z.object({ error: z.string(), message: z.string(), details: z.unknown().optional() });

/**
 * CDS Hooks 2.0 endpoints, one route per service in the registry: discovery, the service, and its feedback.
 * https://cds-hooks.hl7.org/2.0/#discovery, #calling-a-cds-service, #feedback
 */
export const cdsServicesRoutes: FastifyPluginAsyncZod<CdsServicesOptions> = async (app, { registry, answerHook }) => {
  // Fail closed: these routes are never served without the cds-client-auth plugin in front of them.
  if (!app.hasDecorator('authenticateCdsClient')) throw new Error('register the cds-client-auth plugin before the CDS routes');
  // "Every single CDS Service call, whether that be a Discovery call, a single CDS Service invocation, …"
  // carries the client's JWT (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients); only these routes, so health stays open.
  app.addHook('onRequest', app.authenticateCdsClient);

  app.get('/cds-services', async () => registry.discoveryDocument());

  for (const service of registry.services) {
    app.post(
      `/cds-services/${service.id}`,
      {
        schema: {
          body: hookRequestSchemas[service.hook],
          response: { 200: hookResponseSchema, 412: errorBody },
        },
        serializerCompiler: hookSerializerCompiler,
      },
      async (request) => answerHook(service, request.body),
    );

    app.post(
      `/cds-services/${service.id}/feedback`,
      { schema: { body: feedbackRequestSchema, response: { 200: z.object({ received: z.number().int() }), 400: errorBody, 404: errorBody } } },
      async (request) => {
        const items = request.body.feedback;
        const db = app.database.db;
        const issued = await findIssuedCardOffers(db, service.id, [...new Set(items.map((item) => item.card))]);
        const unknown = [...new Set(items.map((item) => item.card).filter((card) => !issued.has(card)))];
        if (unknown.length > 0) {
          throw new AppError(404, 'unknown-card', `This service did not issue card(s) ${unknown.join(', ')}; no feedback was stored`, {
            details: { unknownCards: unknown },
          });
        }
        // "reason … from the overrideReasons of the card", and accepted suggestions of that card (CDS Hooks 2.0 §Feedback).
        const problems = findFeedbackProblems(items, issued);
        if (problems.length > 0) {
          throw new AppError(400, 'invalid-feedback', `Feedback does not match the card it names; no feedback was stored: ${problems[0]!.message}`, {
            details: problems,
          });
        }
        const received = await db.transaction().execute((trx) =>
          saveFeedback(
            trx,
            service.id,
            items.map((item) => ({
              cardUuid: item.card,
              outcome: item.outcome,
              acceptedSuggestions: item.acceptedSuggestions ?? [],
              overrideReason: item.overrideReason ?? null,
              outcomeTimestamp: item.outcomeTimestamp,
            })),
          ),
        );
        return { received };
      },
    );
  }
};
