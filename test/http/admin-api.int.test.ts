import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { hashApiKey } from '../../src/auth/api-key.js';
import { buildCohortLadder } from '../../src/cohort/matching.js';
import { rulesSchema } from '../../src/cohort/rules.js';
import { createApiKey, revokeApiKey } from '../../src/db/api-key.repository.js';
import { assertValidResponse } from '../../src/hooks/cds-hooks.schema.js';
import { buildTestApp, testAppNow, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';

/** A woman in her sixties with abdominal pain, the demo's most frequent complaint. */
const chestPainRequest = (hookInstance: string) =>
  prefetchedRequest('patient-view', {
    patient: { gender: 'female', birthDate: '1961-05-01' },
    chiefComplaint: 'ABD PAIN, N/V',
    hookInstance,
  });

describe('admin API: API keys, roles, rules versions, audit', () => {
  let testApp: TestApp;
  let informaticistKey: string;
  let viewerKey: string;

  const as = (key: string | undefined) => (key === undefined ? {} : { authorization: `Bearer ${key}` });

  /** Starts a backtest of `version` over the API and waits for it to succeed; its run id. */
  async function backtest(version: number): Promise<string> {
    const started = await testApp.app.inject({
      method: 'POST',
      url: `/admin/rules/${version}/evaluate`,
      headers: as(informaticistKey),
      payload: { split: 'patient', bootstrapResamples: 20 },
    });
    expect(started.statusCode).toBe(202);
    const id = started.json().id as string;
    for (let attempt = 0; attempt < 1200; attempt += 1) {
      const run = (await testApp.app.inject({ method: 'GET', url: `/admin/evaluations/${id}`, headers: as(viewerKey) })).json();
      if (run.status === 'failed') throw new Error(`backtest ${id} failed: ${run.error}`);
      if (run.status === 'succeeded') return id;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`backtest ${id} did not finish`);
  }

  const activation = async (version: number) => (await testApp.app.inject({ method: 'GET', url: `/admin/rules/${version}`, headers: as(viewerKey) })).json().activation;

  beforeAll(async () => {
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
    const db = testApp.database.db;
    informaticistKey = (await createApiKey(db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    viewerKey = (await createApiKey(db, { name: 'vic', role: 'viewer', createdBy: 'test' })).key;
  });

  afterAll(async () => {
    await testApp.close();
  });

  it('refuses admin routes without a valid key, and a viewer any change', async () => {
    const { app } = testApp;
    const missing = await app.inject({ method: 'GET', url: '/admin/rules' });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    const wrong = await app.inject({ method: 'GET', url: '/admin/rules', headers: as(`ccds_${'x'.repeat(43)}`) });
    expect(wrong.statusCode).toBe(401);
    const viewerRead = await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) });
    expect(viewerRead.statusCode).toBe(200);
    const viewerWrite = await app.inject({ method: 'POST', url: '/admin/rules', headers: as(viewerKey), payload: { rules: {} } });
    expect(viewerWrite.statusCode).toBe(403);
    expect(viewerWrite.json().message).toMatch(/informaticist/);
    const whoami = await app.inject({ method: 'GET', url: '/admin/whoami', headers: as(viewerKey) });
    expect(whoami.json()).toEqual({ name: 'vic', role: 'viewer' });
  });

  it('stores only the hash of a key, and a revoked key stops working', async () => {
    const db = testApp.database.db;
    const { key } = await createApiKey(db, { name: 'temp', role: 'viewer', createdBy: 'test' });
    const dump = await sql<{ row: string }>`select row_to_json(api_key)::text as row from api_key`.execute(db);
    expect(dump.rows.map((row) => row.row).join('\n')).not.toContain(key);
    expect(dump.rows.some((row) => row.row.includes(hashApiKey(key)))).toBe(true);
    expect((await testApp.app.inject({ method: 'GET', url: '/admin/whoami', headers: as(key) })).statusCode).toBe(200);
    expect(await revokeApiKey(db, 'temp', 'test')).toBe(true);
    expect((await testApp.app.inject({ method: 'GET', url: '/admin/whoami', headers: as(key) })).statusCode).toBe(401);
  });

  it('validates rules field by field, and refuses unknown fields', async () => {
    const { app } = testApp;
    const invalid = await app.inject({
      method: 'POST',
      url: '/admin/rules/validate',
      headers: as(viewerKey),
      payload: { rules: { minItemShare: 2, ageWindowYears: 30, widenedAgeWindowYears: 10, minCohortSie: 5 } },
    });
    expect(invalid.statusCode).toBe(200);
    const body = invalid.json();
    expect(body.valid).toBe(false);
    expect(body.issues.map((issue: { path: string }) => issue.path)).toEqual(expect.arrayContaining(['minItemShare']));
    const typo = await app.inject({ method: 'POST', url: '/admin/rules/validate', headers: as(viewerKey), payload: { rules: { minCohortSie: 5 } } });
    expect(typo.json().issues).toEqual([{ path: 'minCohortSie', message: 'is not a rules field' }]);
    const saved = await app.inject({ method: 'POST', url: '/admin/rules', headers: as(informaticistKey), payload: { rules: { minItemShare: 2 } } });
    expect(saved.statusCode).toBe(400);
    expect(saved.json().details[0].path).toBe('minItemShare');
  });

  it('walks a version from draft through a backtest to active and back, with each step in the audit trail', async () => {
    const { app } = testApp;
    const before = await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) });
    const activeBefore = before.json().active as number;
    const current = before.json().versions.find((version: { version: number }) => version.version === activeBefore);

    const created = await app.inject({
      method: 'POST',
      url: '/admin/rules',
      headers: as(informaticistKey),
      payload: { rules: { ...current.effectiveRules, maxItemsPerCard: 3 }, note: 'three items a card', basedOn: activeBefore },
    });
    expect(created.statusCode).toBe(201);
    const draft = created.json();
    expect(draft).toMatchObject({ status: 'draft', createdBy: 'ada', note: 'three items a card' });
    expect(created.headers.location).toBe(`/admin/rules/${draft.version}`);

    const edited = await app.inject({
      method: 'PUT',
      url: `/admin/rules/${draft.version}`,
      headers: as(informaticistKey),
      payload: { rules: { ...current.effectiveRules, maxItemsPerCard: 2 }, note: 'two items a card' },
    });
    expect(edited.statusCode).toBe(200);
    expect(edited.json().effectiveRules.maxItemsPerCard).toBe(2);

    // No backtest yet: activation is refused, and the version says why.
    expect(await activation(draft.version)).toEqual({ kind: 'not-backtested', allowed: false, reason: `Draft v${draft.version} has no completed backtest yet`, backtestRunId: null });
    const untested = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey) });
    expect(untested.statusCode).toBe(409);
    expect(untested.json()).toMatchObject({ error: 'not-backtested', message: expect.stringContaining('has no completed backtest') });
    // A forced activation needs a reason; a viewer cannot force.
    const noReason = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey), payload: { force: true, reason: 'because' } });
    expect(noReason.statusCode).toBe(400);
    expect(JSON.stringify(noReason.json())).toContain('reason');
    const byViewer = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(viewerKey), payload: { force: true, reason: 'the committee said so' } });
    expect(byViewer.statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json().active).toBe(activeBefore);

    // A backtest, then an edit: the backtest measured other rules, so it no longer counts.
    const outdated = await backtest(draft.version);
    expect((await activation(draft.version)).allowed).toBe(true);
    await app.inject({
      method: 'PUT',
      url: `/admin/rules/${draft.version}`,
      headers: as(informaticistKey),
      payload: { rules: { ...current.effectiveRules, maxItemsPerCard: 2 }, note: 'two items a card, noted again' },
    });
    expect(await activation(draft.version)).toEqual({
      kind: 'not-backtested',
      allowed: false,
      reason: `Draft v${draft.version} was changed after its backtest #${outdated}: backtest it again`,
      backtestRunId: outdated,
    });
    expect((await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey) })).statusCode).toBe(409);

    const backtested = await backtest(draft.version);
    expect(await activation(draft.version)).toEqual({ kind: 'backtested', allowed: true, reason: `Backtested (run #${backtested})`, backtestRunId: backtested });
    const activated = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey) });
    expect(activated.json()).toEqual({ active: draft.version, previous: activeBefore, forced: false, backtestRunId: backtested, aggregates: 'current' });

    // The hooks answer under the new version at once (caches dropped), and name it in the card source.
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: chestPainRequest('0e4d5e3a-2e38-4f8e-9f3a-7c1c2b7a0001') });
    expect(response.statusCode).toBe(200);
    const cards = response.json().cards as Array<{ source: { label: string }; suggestions?: unknown[] }>;
    expect(cards.length).toBeGreaterThan(0);
    assertValidResponse(response.json());
    for (const card of cards) {
      expect(card.source.label).toContain(`rules v${draft.version}`);
      expect((card.suggestions ?? []).length).toBeLessThanOrEqual(2);
    }

    // Active versions are immutable; activating twice is a conflict.
    const editActive = await app.inject({ method: 'PUT', url: `/admin/rules/${draft.version}`, headers: as(informaticistKey), payload: { rules: {} } });
    expect(editActive.statusCode).toBe(409);
    expect((await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey) })).statusCode).toBe(409);
    expect((await app.inject({ method: 'POST', url: '/admin/rules/9999/activate', headers: as(informaticistKey) })).statusCode).toBe(404);

    // Roll back: the earlier version was active before, so no new backtest is asked for.
    expect(await activation(activeBefore)).toMatchObject({ kind: 'rollback', allowed: true });
    const rolledBack = await app.inject({ method: 'POST', url: `/admin/rules/${activeBefore}/activate`, headers: as(informaticistKey) });
    expect(rolledBack.json()).toEqual({ active: activeBefore, previous: draft.version, forced: false, backtestRunId: null, aggregates: 'current' });
    const after = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: chestPainRequest('0e4d5e3a-2e38-4f8e-9f3a-7c1c2b7a0002') });
    for (const card of after.json().cards as Array<{ source: { label: string } }>) expect(card.source.label).toContain(`rules v${activeBefore}`);

    const audit = await app.inject({ method: 'GET', url: '/admin/audit?limit=20', headers: as(viewerKey) });
    const events = (audit.json().events as Array<{ actor: string; action: string; target: string; details: Record<string, unknown> }>).filter(
      (event) => event.target === `rules/${draft.version}` || event.target === `rules/${activeBefore}`,
    );
    expect(events.map((event) => `${event.actor} ${event.action} ${event.target}`)).toEqual([
      `ada rules.rollback rules/${activeBefore}`,
      `ada rules.activate rules/${draft.version}`,
      `ada rules.evaluate rules/${draft.version}`,
      `ada rules.update-draft rules/${draft.version}`,
      `ada rules.evaluate rules/${draft.version}`,
      `ada rules.update-draft rules/${draft.version}`,
      `ada rules.create-draft rules/${draft.version}`,
    ]);
    expect(events[1]?.details).toEqual({ previous: activeBefore, backtest: backtested });
    expect(events[0]?.details).toEqual({ previous: draft.version, wasActiveBefore: true });
  });

  it('activates a draft without a backtest only when forced with a reason, and records it', async () => {
    const { app } = testApp;
    const before = (await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json();
    const activeBefore = before.active as number;
    const rules = before.versions.find((version: { version: number }) => version.version === activeBefore).effectiveRules;
    const draft = (await app.inject({ method: 'POST', url: '/admin/rules', headers: as(informaticistKey), payload: { rules: { ...rules, maxItemsPerCard: 4 } } })).json();
    const reason = 'Committee approved on 2026-11-20 pending the backtest of the new site';
    const forced = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey), payload: { force: true, reason } });
    expect(forced.statusCode).toBe(200);
    expect(forced.json()).toEqual({ active: draft.version, previous: activeBefore, forced: true, backtestRunId: null, aggregates: 'current' });
    const event = (await app.inject({ method: 'GET', url: '/admin/audit?action=rules.force-activate', headers: as(viewerKey) })).json().events[0];
    expect(event).toMatchObject({
      actor: 'ada',
      target: `rules/${draft.version}`,
      details: { previous: activeBefore, wasActiveBefore: false, reason, skipped: `Draft v${draft.version} has no completed backtest yet` },
    });
    // Back, and forward again: a version that was active before needs no backtest either way.
    expect((await app.inject({ method: 'POST', url: `/admin/rules/${activeBefore}/activate`, headers: as(informaticistKey) })).statusCode).toBe(200);
    const again = await app.inject({ method: 'POST', url: `/admin/rules/${draft.version}/activate`, headers: as(informaticistKey) });
    expect(again.json()).toEqual({ active: draft.version, previous: activeBefore, forced: false, backtestRunId: null, aggregates: 'current' });
    expect((await app.inject({ method: 'POST', url: `/admin/rules/${activeBefore}/activate`, headers: as(informaticistKey) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json().active).toBe(activeBefore);
  });

  it('logs every hook call with its rules version and cohort, and nothing about the patient', async () => {
    const { app, database } = testApp;
    const hookInstance = '0e4d5e3a-2e38-4f8e-9f3a-7c1c2b7a0003';
    const request = chestPainRequest(hookInstance);
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request });
    expect(response.statusCode).toBe(200);
    await app.hookCallLog.flush();
    const rows = await database.db.selectFrom('hook_call').selectAll().orderBy('hook_call_id', 'desc').limit(1).execute();
    const row = rows[0];
    expect(row).toMatchObject({ service_id: 'patient-view', hook: 'patient-view', cards: response.json().cards.length });
    expect(row?.cohort_size).toBeGreaterThanOrEqual(11);
    // The version that answered (named on every card) and the relaxation its cohort needed, as a preview of the
    // same request under that version finds them.
    const active = (await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json().active as number;
    expect(row?.rules_version).toBe(active);
    for (const card of response.json().cards as Array<{ source: { label: string } }>) expect(card.source.label).toContain(`rules v${active}`);
    const preview = (
      await app.inject({ method: 'POST', url: `/admin/rules/${active}/preview`, headers: as(viewerKey), payload: { serviceId: 'patient-view', request: chestPainRequest(hookInstance) } })
    ).json();
    expect(preview.relaxation.length).toBeGreaterThan(0);
    expect(row?.relaxation).toEqual(preview.relaxation);
    expect(row?.cohort_size).toBe(preview.cohortSize);
    expect(row?.latency_ms).toBeGreaterThan(0);
    const everything = JSON.stringify(rows);
    expect(everything).not.toContain(request.context.patientId as string);
    expect(everything).not.toContain(hookInstance);
    const summary = await app.inject({ method: 'GET', url: '/admin/hook-calls?sinceHours=24', headers: as(viewerKey) });
    expect(summary.statusCode).toBe(200);
    const services = summary.json().services as Array<{ serviceId: string; calls: number; withCards: number; medianLatencyMs: number }>;
    const patientView = services.filter((service) => service.serviceId === 'patient-view');
    expect(patientView.reduce((sum, service) => sum + service.calls, 0)).toBeGreaterThanOrEqual(1);
    expect(patientView[0]?.medianLatencyMs).toBeGreaterThan(0);
  });

  it('previews a version on facts typed by hand and on a CDS Hooks request, recording nothing', async () => {
    const { app, database } = testApp;
    const active = (await app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json().active as number;
    const issuedBefore = await database.db.selectFrom('issued_card').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    const byFacts = await app.inject({
      method: 'POST',
      url: `/admin/rules/${active}/preview`,
      headers: as(viewerKey),
      payload: { facts: { ageYears: 65, sex: 'female', chiefComplaint: 'abdominal pain', icd10Codes: ['I10'] } },
    });
    expect(byFacts.statusCode).toBe(200);
    const preview = byFacts.json();
    expect(preview.rulesVersion).toBe(active);
    expect(preview.facts.complaintConcepts[0]).toBe('abdominal-pain');
    expect({ size: preview.cohortSize, tried: preview.sizesTried, reason: preview.noCohortReason }).toEqual({ size: expect.any(Number), tried: expect.any(Array), reason: null });
    expect(preview.cohortSize).toBeGreaterThanOrEqual(11);
    expect(preview.cards.length).toBeGreaterThan(0);
    assertValidResponse({ cards: preview.cards });
    // The relaxation is the ladder's rung where the cohort first reached the minimum size: worked out here from
    // the version’s rules and the sizes tried.
    const rules = rulesSchema.parse((await app.inject({ method: 'GET', url: `/admin/rules/${active}`, headers: as(viewerKey) })).json().rules);
    const ladder = buildCohortLadder({ ...preview.facts, chiefComplaintText: 'abdominal pain', draftOrders: [] }, rules);
    expect(preview.sizesTried.slice(0, -1).every((size: number) => size < rules.minCohortSize)).toBe(true);
    expect(preview.relaxation).toEqual(ladder[preview.sizesTried.length - 1]?.relaxation);
    expect(preview.relaxation).toContain('ignore-icd10');

    const byRequest = await app.inject({
      method: 'POST',
      url: `/admin/rules/${active}/preview`,
      headers: as(viewerKey),
      payload: { serviceId: 'patient-view', request: chestPainRequest('0e4d5e3a-2e38-4f8e-9f3a-7c1c2b7a0004') },
    });
    expect(byRequest.statusCode).toBe(200);
    expect(byRequest.json().cohortSize).toBeGreaterThanOrEqual(11);
    const issuedAfter = await database.db.selectFrom('issued_card').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(issuedAfter.n).toBe(issuedBefore.n);

    const badCode = await app.inject({ method: 'POST', url: `/admin/rules/${active}/preview`, headers: as(viewerKey), payload: { facts: { icd10Codes: ["1'; drop table x"] } } });
    expect(badCode.statusCode).toBe(400);
    const badService = await app.inject({ method: 'POST', url: `/admin/rules/${active}/preview`, headers: as(viewerKey), payload: { serviceId: 'nope', request: {} } });
    expect(badService.statusCode).toBe(404);
  });

  it('puts a signed, expiring explanation link on every card', async () => {
    const { app } = testApp;
    const response = await app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: chestPainRequest('0e4d5e3a-2e38-4f8e-9f3a-7c1c2b7a0005') });
    const cards = response.json().cards as Array<{ links?: Array<{ url: string; type: string }> }>;
    expect(cards.length).toBeGreaterThan(0);
    for (const card of cards) {
      const link = card.links?.[0];
      expect(link?.type).toBe('absolute');
      const token = new URL(link?.url ?? '').pathname.replace('/explain/', '');
      // The app's clock is fixed (testAppNow): verify against it, not against the wall clock.
      const verified = app.explanationLinks.codec.verify(token, testAppNow);
      expect(verified.ok).toBe(true);
      expect(JSON.stringify(verified)).not.toContain('PATIENT');
      const tampered = token.replace(/^./, (first) => (first === 'e' ? 'f' : 'e'));
      expect(app.explanationLinks.codec.verify(tampered, testAppNow).ok).toBe(false);
      expect(app.explanationLinks.codec.verify(token, new Date(testAppNow.getTime() + 366 * 24 * 3600_000))).toEqual({ ok: false, reason: 'expired' });
    }
  });

  it('maps an unmapped complaint phrase to a concept, and the cohort follows at once', async () => {
    const { app, database } = testApp;
    const unmapped = await app.inject({ method: 'GET', url: '/admin/complaints/unmapped?limit=100', headers: as(viewerKey) });
    expect(unmapped.statusCode).toBe(200);
    const list = unmapped.json().unmapped as Array<{ phrase: string; encounters: number; unmatchedEncounters: number }>;
    const target = list.find((entry) => entry.unmatchedEncounters > 0);
    expect(target).toBeDefined();
    if (!target) return;
    const concepts = (await app.inject({ method: 'GET', url: '/admin/complaints', headers: as(viewerKey) })).json().concepts as Array<{ concept: string }>;
    const concept = concepts[0]?.concept as string;
    const refused = await app.inject({ method: 'POST', url: '/admin/complaints/synonyms', headers: as(viewerKey), payload: { phrase: target.phrase, concept } });
    expect(refused.statusCode).toBe(403);
    const mapped = await app.inject({ method: 'POST', url: '/admin/complaints/synonyms', headers: as(informaticistKey), payload: { phrase: target.phrase, concept } });
    expect(mapped.statusCode).toBe(201);
    expect(mapped.json().remapped.encounters).toBeGreaterThanOrEqual(target.unmatchedEncounters);
    const again = (await app.inject({ method: 'GET', url: '/admin/complaints/unmapped?limit=500', headers: as(viewerKey) })).json().unmapped as Array<{ phrase: string }>;
    expect(again.map((entry) => entry.phrase)).not.toContain(target.phrase);
    const withConcept = await database.db
      .selectFrom('cohort_encounter')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where(sql<boolean>`${concept} = any(complaint_concepts)`)
      .executeTakeFirstOrThrow();
    expect(Number(withConcept.n)).toBeGreaterThanOrEqual(target.unmatchedEncounters);
    const audit = (await app.inject({ method: 'GET', url: '/admin/audit?action=complaint.map', headers: as(viewerKey) })).json().events;
    expect(audit[0]).toMatchObject({ actor: 'ada', action: 'complaint.map', target: target.phrase });
  });

  it('summarizes the cohort with small cells suppressed, and searches ICD-10 codes', async () => {
    const { app } = testApp;
    const summary = (await app.inject({ method: 'GET', url: '/admin/cohort/summary', headers: as(viewerKey) })).json();
    expect(summary.total).toBe(testApp.ingest.loaded.encounters);
    const cells = summary.cells as Array<{ encounters: number | null }>;
    expect(cells.some((cell) => cell.encounters === null)).toBe(true);
    for (const cell of cells) if (cell.encounters !== null) expect(cell.encounters).toBeGreaterThanOrEqual(summary.minCellSize);
    const codes = (await app.inject({ method: 'GET', url: '/admin/icd10?q=R07', headers: as(viewerKey) })).json().codes as Array<{ code: string }>;
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) expect(code.code.startsWith('R07')).toBe(true);
  });

  it('slows down a client that keeps presenting bad keys', async () => {
    const { app } = testApp;
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 25; attempt += 1) {
      const response = await app.inject({ method: 'GET', url: '/admin/whoami', headers: as(`ccds_${String(attempt).padEnd(43, 'y')}`), remoteAddress: '10.9.8.7' });
      statuses.push(response.statusCode);
    }
    expect(statuses.slice(0, 20).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(20).every((status) => status === 429)).toBe(true);
    // Another address is not held back, and even a good key waits out the window from the throttled address.
    expect((await app.inject({ method: 'GET', url: '/admin/whoami', headers: as(viewerKey), remoteAddress: '10.9.8.6' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin/whoami', headers: as(viewerKey), remoteAddress: '10.9.8.7' })).statusCode).toBe(429);
  });
});
