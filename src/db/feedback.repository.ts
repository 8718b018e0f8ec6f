import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './database.js';
import { evidenceKey, itemOutcomesOfCard, type AcceptanceEvidence, type CardFeedback, type ItemOutcomeCounts } from '../feedback/acceptance.js';
import { isOfferedReason, type IssuedCardOffer, type OfferedCoding } from '../feedback/validate-feedback.js';

type Executor = Kysely<Database> | Transaction<Database>;

export interface IssuedCard {
  readonly cardUuid: string;
  readonly serviceId: string;
  readonly hookInstance: string;
  readonly cardKind: string;
  readonly rulesVersion: number;
  readonly suggestionUuids: readonly string[];
  readonly itemCodes: readonly string[];
  /** Displays of itemCodes, same order. */
  readonly itemDisplays?: readonly string[];
  /** The cohort's primary complaint concept, which the acceptance evidence is kept by. */
  readonly complaintConcept?: string | null;
  /** The override reasons the card offered. */
  readonly overrideReasons?: readonly OfferedCoding[];
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
        item_displays: [...(card.itemDisplays ?? [])],
        complaint_concept: card.complaintConcept ?? null,
        override_reasons: JSON.stringify(card.overrideReasons ?? []),
      })),
    )
    .onConflict((conflict) => conflict.column('card_uuid').doNothing())
    .execute();
}

