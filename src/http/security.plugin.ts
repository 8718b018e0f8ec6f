import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyRequest } from 'fastify';
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

/** The service answers JSON only: no document it serves may load anything or be framed. */
export const helmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
} as const;

/**
 * The headers @fastify/helmet sets with these options, worked out once by asking it on a throwaway instance: the
 * plugin builds helmet's middleware again for every request (about 4% of a hook's CPU time), and without CSP nonces
 * the headers do not depend on the request. test/http/security.int.test.ts compares them with the plugin's own.
 */
export async function helmetHeaders(options: typeof helmetOptions = helmetOptions): Promise<Record<string, string>> {
  const plain = Fastify({ logger: false });
  const probe = Fastify({ logger: false });
  await probe.register(helmet, options);
  for (const instance of [plain, probe]) instance.get('/', async () => 'probe');
  try {
    const [without, withHelmet] = await Promise.all([plain.inject({ url: '/' }), probe.inject({ url: '/' })]);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(withHelmet.headers)) {
      if (!(name in without.headers) && typeof value === 'string') headers[name] = value;
    }
    return headers;
  } finally {
    await Promise.all([plain.close(), probe.close()]);
  }
}

/**
 * Security headers on every response (helmet's, see helmetHeaders) and a per-client request budget per minute
 * (@fastify/rate-limit, answered with 429 JSON and Retry-After). The budget is checked on each route after the
 * CDS client is authenticated, so it is keyed by who called; a failed authentication is answered before it.
 */
export const securityPlugin = fastifyPlugin<SecurityOptions>(
  async (app, { config }) => {
    const headers = await helmetHeaders();
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers);
      done();
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
