/**
 * What feedback costs the hooks and the console: loading the acceptance evidence (done with the reference data,
 * once per TTL, by the request that finds it stale), the GET /admin/feedback aggregates, and building cards with
 * and without `feedbackRanking`. Synthetic issued cards and feedback on an in-memory PGlite, or with DATABASE_URL on a
 * fresh database of its own on that server (dropped at the end).
 *
 *   node --import ./test/helpers/run-typescript.mjs bench/feedback.bench.ts [cards=20000] [feedbackShare=0.3]
 */
import { randomBytes } from 'node:crypto';
import { buildCohortCards, type CardContext } from '../src/cards/cohort-cards.js';
import { cardUuidFactory } from '../src/cards/uuid.js';
import { rulesSchema } from '../src/cohort/rules.js';
import type { ItemCount } from '../src/cohort/types.js';
import { countIssuedCards, countShownItems, listCardsWithFeedback, loadAcceptanceEvidence, recordIssuedCards, saveFeedback } from '../src/db/feedback.repository.js';
import { evidenceKey } from '../src/feedback/acceptance.js';
import { summarizeFeedback } from '../src/feedback/feedback-summary.js';
import { openTestDatabase } from '../test/helpers/database.js';

const cardCount = Number(process.argv[2] ?? 20000);
const feedbackShare = Number(process.argv[3] ?? 0.3);
const concepts = Array.from({ length: 20 }, (_, index) => `concept-${index}`);
const itemCodes = Array.from({ length: 200 }, (_, index) => `lab:${1000 + index}`);
const reasons = [
  { system: 'https://cohort-cds.example.org/override-reason', code: 'already-done', display: 'Already done elsewhere' },
  { system: 'https://cohort-cds.example.org/override-reason', code: 'not-indicated', display: 'Not indicated for this patient' },
];

let seed = 1;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const uuid = () => {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`;
};

async function timed<T>(label: string, runs: number, work: () => Promise<T> | T): Promise<T> {
  const times: number[] = [];
  let result: T | undefined;
  for (let run = 0; run < runs; run += 1) {
    const started = performance.now();
    result = await work();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(`${label}: median ${times[Math.floor(times.length / 2)]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${runs} runs`);
  return result as T;
}

async function main(): Promise<void> {
  const database = await openTestDatabase();
  const db = database.db;
  let feedbackRows = 0;
  for (let start = 0; start < cardCount; start += 1000) {
    const cards = Array.from({ length: Math.min(1000, cardCount - start) }, () => {
      const codes = Array.from({ length: 5 }, () => itemCodes[Math.floor(random() * itemCodes.length)]!);
      return {
        cardUuid: uuid(),
        serviceId: random() < 0.5 ? 'patient-view' : 'order-select',
        hookInstance: uuid(),
        cardKind: 'workup',
        rulesVersion: 2,
        suggestionUuids: codes.map(() => uuid()),
        itemCodes: codes,
        itemDisplays: codes.map((code) => `Item ${code}`),
        complaintConcept: concepts[Math.floor(random() * concepts.length)]!,
        overrideReasons: reasons,
      };
    });
    await recordIssuedCards(db, cards);
    const answered = cards.filter(() => random() < feedbackShare);
    feedbackRows += await saveFeedback(
      db,
      'patient-view',
      answered.map((card) =>
        random() < 0.7
          ? { cardUuid: card.cardUuid, outcome: 'accepted' as const, acceptedSuggestions: [{ id: card.suggestionUuids[0]! }], overrideReason: null, outcomeTimestamp: new Date().toISOString() }
          : { cardUuid: card.cardUuid, outcome: 'overridden' as const, acceptedSuggestions: [], overrideReason: { reason: reasons[0] }, outcomeTimestamp: new Date().toISOString() },
      ),
    );
  }
  console.log(`${cardCount} issued cards, ${feedbackRows} feedback entries (${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'})`);

  const evidence = await timed('loadAcceptanceEvidence (once per reference TTL)', 7, () => loadAcceptanceEvidence(db));
  console.log(`  ${evidence.size} (concept, item) pairs`);
  const since = new Date(Date.now() - 90 * 86_400_000);
  await timed('GET /admin/feedback aggregates (90 days, by week)', 5, async () => {
    const [shownItems, issuedPeriods, cards] = await Promise.all([countShownItems(db, since), countIssuedCards(db, since, 'week'), listCardsWithFeedback(db, { since })]);
    return summarizeFeedback({ shownItems, issuedPeriods, cards, bucket: 'week' });
  });

  // Card building, the part of every hook the option touches: 40 visits, 30 eligible items.
  const items: ItemCount[] = itemCodes.slice(0, 30).map((code, index) => ({
    itemCode: code,
    display: `Item ${code}`,
    encounters: 12 + index,
    category: 'workup',
    kind: 'lab',
    codeSystem: 'urn:bench',
    code,
  }));
  const context = (feedbackRanking: boolean): CardContext => ({
    facts: { ageYears: 50, sex: 'female', chiefComplaintText: 'x', complaintConcepts: ['concept-0'], icd10Codes: [], acuity: null, draftOrders: [] },
    selection: {
      plan: {
        criteria: {
          sex: 'female',
          ageMin: 40,
          ageMax: 60,
          complaintConcept: 'concept-0',
          otherComplaintConcepts: [],
          icd10: null,
          acuity: null,
          sites: null,
          lookback: null,
        } as never,
        relaxation: [],
      },
      sizesTried: [60],
      statistics: { size: 60, items, outcomes: { admitted: 20, returned72h: 2, edLosMedianMinutes: 300, edLosKnown: 60, hospitalLosMedianMinutes: null, hospitalLosKnown: 0 } },
    },
    baseline: { size: 1000, items: new Map(items.map((item, index) => [item.itemCode, 100 + index * 10])) },
    rules: rulesSchema.parse(feedbackRanking ? { feedbackRanking: { kind: 'beta', minOutcomes: 5 } } : {}),
    rulesVersion: 2,
    patientId: 'p',
    encounterId: undefined,
    uuidFor: cardUuidFactory('order-select', 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', 2),
    conceptDisplay: (concept) => concept,
    acceptance: evidence,
  });
  console.log(`  evidence for concept-0: ${itemCodes.slice(0, 30).filter((code) => evidence.has(evidenceKey('concept-0', code))).length} of 30 items`);
  for (const ranked of [false, true]) {
    const built = context(ranked);
    await timed(`buildCohortCards × 10000, feedbackRanking ${ranked ? 'beta' : 'none'}`, 3, () => {
      for (let index = 0; index < 10000; index += 1) buildCohortCards(built);
    });
  }
  await database.close();
}

await main();
