import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { suggestedOverrideReasons } from '../../src/cohort/rules.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { countAcceptanceEvidenceFromCards, loadAcceptanceEvidence } from '../../src/db/feedback.repository.js';
import { evidenceKey } from '../../src/feedback/acceptance.js';
import { assertValidResponse } from '../../src/hooks/cds-hooks.schema.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { forcedActivation } from '../helpers/rules.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON bodies of the HTTP answers
type Json = any;

// Ingesting the demo takes a while on a shared 2-core machine.
jest.setTimeout(300_000);

/** A woman of 64 with abdominal pain (the demo's most frequent complaint); each call a new hookInstance, so new card uuids. */
const abdominalPain = (hookInstance: string) =>
  prefetchedRequest('patient-view', { patient: { gender: 'female', birthDate: '1962-03-01' }, chiefComplaint: 'ABD PAIN, N/V', hookInstance });

const uuidOf = (index: number) => `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;

/** Demo cells are small: with a cell size of 3 the workup card has several distinctive items to order. */
const smallCells = { minCellSize: 3, overrideReasons: suggestedOverrideReasons };
const feedbackRanked = { ...smallCells, feedbackRanking: { kind: 'beta', priorAcceptance: 0.5, priorStrength: 10, minOutcomes: 12 } };

describe('feedback on the MIMIC-IV ED demo: validated, aggregated, and ranking under the rules option', () => {
  let testApp: TestApp;
  let informaticist: Record<string, string>;
  let viewer: Record<string, string>;
  let rankedVersion: number;
  let plainVersion: number;

  const hook = async (hookInstance: string): Promise<Json[]> => {
    const response = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPain(hookInstance) });
    expect(response.statusCode).toBe(200);
    assertValidResponse(response.json());
    return response.json().cards;
  };
  const workupOf = (cards: Json[]): Json => cards.find((card) => card.summary.startsWith('Workup'));
  const feedback = (body: Json) => testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view/feedback', payload: { feedback: body } });
  const preview = async (version: number): Promise<Json> => {
    const response = await testApp.app.inject({
      method: 'POST',
      url: `/admin/rules/${version}/preview`,
      headers: viewer,
      payload: { serviceId: 'patient-view', request: abdominalPain(uuidOf(999_999)) },
    });
    expect(response.statusCode).toBe(200);
    return workupOf(response.json().cards);
  };
  const labels = (card: Json): string[] => card.suggestions.map((suggestion: Json) => suggestion.label);

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
    const db = testApp.database.db;
    informaticist = { authorization: `Bearer ${(await createApiKey(db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key}` };
    viewer = { authorization: `Bearer ${(await createApiKey(db, { name: 'vic', role: 'viewer', createdBy: 'test' })).key}` };
    const create = async (rules: Json) => {
      const response = await testApp.app.inject({ method: 'POST', url: '/admin/rules', headers: informaticist, payload: { rules } });
      expect(response.statusCode).toBe(201);
      return response.json().version as number;
    };
    rankedVersion = await create(feedbackRanked);
    plainVersion = await create(smallCells);
  });

  afterAll(async () => {
    await testApp.close();
  });

  it('refuses override reasons the card did not offer and suggestions not on the card; stores a comment alone', async () => {
    // Rules v1 offers no override reasons. The prognosis card has no items, so this feedback adds no item outcome.
    const card = (await hook(uuidOf(1))).find((candidate) => candidate.summary.includes('admitted'));
    expect(card).toBeDefined();
    expect(card.overrideReasons).toBeUndefined();
    const reasonNotOffered = await feedback([
      { card: card.uuid, outcome: 'overridden', overrideReason: { reason: { code: 'not-indicated' } }, outcomeTimestamp: '2026-11-23T12:01:00Z' },
    ]);
    expect(reasonNotOffered.statusCode).toBe(400);
    expect(reasonNotOffered.json().error).toBe('invalid-feedback');
    expect(reasonNotOffered.json().details[0].path).toBe('feedback.0.overrideReason.reason');
    const foreignSuggestion = await feedback([
      { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: uuidOf(77) }], outcomeTimestamp: '2026-11-23T12:01:00Z' },
    ]);
    expect(foreignSuggestion.statusCode).toBe(400);
    expect(foreignSuggestion.json().details[0].path).toBe('feedback.0.acceptedSuggestions.0.id');
    const commentOnly = await feedback([{ card: card.uuid, outcome: 'overridden', overrideReason: { userComment: 'seen by surgery' }, outcomeTimestamp: '2026-11-23T12:01:00Z' }]);
    expect(commentOnly.statusCode).toBe(200);
    // Nothing of the refused requests was stored.
    const stored = await testApp.database.db.selectFrom('feedback').select('outcome').where('card_uuid', '=', card.uuid).execute();
    expect(stored.map((row) => row.outcome)).toEqual(['overridden']);
  });

  it('offers the rules override reasons, and feedback moves the ranking under feedbackRanking only', async () => {
    const activate = await testApp.app.inject({ method: 'POST', url: `/admin/rules/${rankedVersion}/activate`, headers: informaticist, payload: forcedActivation });
    expect(activate.statusCode).toBe(200);

    const first = workupOf(await hook(uuidOf(100)));
    expect(first.overrideReasons).toEqual(suggestedOverrideReasons);
    const before = labels(first);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(labels(await preview(plainVersion))).toEqual(before);
    // The clinicians keep choosing the last suggestion and passing over the others; some dismiss the card.
    const favourite = before.at(-1)!;
    expect(first.detail).toContain('Accepted by clinicians');

    const answer = async (index: number, outcome: 'accept' | 'override') => {
      const card = workupOf(await hook(uuidOf(200 + index)));
      const item =
        outcome === 'accept'
          ? { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions.find((s: Json) => s.label === favourite).uuid }] }
          : { card: card.uuid, outcome: 'overridden', overrideReason: { reason: { system: suggestedOverrideReasons[0].system, code: 'already-done' } } };
      const response = await feedback([{ ...item, outcomeTimestamp: '2026-11-23T12:05:00Z' }]);
      expect(response.statusCode).toBe(200);
    };

    // A handful: 11 acceptances (minOutcomes is 12) leave the order as it was.
    for (let index = 0; index < 11; index += 1) await answer(index, 'accept');
    testApp.app.referenceData.invalidate();
    expect(labels(await preview(rankedVersion))).toEqual(before);

    // Enough: 30 acceptances and 4 overrides; the favourite rises to the top, under the option only.
    for (let index = 11; index < 30; index += 1) await answer(index, 'accept');
    for (let index = 30; index < 34; index += 1) await answer(index, 'override');
    testApp.app.referenceData.invalidate();
    const after = await preview(rankedVersion);
    expect(labels(after)[0]).toBe(favourite);
    expect(labels(after)).not.toEqual(before);
    expect(labels(await preview(plainVersion))).toEqual(before);
    // 30 of 34 answers accepted it: shown on the card's detail.
    const favouriteDisplay = favourite.replace(/^(Order|Give) /, '');
    expect(after.detail).toContain(`| 88% of 34 |`);
    expect(after.detail).toContain(favouriteDisplay);
    // And the live hook agrees with the preview.
    expect(labels(workupOf(await hook(uuidOf(500))))).toEqual(labels(after));
  });

  it('shows the aggregate per item, per service and per week to a viewer', async () => {
    expect((await testApp.app.inject({ method: 'GET', url: '/admin/feedback' })).statusCode).toBe(401);
    const response = await testApp.app.inject({ method: 'GET', url: '/admin/feedback?bucket=week&sinceDays=30', headers: viewer });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    const service = body.services.find((entry: Json) => entry.serviceId === 'patient-view');
    // Workup cards answered under the ranked rules: 34 (30 accepted, 4 overridden), plus the v1 card overridden with a comment.
    expect(service.cardsAccepted).toBe(30);
    expect(service.cardsOverridden).toBe(5);
    expect(service.overrideReasons).toEqual([
      { system: suggestedOverrideReasons[0].system, code: 'already-done', display: 'Already done elsewhere', count: 4 },
    ]);
    const workupItems = body.items.filter((entry: Json) => entry.complaintConcept === 'abdominal-pain' && entry.accepted + entry.notChosen + entry.overridden > 0);
    const favourite = workupItems.find((entry: Json) => entry.accepted > 0);
    expect(favourite.accepted).toBe(30);
    expect(favourite.overridden).toBe(4);
    expect(favourite.acceptanceRate).toBeCloseTo(30 / 34, 10);
    expect(favourite.overrideReasons.map((reason: Json) => [reason.code, reason.count])).toEqual([['already-done', 4]]);
    expect(favourite.shown).toBeGreaterThanOrEqual(34);
    // Every other suggestion of those cards was passed over 30 times.
    for (const other of workupItems.filter((entry: Json) => entry !== favourite && entry.notChosen > 0)) expect(other.notChosen).toBe(30);
    const week = body.periods.filter((entry: Json) => entry.serviceId === 'patient-view');
    expect(week.reduce((sum: number, entry: Json) => sum + entry.accepted, 0)).toBe(body.totals.accepted);
    expect(week.every((entry: Json) => /^\d{4}-\d{2}-\d{2}$/.test(entry.period) && new Date(`${entry.period}T00:00:00Z`).getUTCDay() === 1)).toBe(true);
    expect(body.totals.cardsShown).toBeGreaterThanOrEqual(body.totals.cardsWithFeedback);
    // No free-text comment reaches the overview.
    expect(response.body).not.toContain('seen by surgery');
  });

  it('counts the ranking evidence in SQL exactly as the per-card rules do', async () => {
    const db = testApp.database.db;
    const fromSql = await loadAcceptanceEvidence(db);
    const fromCards = await countAcceptanceEvidenceFromCards(db);
    expect(new Map([...fromSql].sort())).toEqual(new Map([...fromCards].sort()));
    const accepted = [...fromSql.entries()].filter(([, counts]) => counts.accepted > 0);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]![0].startsWith(evidenceKey('abdominal-pain', ''))).toBe(true);
    expect(accepted[0]![1]).toEqual({ accepted: 30, overridden: 4, notChosen: 0 });

    // A card overridden, then accepted for two suggestions (once retried): both ways must still agree.
    const card = workupOf(await hook(uuidOf(600)));
    const [first, second] = card.suggestions;
    const outcomeTimestamp = '2026-11-23T12:09:00Z';
    const mixed = await feedback([
      { card: card.uuid, outcome: 'overridden', overrideReason: { reason: { code: 'patient-declined' } }, outcomeTimestamp },
      { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: first.uuid }, { id: second.uuid }], outcomeTimestamp },
      { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: first.uuid }], outcomeTimestamp },
    ]);
    expect(mixed.statusCode).toBe(200);
    const afterMixed = await loadAcceptanceEvidence(db);
    expect(new Map([...afterMixed].sort())).toEqual(new Map([...(await countAcceptanceEvidenceFromCards(db))].sort()));
    const outcomesOf = (evidence: typeof fromSql) => [...evidence.values()].reduce((sum, counts) => sum + counts.accepted + counts.overridden + counts.notChosen, 0);
    expect(outcomesOf(afterMixed) - outcomesOf(fromSql)).toBe(card.suggestions.length);
  });
});
