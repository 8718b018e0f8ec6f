import type { Kysely, Transaction } from 'kysely';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface IssuedCard {
  readonly cardUuid: string;
  readonly serviceId: string;
  readonly hookInstance: string;
  readonly cardKind: string;
  readonly rulesVersion: number;
  readonly suggestionUuids: readonly string[];
  readonly itemCodes: readonly string[];
}

export interface FeedbackItem {
  readonly cardUuid: string;
  readonly outcome: 'accepted' | 'overridden';
  readonly acceptedSuggestions: ReadonlyArray<{ readonly id: string }>;
  readonly overrideReason: Record<string, unknown> | null;
  readonly outcomeTimestamp: string;
}

/** Remembers the cards a hook answered with, so feedback can be matched to them; a retried call is a no-op. */
export async function recordIssuedCards(db: Executor, cards: readonly IssuedCard[]): Promise<void> {
  if (cards.length === 0) return;
  await db
    .insertInto('issued_card')
    .values(
      cards.map((card) => ({
        card_uuid: card.cardUuid,
        service_id: card.serviceId,
        hook_instance: card.hookInstance,
        card_kind: card.cardKind,
        rules_version: card.rulesVersion,
        suggestion_uuids: [...card.suggestionUuids],
        item_codes: [...card.itemCodes],
      })),
    )
    .onConflict((conflict) => conflict.column('card_uuid').doNothing())
    .execute();
}

/** The uuids among these that this service issued for that service id. */
export async function findIssuedCardUuids(db: Executor, serviceId: string, cardUuids: readonly string[]): Promise<Set<string>> {
  if (cardUuids.length === 0) return new Set();
  const rows = await db
    .selectFrom('issued_card')
    .select('card_uuid')
    .where('service_id', '=', serviceId)
    .where('card_uuid', 'in', [...cardUuids])
    .execute();
  return new Set(rows.map((row) => row.card_uuid));
}

/** Stores feedback items; the caller owns the transaction. */
export async function saveFeedback(db: Executor, serviceId: string, items: readonly FeedbackItem[]): Promise<number> {
  if (items.length === 0) return 0;
  const result = await db
    .insertInto('feedback')
    .values(
      items.map((item) => ({
        card_uuid: item.cardUuid,
        service_id: serviceId,
        outcome: item.outcome,
        accepted_suggestions: JSON.stringify(item.acceptedSuggestions),
        override_reason: item.overrideReason === null ? null : JSON.stringify(item.overrideReason),
        outcome_timestamp: item.outcomeTimestamp,
      })),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

/** Feedback stored for a card, oldest first. */
export async function listFeedbackForCard(db: Executor, cardUuid: string) {
  return db.selectFrom('feedback').selectAll().where('card_uuid', '=', cardUuid).orderBy('feedback_id').execute();
}
