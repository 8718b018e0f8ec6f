import { sql } from 'kysely';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';

const healthBody = z.object({ status: z.enum(['ok', 'unavailable']), database: z.enum(['ok', 'unavailable']).optional() });

/** Liveness (the process answers) and readiness (the database answers) for orchestrators. */
export const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/health/live', { schema: { response: { 200: healthBody } } }, async () => ({ status: 'ok' as const }));

  app.get('/health/ready', { schema: { response: { 200: healthBody, 503: healthBody } } }, async (_request, reply) => {
    try {
      await sql`select 1`.execute(app.database.db);
      return { status: 'ok' as const, database: 'ok' as const };
    } catch {
      return reply.code(503).send({ status: 'unavailable' as const, database: 'unavailable' as const });
    }
  });
};
