import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { z } from 'zod';
import { relaxationDescriptions, relaxationSteps, rulesSchema } from '../cohort/rules.js';
import { displayedStatistics } from '../cards/count-noise.js';
import { explanationPayloadSchema, renderExplanationPage, renderRefusalPage } from '../console/explanation-page.js';
import { findVersionedRules } from '../db/rule-set.repository.js';
import { consoleAssetsDirectory } from '../paths.js';

export interface ConsoleRoutesOptions {
  /** The app's clock: explanation links expire on it. */
  readonly now?: () => Date;
  /** Where the console's files are; tests may point elsewhere. */
  readonly assetsDirectory?: string;
}

/**
 * The console's policy, replacing the service's JSON-only `default-src 'none'` on these routes: scripts, styles
 * and data from this origin only, no inline script or style (so injected markup cannot run), no framing, no
 * <base> and forms posting nowhere else. Data URLs only for images (none are used today; harmless for SVG icons).
 */
export const consoleContentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "manifest-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

const assetsPrefix = '/console/assets/';
const stylesheetUrl = `${assetsPrefix}style.css`;
const faviconUrl = `${assetsPrefix}favicon.svg`;
/** What the static route may serve: the page's modules, styles and icons; never tsconfig.json or anything else. */
const servedExtensions = new Set(['.js', '.css', '.svg']);

function sendHtml(reply: FastifyReply, status: number, body: string, cacheControl: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', cacheControl).send(body);
}

/**
 * The web console (`/console`, a single page over the admin JSON API; the API key stays in the tab's
 * sessionStorage and goes in the Authorization header, so there is no cookie to forge a request with) and the
 * explanation page behind every card's link (`/explain/:token`, server-rendered, signed link, no login).
 */
export const consoleRoutes: FastifyPluginAsync<ConsoleRoutesOptions> = async (app, options) => {
  const now = options.now ?? (() => new Date());
  const assetsDirectory = options.assetsDirectory ?? consoleAssetsDirectory;
  const shell = await readFile(path.join(assetsDirectory, 'index.html'), 'utf8');

  // Encapsulated: only the routes of this plugin get the console's policy.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', consoleContentSecurityPolicy);
    return payload;
  });

  await app.register(fastifyStatic, {
    root: assetsDirectory,
    prefix: assetsPrefix,
    decorateReply: false,
    index: false,
    wildcard: true,
    // Files change when the service is upgraded, and their names do not: revalidate (ETag) instead of caching.
    cacheControl: false,
    setHeaders: (reply) => {
      reply.header('cache-control', 'no-cache');
    },
    allowedPath: (pathName) => servedExtensions.has(path.extname(pathName)) && !pathName.split('/').some((part) => part.startsWith('.')),
  });

  // Every console address is the same page; its router reads the path (so a reload or a bookmark works).
  const sendShell = async (_request: unknown, reply: FastifyReply) => sendHtml(reply, 200, shell, 'no-cache');
  app.get('/console', sendShell);
  app.get('/console/*', sendShell);

  // What the rules editor builds its form from: each field's type, bounds, choices and default.
  app.get('/console/api/rules-schema', { onRequest: app.requireRole('viewer') }, async () => ({
    schema: z.toJSONSchema(rulesSchema, { io: 'input', unrepresentable: 'any' }),
    relaxationSteps: relaxationSteps.map((step) => ({ step, description: relaxationDescriptions[step] })),
  }));

  // A wildcard, not `:token`: a signed token is several hundred characters, beyond the router's parameter limit
  // (fastify's maxParamLength, 100), which would answer 414 to every card's link.
  app.get<{ Params: { '*': string } }>('/explain/*', async (request, reply) => {
    const refuse = (status: number, title: string, message: string) =>
      sendHtml(reply, status, renderRefusalPage({ title, message, stylesheetUrl, faviconUrl }), 'no-store');
    const verified = app.explanationLinks.codec.verify(request.params['*'], now());
    if (!verified.ok) {
      request.log.info({ explanation: { refused: verified.reason } }, 'explanation link refused');
      return verified.reason === 'expired'
        ? refuse(410, 'This link has expired', 'Explanation links open for a limited time. Open the card again in the EHR for a fresh link.')
        : refuse(404, 'This link is not valid', 'The link is incomplete or was altered. Open it again from the card in the EHR.');
    }
    const payload = explanationPayloadSchema.safeParse(verified.payload);
    if (!payload.success) return refuse(404, 'This link is not valid', 'The link does not describe a cohort this service knows.');
    const versioned = await findVersionedRules(app.database.db, payload.data.rulesVersion);
    if (!versioned) return refuse(404, 'Unknown rules version', `This service has no rules version ${payload.data.rulesVersion}.`);
    const reference = await app.referenceData.get();
    // The counts as the card showed them: noisy under the rules' countNoise, with the hooks' key (docs/privacy.md).
    const statistics = displayedStatistics(
      await app.cohortSource.describeCohort(payload.data.criteria),
      payload.data.criteria,
      versioned.rules.countNoise,
      app.countNoiseKey,
    );
    const page = renderExplanationPage({
      payload: payload.data,
      rules: versioned.rules,
      statistics,
      baseline: reference.baseline,
      conceptDisplay: (concept) => reference.conceptDisplays.get(concept) ?? concept,
      stylesheetUrl,
      faviconUrl,
    });
    // The link is a bearer of cohort figures: keep it out of shared caches and referrers (helmet: no-referrer).
    return sendHtml(reply.header('x-robots-tag', 'noindex'), 200, page, 'private, no-store');
  });
};
