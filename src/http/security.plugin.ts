import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

export interface SecurityOptions {
  readonly config: Pick<Config, 'rateLimitPerMinute'>;
}

/**
 * Whose budget a request spends: the authenticated CDS client (iss + sub: one EHR's many servers share it,
 * and one busy EHR does not starve another behind the same proxy), else the connecting address.
 */
export function rateLimitKey(request: FastifyRequest): string {
  const client = request.cdsClient;
  return client === null ? `ip ${request.ip}` : `client ${client.issuer} ${client.subject ?? ''}`;
}

/**
 * Security headers on every response (@fastify/helmet) and a per-client request budget per minute
 * (@fastify/rate-limit, answered with 429 JSON and Retry-After). The budget is checked on each route after the
 * CDS client is authenticated, so it is keyed by who called; a failed authentication is answered before it.
 */
export const securityPlugin = fastifyPlugin<SecurityOptions>(
  async (app, { config }) => {
    await app.register(helmet, {
      // The service answers JSON only: no document it serves may load anything or be framed.
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    });

    if (config.rateLimitPerMinute > 0) {
      await app.register(rateLimit, {
        max: config.rateLimitPerMinute,
        timeWindow: 60_000,
        keyGenerator: rateLimitKey,
        errorResponseBuilder: (_request, context) => new AppError(429, 'rate-limited', `Too many requests; retry in ${context.after}`),
      });
    }
  },
  { name: 'security', fastify: '5.x', dependencies: ['cds-client-auth'] },
);
