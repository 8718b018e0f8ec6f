import type { FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { bearerToken, hashApiKey, looksLikeApiKey, roleAllows, type AdminIdentity, type ApiKeyRole } from '../auth/api-key.js';
import { FailureThrottle } from '../auth/failure-throttle.js';
import { findApiKeyIdentity } from '../db/api-key.repository.js';
import type { ErrorBody } from './error-handler.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for admin routes: 401 without a valid API key, 403 when its role is below `role`. */
    requireRole: (role: ApiKeyRole) => (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  }
  interface FastifyRequest {
    /** The API key's identity on admin routes; null elsewhere. */
    adminIdentity: AdminIdentity | null;
  }
}

export interface AdminAuthOptions {
  /** Failed attempts per client address before it must wait; defaults 20 per 5 minutes. */
  readonly maxFailures?: number;
  readonly failureWindowMs?: number;
}

const unauthorized: ErrorBody = { error: 'unauthorized', message: 'A valid API key is required (Authorization: Bearer)' };

/**
 * API-key authentication of the admin API and console (README "Security"). Keys are looked up by their SHA-256;
 * repeated failures from one address are answered 429 before any lookup.
 */
export const adminAuthPlugin = fastifyPlugin<AdminAuthOptions>(
  async (app, options) => {
    app.decorateRequest('adminIdentity', null);
    const throttle = new FailureThrottle({ maxFailures: options.maxFailures ?? 20, windowMs: options.failureWindowMs ?? 5 * 60_000 });

    app.decorate('requireRole', (role: ApiKeyRole) => async (request: FastifyRequest, reply: FastifyReply) => {
      const waitMs = throttle.retryAfterMs(request.ip);
      if (waitMs > 0) {
        return reply
          .code(429)
          .header('retry-after', String(Math.ceil(waitMs / 1000)))
          .send({ error: 'too-many-failures', message: 'Too many failed authentications from this address; try again later' } satisfies ErrorBody);
      }
      const token = bearerToken(request.headers.authorization);
      const identity = token !== undefined && looksLikeApiKey(token) ? await findApiKeyIdentity(app.database.db, hashApiKey(token)) : undefined;
      if (!identity) {
        throttle.recordFailure(request.ip);
        request.log.warn({ auth: { reason: token === undefined ? 'missing-key' : 'unknown-key' } }, 'admin authentication failed');
        return reply.code(401).header('www-authenticate', 'Bearer').send(unauthorized);
      }
      request.adminIdentity = identity;
      if (!roleAllows(identity.role, role)) {
        request.log.warn({ auth: { reason: 'role', key: identity.name, role: identity.role, required: role } }, 'admin authorization failed');
        return reply.code(403).send({ error: 'forbidden', message: `This needs the ${role} role; the key "${identity.name}" is a ${identity.role}` } satisfies ErrorBody);
      }
      return undefined;
    });
  },
  { name: 'admin-auth', fastify: '5.x', dependencies: ['database'] },
);
