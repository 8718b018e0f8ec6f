import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { forcedActivation } from '../helpers/rules.js';

type Json = Record<string, any>;

const abdominalPain = (hookInstance: string) =>
  prefetchedRequest('patient-view', { patient: { gender: 'female', birthDate: '1961-05-01' }, chiefComplaint: 'ABD PAIN, N/V', hookInstance });

const uuidOf = (index: number) => `5b0c2d1e-7a4f-4c3b-9e2d-${index.toString(16).padStart(12, '0')}`;

describe('activating rules that need aggregates split by start year', () => {
  let testApp: TestApp;
  let informaticist: { authorization: string };

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
    informaticist = { authorization: `Bearer ${(await createApiKey(testApp.database.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key}` };
  }, 180_000);

  afterAll(async () => {
    await testApp?.close();
  });

  const activeGeneration = async () =>
    (
      await sql<{ generation: number; by_start_year: boolean }>`
        select generation, by_start_year from cohort_aggregate_generation where status = 'active'`.execute(testApp.database.db)
    ).rows[0];

  it('rebuilds them in the background while the hooks keep answering, then answers from them', async () => {
    const { app } = testApp;
    const before = await activeGeneration();
    expect(before?.by_start_year).toBe(false);
    const reference = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPain(uuidOf(1)) });
    expect(reference.statusCode).toBe(200);

    // A look-back window longer than the demo's (shifted) span: the same encounters, so the same cards' numbers.
    const created = await app.inject({ method: 'POST', url: '/admin/rules', headers: informaticist, payload: { rules: { lookbackYears: 200 } } });
    expect(created.statusCode).toBe(201);
    const version = created.json().version as number;
    const activated = await app.inject({ method: 'POST', url: `/admin/rules/${version}/activate`, headers: informaticist, payload: forcedActivation });
    expect(activated.statusCode).toBe(200);
    expect(activated.json().aggregates).toBe('rebuilding');

    // Hooks during the rebuild: every one answered.
    const during = await Promise.all(
      Array.from({ length: 8 }, (_, index) => app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPain(uuidOf(10 + index)) })),
    );
    expect(during.map((response) => response.statusCode)).toEqual(Array.from({ length: 8 }, () => 200));

    const started = Date.now();
    let after = await activeGeneration();
    while (!after?.by_start_year && Date.now() - started < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = await activeGeneration();
    }
    expect(after?.by_start_year).toBe(true);
    expect(after!.generation).toBeGreaterThan(before!.generation);

    // Under the new rules the cards give the old numbers (the window holds every encounter of the demo) and name the
    // new version.
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPain(uuidOf(30)) });
    expect(response.statusCode).toBe(200);
    const cards = response.json().cards as Json[];
    const referenceCards = reference.json().cards as Json[];
    expect(cards.map((card) => card.summary)).toEqual(referenceCards.map((card) => card.summary));
    expect(cards.map((card) => card.source.label)).not.toEqual(referenceCards.map((card) => card.source.label));

    // Rules the current generation already fits need no rebuild.
    const again = await app.inject({ method: 'POST', url: '/admin/rules', headers: informaticist, payload: { rules: { lookbackYears: 150 } } });
    const second = await app.inject({ method: 'POST', url: `/admin/rules/${again.json().version}/activate`, headers: informaticist, payload: forcedActivation });
    expect(second.json().aggregates).toBe('current');
    expect((await activeGeneration())!.generation).toBe(after!.generation);
  }, 120_000);
});
