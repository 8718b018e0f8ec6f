import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { countIssuedCards, countShownItems, listCardsWithFeedback } from '../db/feedback.repository.js';
import { summarizeFeedback } from '../feedback/feedback-summary.js';

const querySchema = z.object({
  /** Cards issued in the last this many days. */
  sinceDays: z.coerce.number().min(1).max(3660).default(90),
  bucket: z.enum(['day', 'week']).default('week'),
  serviceId: z
    .string()
    .regex(/^[A-Za-z0-9\-_.]{1,100}$/, 'a service id')
    .optional(),
});

export interface AdminFeedbackOptions {
  readonly now?: () => Date;
}

/**
 * `GET /admin/feedback` (viewer): what clinicians did with the suggestions, per item (per complaint concept),
 * per service and per day or week, with the override reasons they picked (src/feedback/feedback-summary.ts).
 * Counted on the cards issued in the window, so a period's acceptance is that of the cards it showed.
 */
export const adminFeedbackRoutes: FastifyPluginAsyncZod<AdminFeedbackOptions> = async (app, options) => {
  const db = app.database.db;
  const now = options.now ?? (() => new Date());
  app.get('/admin/feedback', { onRequest: app.requireRole('viewer'), schema: { querystring: querySchema } }, async (request) => {
    const { sinceDays, bucket, serviceId } = request.query;
    const since = new Date(now().getTime() - sinceDays * 86_400_000);
    const [shownItems, issuedPeriods, cards] = await Promise.all([
      countShownItems(db, since, serviceId),
      countIssuedCards(db, since, bucket, serviceId),
      listCardsWithFeedback(db, { since, serviceId }),
    ]);
    return { since: since.toISOString(), bucket, serviceId: serviceId ?? null, ...summarizeFeedback({ shownItems, issuedPeriods, cards, bucket }) };
  });
};
