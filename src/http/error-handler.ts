import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { AppError } from '../errors.js';

/** The JSON body of every error the service answers. */
export interface ErrorBody {
  error: string;
  message: string;
  details?: unknown;
}

/** Connection-level failures of the database: the service is degraded, not broken. */
function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (/^(08|57P0)/.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code))) {
    return true;
  }
  const message = error instanceof Error ? error.message : '';
  // "Query read timeout": pg's query_timeout, a server that stopped answering without closing the connection.
  return /Connection terminated|timeout exceeded when trying to connect|Query read timeout|PGlite is closed/i.test(message);
}

/**
 * One handler for every error: 4xx with what was wrong, 503 while the database is away, and a bare 500 for
 * the unexpected (logged with its stack, never sent).
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | AppError | Error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      const details = error.validation.map((issue) => ({
        path: issue.instancePath || '/',
        message: issue.message,
      }));
      return reply.code(400).send({ error: 'invalid-request', message: `Request ${error.validationContext ?? 'body'} is invalid`, details } satisfies ErrorBody);
    }
    if (error instanceof AppError) {
      if (error.statusCode >= 500) request.log.warn({ code: error.code }, error.message);
      const body: ErrorBody = { error: error.code, message: error.message };
      if (error.details !== undefined) body.details = error.details;
      return reply.code(error.statusCode).send(body);
    }
    if (isResponseSerializationError(error)) {
      request.log.error({ err: error }, 'response failed its schema');
      return reply.code(500).send({ error: 'internal', message: 'Internal server error' } satisfies ErrorBody);
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ code: (error as { code?: string }).code }, 'database unavailable');
      return reply.code(503).header('retry-after', '5').send({ error: 'database-unavailable', message: 'The cohort database is unavailable; try again shortly' } satisfies ErrorBody);
    }
    const statusCode = (error as FastifyError).statusCode;
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      // fastify's own client errors: malformed JSON, wrong content type, body too large…
      return reply.code(statusCode).send({ error: (error as FastifyError).code ?? 'bad-request', message: error.message } satisfies ErrorBody);
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: 'internal', message: 'Internal server error' } satisfies ErrorBody);
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not-found', message: `No route for ${request.method} ${request.url.split('?')[0]}` } satisfies ErrorBody),
  );
}
