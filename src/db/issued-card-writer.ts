import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';
import type { IssuedCard } from './feedback.repository.js';

interface Waiting {
  readonly cards: readonly IssuedCard[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for the cards every hook issues: the hooks answering at the same moment share one insert, and each
 * hook still waits for its cards to be stored (so feedback on a card can always be matched to it, and a hook fails
 * with the database away). While one insert runs, the next batch gathers.
 *
 * The insert commits with `synchronous_commit = off`: it does not wait for the WAL to reach the disk. A crash of
 * PostgreSQL itself (not of this service) can then forget the cards issued in its last fraction of a second, and
 * feedback on those would be refused as unknown; feedback, rules and opt-outs keep full durability.
 */
export class IssuedCardWriter {
  private waiting: Waiting[] = [];
  private writing: Promise<void> | null = null;

  constructor(private readonly db: Kysely<Database>) {}

  /** Resolves once these cards are stored; rejects with the insert's error. */
  record(cards: readonly IssuedCard[]): Promise<void> {
    if (cards.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ cards, resolve, reject });
      this.writing ??= this.writeAll();
    });
  }

  /** Writes batch after batch until nobody waits. */
  private async writeAll(): Promise<void> {
    // Let the hooks of this turn of the event loop join the first batch.
    await Promise.resolve();
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await insertIssuedCardsWithoutFlushWait(this.db, batch.flatMap((one) => one.cards));
        for (const one of batch) one.resolve();
      } catch (error) {
        for (const one of batch) one.reject(error);
      }
    }
    this.writing = null;
  }
}

/**
 * The issued cards in one statement (one round trip, where begin, `set local`, insert and commit took four): the rows
 * travel as one JSON parameter, and set_config(…, true) turns synchronous_commit off for the statement's own
 * transaction, as `set local` did for the explicit one. A card already stored (a retried hookInstance) is left as it is.
 */
export async function insertIssuedCardsWithoutFlushWait(db: Kysely<Database>, cards: readonly IssuedCard[]): Promise<void> {
  if (cards.length === 0) return;
  const rows = cards.map((card) => ({
    card_uuid: card.cardUuid,
    service_id: card.serviceId,
    hook_instance: card.hookInstance,
    card_kind: card.cardKind,
    rules_version: card.rulesVersion,
    suggestion_uuids: card.suggestionUuids,
    item_codes: card.itemCodes,
    item_displays: card.itemDisplays ?? [],
    complaint_concept: card.complaintConcept ?? null,
    override_reasons: card.overrideReasons ?? [],
  }));
  await sql`
    insert into issued_card (card_uuid, service_id, hook_instance, card_kind, rules_version, suggestion_uuids, item_codes,
                             item_displays, complaint_concept, override_reasons)
    select card_uuid, service_id, hook_instance, card_kind, rules_version, suggestion_uuids, item_codes,
           item_displays, complaint_concept, override_reasons
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as card(
      card_uuid uuid, service_id text, hook_instance text, card_kind text, rules_version integer, suggestion_uuids text[],
      item_codes text[], item_displays text[], complaint_concept text, override_reasons jsonb)
    where set_config('synchronous_commit', 'off', true) = 'off'
    on conflict (card_uuid) do nothing`.execute(db);
}
