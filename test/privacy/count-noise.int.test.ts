import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { noisyCount } from '../../src/cards/count-noise.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { summarizeCohort } from '../../src/db/complaint-mapping.repository.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

type Json = Record<string, any>;

/** The figures of a card without what differs per call (uuids and signed links). */
function figures(card: Json): Json {
  return { summary: card.summary, detail: card.detail, label: card.source.label, indicator: card.indicator };
}

describe('count noise through the admin API on the real demo', () => {
  let testApp: TestApp;
  let key: string;
  let version: number;
  const as = () => ({ authorization: `Bearer ${key}` });
  // Activation without a backtest, on the record: these tests are about what a version shows, not whether it is better.
  const activate = (rulesVersion: number) =>
    testApp.app.inject({
      method: 'POST',
      url: `/admin/rules/${rulesVersion}/activate`,
      headers: as(),
      payload: { force: true, reason: 'count noise test: no backtest needed' },
    });

  beforeAll(async () => {
    // A configured secret, so the app's noise key is known (and the same for every instance).
    testApp = await buildTestApp({ rateLimitPerMinute: 0, linkSigningSecret: 'count-noise-link-secret-count-noise-0123' });
    key = (await createApiKey(testApp.database.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    const draft = await testApp.app.inject({
      method: 'POST',
      url: '/admin/rules',
      headers: as(),
      payload: { rules: { countNoise: { kind: 'gaussian' } }, note: 'i2b2-style noise' },
    });
    expect(draft.statusCode).toBe(201);
    expect(draft.json().effectiveRules.countNoise).toEqual({ kind: 'gaussian', sigma: 1.3, zeroAtOrBelow: 3 });
    version = draft.json().version;
    expect((await activate(version)).statusCode).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
  });

  /** A preview body for every demo visit with a chief complaint: its own facts, as a clinician would enter them. */
  const previewBodiesOfDemoVisits = async () =>
    (
      await testApp.database.db
        .selectFrom('cohort_encounter')
        .select(['age_years', 'sex', 'chief_complaint_text', 'icd10_codes'])
        .where('chief_complaint_text', 'is not', null)
        .orderBy('encounter_key')
        .execute()
    ).map((visit) => ({ facts: { ageYears: visit.age_years, sex: visit.sex, chiefComplaint: visit.chief_complaint_text, icd10Codes: visit.icd10_codes } }));

  it('shows noisy, reproducible counts on every demo visit, consistent with their own percentages', async () => {
    const visits = await previewBodiesOfDemoVisits();
    let withCards = 0;
    let noisy = 0;
    for (const body of visits) {
      const first = (await testApp.app.inject({ method: 'POST', url: `/admin/rules/${version}/preview`, headers: as(), payload: body })).json();
      const again = (await testApp.app.inject({ method: 'POST', url: `/admin/rules/${version}/preview`, headers: as(), payload: body })).json();
      expect(again.cards.map(figures)).toEqual(first.cards.map(figures));
      if (first.cards.length === 0) continue;
      withCards += 1;
      const shownSize = Number(/· (\d+) similar ED visits ·/.exec(first.cards[0].source.label)![1]);
      if (shownSize !== first.cohortSize) noisy += 1;
      expect(shownSize).toBeGreaterThanOrEqual(11);
      for (const card of first.cards) {
        expect(card.detail).toContain('Counts carry random noise');
        for (const [, percent, count, total] of (card.detail as string).matchAll(/(\d+)% \((\d+) of (\d+)\)/g)) {
          expect(Number(total)).toBe(shownSize);
          expect(Number(count)).toBeGreaterThanOrEqual(11);
          expect(Number(percent)).toBe(Math.round((Number(count) / Number(total)) * 100));
        }
      }
    }
    expect(withCards).toBeGreaterThan(50);
    // The admin preview also reports the true size: most shown sizes differ from it.
    expect(noisy / withCards).toBeGreaterThan(0.5);
  }, 120_000);

  it('shows the same noisy counts on the explanation page as on the card, never the true ones', async () => {
    const visits = await previewBodiesOfDemoVisits();
    let compared = 0;
    let differFromTruth = 0;
    for (const body of visits) {
      if (compared >= 25) break;
      const preview = (await testApp.app.inject({ method: 'POST', url: `/admin/rules/${version}/preview`, headers: as(), payload: body })).json();
      const card = (preview.cards as Json[]).find((candidate) => candidate.links?.some((link: Json) => String(link.url).includes('/explain/')));
      if (!card) continue;
      compared += 1;
      const shownSize = Number(/· (\d+) similar ED visits ·/.exec(card.source.label)![1]);
      if (shownSize !== preview.cohortSize) differFromTruth += 1;
      const link = new URL(card.links.find((candidate: Json) => String(candidate.url).includes('/explain/')).url);
      const page = await testApp.app.inject({ method: 'GET', url: link.pathname });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain(`<div class="big-number">${shownSize}</div>`);
      // Every "n of size" count on the card is on the page with the same n and size.
      for (const [, count, total] of (card.detail as string).matchAll(/\d+% \((\d+) of (\d+)\)/g)) {
        expect(page.body).toContain(`<strong>${count}</strong> of ${total}`);
      }
    }
    expect(compared).toBeGreaterThanOrEqual(10);
    // Had the page shown true counts, these would not all have matched.
    expect(differFromTruth).toBeGreaterThan(0);
  }, 120_000);
  it('noises the cohort summary as the cards: reproducible per cell, small cells suppressed, never the true counts', async () => {
    const get = async () => {
      const response = await testApp.app.inject({ method: 'GET', url: '/admin/cohort/summary', headers: as() });
      expect(response.statusCode).toBe(200);
      return response.json() as Json;
    };
    const shown = await get();
    expect(await get()).toEqual(shown);
    expect(shown.countNoise).toContain('Counts carry random noise');
    const minCellSize = shown.minCellSize as number;
    const truth = await summarizeCohort(testApp.database.db, minCellSize);
    const key = testApp.app.countNoiseKey;
    expect(key).toBeDefined();
    const noise = { kind: 'gaussian', sigma: 1.3, zeroAtOrBelow: 3 } as const;
    // The same cells in the same order; counts computed independently here from the true ones and the app's key.
    expect((shown.cells as Json[]).map(({ complaintConcept, ageBand, sex }) => [complaintConcept, ageBand, sex])).toEqual(
      truth.cells.map(({ complaintConcept, ageBand, sex }) => [complaintConcept, ageBand, sex]),
    );
    let visible = 0;
    let differ = 0;
    for (const [index, cell] of truth.cells.entries()) {
      const displayed = (shown.cells as Json[])[index]!.encounters as number | null;
      if (cell.encounters === null) {
        expect(displayed).toBeNull();
        continue;
      }
      const expected = noisyCount(cell.encounters, noise, { key: key!, cohort: `cohort-summary\u0000${cell.complaintConcept ?? ''}\u0000${cell.ageBand}\u0000${cell.sex}`, cell: 'size' });
      expect(displayed).toBe(expected < minCellSize ? null : expected);
      if (displayed !== null) {
        visible += 1;
        expect(displayed).toBeGreaterThanOrEqual(minCellSize);
      }
      if (displayed !== cell.encounters) differ += 1;
    }
    expect(shown.total).toBe(noisyCount(truth.total, noise, { key: key!, cohort: 'cohort-summary', cell: 'total' }));
    if (shown.total !== truth.total) differ += 1;
    expect(visible).toBeGreaterThan(0);
    expect(differ).toBeGreaterThan(0);

    // Without noise in the rules, the same route shows the true counts.
    const plain = await testApp.app.inject({ method: 'POST', url: '/admin/rules', headers: as(), payload: { rules: {}, note: 'no noise' } });
    const plainVersion = plain.json().version as number;
    expect((await activate(plainVersion)).statusCode).toBe(200);
    const unnoised = await get();
    expect(unnoised).toEqual({ minCellSize, countNoise: null, ...truth });
    expect((await activate(version)).statusCode).toBe(200);
  }, 120_000);
});