/** What feedback on these cards may name (their suggestions and offered reasons), by card uuid, for that service. */
export async function findIssuedCardOffers(db: Executor, serviceId: string, cardUuids: readonly string[]): Promise<Map<string, IssuedCardOffer>> {
  if (cardUuids.length === 0) return new Map();
  const rows = await db
    .selectFrom('issued_card')
    .select(['card_uuid', 'suggestion_uuids', 'override_reasons'])
    .where('service_id', '=', serviceId)
    .where('card_uuid', 'in', [...cardUuids])
    .execute();
  return new Map(rows.map((row) => [row.card_uuid, { suggestionUuids: row.suggestion_uuids, overrideReasons: row.override_reasons }]));
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

/** One issued card with the feedback it received, as the aggregates read it. */
export interface CardWithFeedback {
  readonly cardUuid: string;
  readonly serviceId: string;
  readonly complaintConcept: string | null;
  readonly issuedAt: Date;
  readonly suggestionUuids: readonly string[];
  readonly itemCodes: readonly string[];
  readonly itemDisplays: readonly string[];
  readonly feedback: ReadonlyArray<CardFeedback & { readonly reason: OfferedCoding | null }>;
}

interface CardFeedbackRow {
  card_uuid: string;
  service_id: string;
  complaint_concept: string | null;
  issued_at: Date | string;
  suggestion_uuids: string[];
  item_codes: string[];
  item_displays: string[];
  override_reasons: OfferedCoding[] | string;
  outcome: 'accepted' | 'overridden';
  accepted_suggestions: Array<{ id: string }> | string;
  override_reason: { reason?: OfferedCoding } | string | null;
}

function parsedJson<T>(value: T | string): T {
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}

/** Cards that received feedback, issued since `since` (all when null), each with all its feedback, oldest first. */
export async function listCardsWithFeedback(
  db: Executor,
  filter: { readonly since: Date | null; readonly serviceId?: string | undefined; readonly withConceptOnly?: boolean },
): Promise<CardWithFeedback[]> {
  let query = db
    .selectFrom('feedback')
    .innerJoin('issued_card', 'issued_card.card_uuid', 'feedback.card_uuid')
    .select([
      'issued_card.card_uuid',
      'issued_card.service_id',
      'issued_card.complaint_concept',
      'issued_card.issued_at',
      'issued_card.suggestion_uuids',
      'issued_card.item_codes',
      'issued_card.item_displays',
      'issued_card.override_reasons',
      'feedback.outcome',
      'feedback.accepted_suggestions',
      'feedback.override_reason',
    ])
    .orderBy('issued_card.card_uuid')
    .orderBy('feedback.feedback_id');
  if (filter.since !== null) query = query.where('issued_card.issued_at', '>=', filter.since);
  if (filter.serviceId !== undefined) query = query.where('issued_card.service_id', '=', filter.serviceId);
  if (filter.withConceptOnly) query = query.where('issued_card.complaint_concept', 'is not', null);
  const rows = (await query.execute()) as unknown as CardFeedbackRow[];
  const cards = new Map<string, CardWithFeedback & { feedback: Array<CardFeedback & { reason: OfferedCoding | null }> }>();
  for (const row of rows) {
    let card = cards.get(row.card_uuid);
    if (!card) {
      card = {
        cardUuid: row.card_uuid,
        serviceId: row.service_id,
        complaintConcept: row.complaint_concept,
        issuedAt: new Date(row.issued_at),
        suggestionUuids: row.suggestion_uuids,
        itemCodes: row.item_codes,
        itemDisplays: row.item_displays,
        feedback: [],
      };
      cards.set(row.card_uuid, card);
    }
    const sent = parsedJson(row.override_reason)?.reason ?? null;
    // The reason as the card offered it (with its system and display), since a client may send the code alone.
    const offered = sent === null ? undefined : parsedJson(row.override_reasons).find((reason) => isOfferedReason(sent, [reason]));
    card.feedback.push({
      outcome: row.outcome,
      acceptedSuggestionIds: parsedJson(row.accepted_suggestions).map((suggestion) => suggestion.id),
      reason: offered ?? sent,
    });
  }
  return [...cards.values()];
}

/**
 * The acceptance evidence the hooks rank with: outcomes per (complaint concept, item code) over all feedback
 * ever received, pooled across services and rules versions (an item's acceptance for a complaint is about the
 * item, not the version that suggested it). Loaded with the reference data, so it refreshes on the same clock.
 * Counted in SQL with the rules of itemOutcomesOfCard (src/feedback/acceptance.ts), so only one row per pair
 * leaves the database; test/feedback/feedback.int.test.ts checks that both agree.
 */
export async function loadAcceptanceEvidence(db: Executor): Promise<AcceptanceEvidence> {
  const result = await sql<{ complaint_concept: string; item_code: string; accepted: string; overridden: string; not_chosen: string }>`
    with card_outcome as (
      select card_uuid, bool_or(outcome = 'accepted') as any_accepted, bool_or(outcome = 'overridden') as any_overridden
      from feedback
      group by card_uuid
    ),
    accepted_suggestion as (
      select distinct feedback.card_uuid, suggestion.value ->> 'id' as suggestion_uuid
      from feedback
      cross join lateral jsonb_array_elements(feedback.accepted_suggestions) as suggestion(value)
      where feedback.outcome = 'accepted'
    ),
    item_outcome as (
      select issued_card.complaint_concept, shown.item_code,
             case
               when accepted_suggestion.suggestion_uuid is not null then 'accepted'
               when card_outcome.any_overridden then 'overridden'
               else 'not-chosen'
             end as outcome
      from card_outcome
      join issued_card on issued_card.card_uuid = card_outcome.card_uuid
      cross join lateral unnest(issued_card.item_codes, issued_card.suggestion_uuids) as shown(item_code, suggestion_uuid)
      left join accepted_suggestion
        on accepted_suggestion.card_uuid = card_outcome.card_uuid and accepted_suggestion.suggestion_uuid = shown.suggestion_uuid
      where issued_card.complaint_concept is not null and shown.item_code is not null
    )
    select complaint_concept, item_code,
           count(*) filter (where outcome = 'accepted') as accepted,
           count(*) filter (where outcome = 'overridden') as overridden,
           count(*) filter (where outcome = 'not-chosen') as not_chosen
    from item_outcome
    group by complaint_concept, item_code`.execute(db);
  return new Map<string, ItemOutcomeCounts>(
    result.rows.map((row) => [
      evidenceKey(row.complaint_concept, row.item_code),
      { accepted: Number(row.accepted), overridden: Number(row.overridden), notChosen: Number(row.not_chosen) },
    ]),
  );
}

/**
 * The same evidence counted in TypeScript from the cards and their feedback (itemOutcomesOfCard): slower, since
 * every answered card leaves the database, but the reference the SQL of loadAcceptanceEvidence is checked against.
 */
export async function countAcceptanceEvidenceFromCards(db: Executor): Promise<AcceptanceEvidence> {
  const evidence = new Map<string, { accepted: number; overridden: number; notChosen: number }>();
  for (const card of await listCardsWithFeedback(db, { since: null, withConceptOnly: true })) {
    for (const { itemCode, outcome } of itemOutcomesOfCard(card, card.feedback)) {
      if (outcome === null || card.complaintConcept === null) continue;
      const key = evidenceKey(card.complaintConcept, itemCode);
      const counts = evidence.get(key) ?? { accepted: 0, overridden: 0, notChosen: 0 };
      if (outcome === 'accepted') counts.accepted += 1;
      else if (outcome === 'overridden') counts.overridden += 1;
      else counts.notChosen += 1;
      evidence.set(key, counts);
    }
  }
  return evidence;
}

/** How often each item was shown, per service and complaint concept, on cards issued since `since`. */
export async function countShownItems(db: Executor, since: Date, serviceId?: string) {
  const result = await sql<{ service_id: string; complaint_concept: string | null; item_code: string; display: string | null; shown: string }>`
    select issued_card.service_id, issued_card.complaint_concept, shown_item.item_code,
           max(shown_item.display) as display, count(*) as shown
    from issued_card
    cross join lateral unnest(issued_card.item_codes, issued_card.item_displays) as shown_item(item_code, display)
    where issued_card.issued_at >= ${since}
      and shown_item.item_code is not null
      ${serviceId === undefined ? sql`` : sql`and issued_card.service_id = ${serviceId}`}
    group by issued_card.service_id, issued_card.complaint_concept, shown_item.item_code`.execute(db);
  return result.rows.map((row) => ({
    serviceId: row.service_id,
    complaintConcept: row.complaint_concept,
    itemCode: row.item_code,
    display: row.display,
    shown: Number(row.shown),
  }));
}

/** Cards issued per service and period (UTC day or ISO week, by its Monday), since `since`. */
export async function countIssuedCards(db: Executor, since: Date, bucket: 'day' | 'week', serviceId?: string) {
  const unit = bucket === 'day' ? sql.lit('day') : sql.lit('week');
  const result = await sql<{ service_id: string; period: Date | string; cards: string; items: string }>`
    select service_id, date_trunc(${unit}, issued_at at time zone 'UTC') as period,
           count(*) as cards, coalesce(sum(cardinality(item_codes)), 0) as items
    from issued_card
    where issued_at >= ${since}
      ${serviceId === undefined ? sql`` : sql`and service_id = ${serviceId}`}
    group by 1, 2
    order by 2, 1`.execute(db);
  return result.rows.map((row) => ({
    serviceId: row.service_id,
    period: periodStart(row.period),
    cards: Number(row.cards),
    items: Number(row.items),
  }));
}

/** A date_trunc result (timestamp without time zone, in UTC) as YYYY-MM-DD. */
function periodStart(value: Date | string): string {
  if (typeof value === 'string') return value.slice(0, 10);
  // pg and PGlite read a timestamp without time zone as local time.
  const local = new Date(value.getTime() - value.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 10);
}
