import type { FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { createCdsClientVerifier, type CdsClient, type CdsClientVerifier } from '../auth/cds-client-jwt.js';
import type { Config } from '../config.js';
import type { ErrorBody } from './error-handler.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of the CDS endpoints: 401 unless the call carries a valid CDS client JWT. */
    authenticateCdsClient: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;
  }
  interface FastifyRequest {
    /** The verified caller; null when authentication is off or has not run. */
    cdsClient: CdsClient | null;
  }
}

export interface CdsClientAuthOptions {
  readonly config: Pick<Config, 'cdsAuthDisabled' | 'trustedIssuers' | 'jwtClockSkewSeconds' | 'publicBaseUrl' | 'host' | 'port'>;
}

/** The base of every `aud` this service accepts: its public URL, which the EHR registered. */
export function audienceBase(config: CdsClientAuthOptions['config']): string {
  return (config.publicBaseUrl ?? `http://${config.host}:${config.port}`).replace(/\/+$/, '');
}

// One message for every failure: which check failed is for the log, not for a caller probing the service.
const unauthorized: ErrorBody = { error: 'unauthorized', message: 'A valid CDS client JWT is required (Authorization: Bearer)' };

/**
 * CDS client authentication (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients). Decorates the app with
 * `authenticateCdsClient`, which the CDS routes add as their onRequest hook (health stays open), and each
 * request with `cdsClient`. `aud` must be the URL of the endpoint called: public base URL + route path.
 */
export const cdsClientAuthPlugin = fastifyPlugin<CdsClientAuthOptions>(
  async (app, { config }) => {
    app.decorateRequest('cdsClient', null);

    if (config.cdsAuthDisabled) {
      app.log.warn(
        'CDS CLIENT AUTHENTICATION IS OFF: anyone who can reach this service can call discovery, every hook and feedback. ' +
          'Set CDS_TRUSTED_ISSUERS (README, "Security") before connecting it to an EHR.',
      );
      app.decorate('authenticateCdsClient', async () => undefined);
      return;
    }

    const verify: CdsClientVerifier = createCdsClientVerifier({ issuers: config.trustedIssuers, clockSkewSeconds: config.jwtClockSkewSeconds });
    const base = audienceBase(config);
    app.log.info({ issuers: config.trustedIssuers.map((issuer) => issuer.issuer), audienceBase: base }, 'CDS client authentication is on');

    app.decorate('authenticateCdsClient', async (request: FastifyRequest, reply: FastifyReply) => {
      // The route's own path, not the URL as sent: a query string or an encoded spelling does not change `aud`.
      const audience = `${base}${request.routeOptions.url ?? request.url.split('?')[0]}`;
      // Fail closed: whatever goes wrong while checking is a 401, never a 500 or a pass.
      const result = await verify(request.headers.authorization, audience).catch((error: unknown) => {
        request.log.error({ err: error }, 'CDS client authentication could not complete');
        return { ok: false, reason: 'invalid-token', detail: 'verification error', claimed: {} } as const;
      });
      if (result.ok) {
        request.cdsClient = result.client;
        return undefined;
      }
      const level = result.reason === 'missing-token' ? 'info' : 'warn';
      request.log[level]({ auth: { reason: result.reason, detail: result.detail, ...result.claimed } }, 'CDS client authentication failed');
      return reply.code(401).header('www-authenticate', 'Bearer').send(unauthorized);
    });
  },
  { name: 'cds-client-auth', fastify: '5.x' },
);
