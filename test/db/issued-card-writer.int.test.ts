import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { IssuedCardWriter } from '../../src/db/issued-card-writer.js';
import type { IssuedCard } from '../../src/db/feedback.repository.js';
import { openTestDatabase } from '../helpers/database.js';

function card(index: number): IssuedCard {
  const hex = index.toString(16).padStart(12, '0');
  return {
    cardUuid: `00000000-0000-4000-8000-${hex}`,
    serviceId: 'patient-view',
    hookInstance: `10000000-0000-4000-8000-${hex}`,
    cardKind: 'workup',
    rulesVersion: 1,
    suggestionUuids: [`20000000-0000-4000-8000-${hex}`],
    itemCodes: ['lab-panel:cbc'],
    itemDisplays: ['Complete blood count'],
    complaintConcept: 'chest-pain',
    overrideReasons: [],
  };
}

describe('IssuedCardWriter', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    database = await openTestDatabase();
  }, 60000);

  afterAll(async () => {
    await database?.close();
  });

  it('stores the cards of concurrent hooks in shared inserts, each hook waiting for its own', async () => {
    const writer = new IssuedCardWriter(database.db);
    const statements = { count: 0 };
    const counting = new IssuedCardWriter(
      // Count the statements the writer sends (each asks for the executor once): fewer than the hooks when they share inserts.
      new Proxy(database.db, {
        get(target, property, receiver) {
          if (property === 'getExecutor') statements.count += 1;
          const value = Reflect.get(target, property, receiver) as unknown;
          // Kysely's methods read private fields: call them on the real instance.
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      }),
    );
    const hooks = Array.from({ length: 40 }, (_, index) => counting.record([card(index)]));
    await Promise.all(hooks);
    expect(statements.count).toBeGreaterThanOrEqual(1);
    expect(statements.count).toBeLessThan(40);
    const stored = await database.db.selectFrom('issued_card').select('card_uuid').execute();
    expect(stored.map((row) => row.card_uuid).sort()).toEqual(Array.from({ length: 40 }, (_, index) => card(index).cardUuid).sort());

    // Nothing to write is a no-op; a card issued twice (same uuid) is stored once.
    await writer.record([]);
    await Promise.all([writer.record([card(1)]), writer.record([card(1), card(99)])]);
    const after = await database.db.selectFrom('issued_card').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(Number(after.n)).toBe(41);
  });

  it('rejects every hook of a batch whose insert failed, and serves the next batch', async () => {
    const writer = new IssuedCardWriter(database.db);
    const bad = { ...card(200), cardUuid: 'not-a-uuid' };
    const results = await Promise.allSettled([writer.record([card(201)]), writer.record([bad])]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    await expect(writer.record([card(202)])).resolves.toBeUndefined();
    const stored = await database.db.selectFrom('issued_card').select('card_uuid').where('card_uuid', 'in', [card(201).cardUuid, card(202).cardUuid]).execute();
    expect(stored.map((row) => row.card_uuid)).toEqual([card(202).cardUuid]);
  });
});
