import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createApiKey } from '../../src/db/api-key.repository.js';
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

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
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
    expect((await testApp.app.inject({ method: 'POST', url: `/admin/rules/${version}/activate`, headers: as() })).statusCode).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await testApp?.close();
  });

  it('shows noisy, reproducible counts on every demo visit, consistent with their own percentages', async () => {
    const visits = await testApp.database.db
      .selectFrom('cohort_encounter')
      .select(['age_years', 'sex', 'chief_complaint_text', 'icd10_codes'])
      .where('chief_complaint_text', 'is not', null)
      .orderBy('encounter_key')
      .execute();
    let withCards = 0;
    let noisy = 0;
    for (const visit of visits) {
      const body = { facts: { ageYears: visit.age_years, sex: visit.sex, chiefComplaint: visit.chief_complaint_text, icd10Codes: visit.icd10_codes } };
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
    const visits = await testApp.database.db
      .selectFrom('cohort_encounter')
      .select(['age_years', 'sex', 'chief_complaint_text', 'icd10_codes'])
      .where('chief_complaint_text', 'is not', null)
      .orderBy('encounter_key')
      .execute();
    let compared = 0;
    let differFromTruth = 0;
    for (const visit of visits) {
      if (compared >= 25) break;
      const body = { facts: { ageYears: visit.age_years, sex: visit.sex, chiefComplaint: visit.chief_complaint_text, icd10Codes: visit.icd10_codes } };
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
});
