import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';
import { recordIssuedCards, type IssuedCard } from './feedback.repository.js';

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
        await this.db.transaction().execute(async (trx) => {
          await sql`set local synchronous_commit = off`.execute(trx);
          await recordIssuedCards(trx, batch.flatMap((one) => one.cards));
        });
        for (const one of batch) one.resolve();
      } catch (error) {
        for (const one of batch) one.reject(error);
      }
    }
    this.writing = null;
  }
}
