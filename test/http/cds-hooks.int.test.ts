import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { conceptsForComplaint, defaultComplaintConcepts, normalizeComplaintPhrase, primaryConcept } from '../../src/cohort/complaint.js';
import { defaultRules } from '../../src/cohort/rules.js';
import { proportion } from '../../src/cohort/statistics.js';
import { assertValidResponse, hookNames, hookResponseSchema, type HookName } from '../../src/hooks/cds-hooks.schema.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { readMimic, yearsBetween } from '../helpers/mimic.js';

type Json = Record<string, any>;

const vocabulary = new Map<string, string>();
for (const [concept, [, ...phrases]] of Object.entries(defaultComplaintConcepts)) {
  for (const phrase of phrases) vocabulary.set(normalizeComplaintPhrase(phrase), concept);
}

/** The demo's ED visits as the test reads them from the raw NDJSON, independently of the ingest. */
interface RawVisit {
  readonly id: string;
  readonly sex: string;
  readonly age: number;
  readonly concepts: string[];
  readonly admitted: boolean;
  readonly labs: Set<string>;
  readonly orders: Set<string>;
}

/** Lab display → item codes, from the raw lab observations. */
function labCodesByDisplay(): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const lab of readMimic('MimicObservationLabeventsED.ndjson.gz')) {
    const coding = lab.code.coding[0];
    const display = (lab.code.text ?? coding.display) as string;
    map.set(display, (map.get(display) ?? new Set()).add(`lab:${coding.code}`));
  }
  return map;
}

function readRawVisits(): RawVisit[] {
  const patients = new Map(readMimic('MimicPatient.ndjson.gz').map((patient) => [patient.id as string, patient]));
  const complaints = new Map<string, string>();
  for (const observation of readMimic('MimicObservationED.ndjson.gz')) {
    if (observation.code.coding[0].code === '8661-1') complaints.set(observation.encounter.reference.split('/')[1], observation.valueString);
  }
  const labs = readMimic('MimicObservationLabeventsED.ndjson.gz');
  const orders = readMimic('MimicServiceRequestED.ndjson.gz');
  return readMimic('MimicEncounterED.ndjson.gz').map((encounter: Json) => {
    const patientId = encounter.subject.reference.split('/')[1];
    const patient = patients.get(patientId)!;
    const start = Date.parse(encounter.period.start);
    const end = Date.parse(encounter.period.end);
    // Labs belong to the ED stay whose period (from an hour before arrival) contains the draw.
    const own = labs.filter((lab) => {
      const time = Date.parse(lab.effectiveDateTime);
      return lab.subject.reference === `Patient/${patientId}` && time >= start - 3600_000 && time <= end;
    });
    return {
      id: encounter.id,
      sex: patient.gender,
      age: Math.min(90, yearsBetween(patient.birthDate, encounter.period.start)),
      concepts: conceptsForComplaint(complaints.get(encounter.id), vocabulary).concepts,
      admitted: encounter.hospitalization.dischargeDisposition.coding[0].code === 'ADMITTED' || encounter.partOf !== undefined,
      labs: new Set(own.map((lab) => `lab:${lab.code.coding[0].code}`)),
      orders: new Set(orders.filter((order) => order.encounter.reference === `Encounter/${encounter.id}`).map((order) => order.code.text)),
    };
  });
}

/** A hand-made request for a 64-year-old woman with abdominal pain, everything prefetched. */
function abdominalPainRequest(hook: HookName): Json {
  const request = prefetchedRequest(hook, { patient: { gender: 'female', birthDate: '1962-03-01' }, chiefComplaint: 'ABD PAIN, N/V' });
  if (hook === 'order-select' || hook === 'order-sign') {
    request.context.draftOrders = { resourceType: 'Bundle', type: 'collection', entry: [] };
    if (hook === 'order-select') request.context.selections = [];
  }
  return request;
}

describe('CDS Hooks on the MIMIC-IV ED demo', () => {
  let testApp: TestApp;
  let raw: RawVisit[];
  const labDisplays = labCodesByDisplay();

  beforeAll(async () => {
    testApp = await buildTestApp();
    raw = readRawVisits();
  });

  afterAll(async () => {
    await testApp.close();
  });

  it('lists the services of the registry', async () => {
    const response = await testApp.app.inject({ method: 'GET', url: '/cds-services' });
    expect(response.statusCode).toBe(200);
    expect(response.json().services.map((service: Json) => service.id).sort()).toEqual(['encounter-start', 'order-select', 'order-sign', 'patient-view']);
  });

  it.each(hookNames)('%s answers cards whose numbers match the raw data', async (hook) => {
    const response = await testApp.app.inject({ method: 'POST', url: `/cds-services/${hook}`, payload: abdominalPainRequest(hook) });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    assertValidResponse(body);
    // Written as built (serializeHookResponse), byte for byte what the schema-checked serialization gave.
    expect(response.body).toBe(JSON.stringify(hookResponseSchema.parse(body)));

    // The ladder, computed here: age ±10 with sex, then ±20, then without sex; the first of ≥ 11 visits wins.
    // Age at the call: the app's clock is 2026-11-23, so 64; the demo's shifted dates do not matter for ages.
    const age = 64;
    const rungs = [
      (visit: RawVisit) => visit.sex === 'female' && Math.abs(visit.age - age) <= defaultRules.ageWindowYears,
      (visit: RawVisit) => visit.sex === 'female' && Math.abs(visit.age - age) <= defaultRules.widenedAgeWindowYears,
      (visit: RawVisit) => Math.abs(visit.age - age) <= defaultRules.widenedAgeWindowYears,
    ].map((rung) => raw.filter((visit) => visit.concepts.includes('abdominal-pain') && rung(visit)));
    const cohort = rungs.find((visits) => visits.length >= defaultRules.minCohortSize);
    expect(primaryConcept(conceptsForComplaint('ABD PAIN, N/V', vocabulary).concepts)).toBe('abdominal-pain');
    expect(cohort).toBeDefined();
    const size = cohort!.length;

    expect(body.cards.length).toBeGreaterThanOrEqual(2);
    for (const card of body.cards) expect(card.source.label).toBe(`Cohort CDS · ${size} similar ED visits · rules v1`);

    const prognosis = body.cards.find((card) => card.summary.includes('admitted'))!;
    const admitted = proportion(cohort!.filter((visit) => visit.admitted).length, size);
    expect(prognosis.summary).toContain(`admitted ${Math.round(admitted.rate * 100)}% (95% CI ${Math.round(admitted.lower * 100)}–${Math.round(admitted.upper * 100)}%)`);

    // Every row of the workup table: its count recomputed from the raw labs and orders.
    const workup = body.cards.find((card) => card.summary.startsWith('Workup'))!;
    const panels = await testApp.database.db.selectFrom('lab_panel').selectAll().execute();
    const rows = [...(workup.detail as string).matchAll(/^\| (.+?) \| \d+% \((\d+) of (\d+)\) \|/gm)];
    expect(rows.length).toBeGreaterThan(0);
    for (const [, display, count, total] of rows) {
      const text = display!.replace(/\\(.)/g, '$1');
      const panel = panels.find((candidate) => candidate.display === text);
      const labCodes = panel ? panel.analyte_codes : [...(labDisplays.get(text) ?? [])];
      const expected = cohort!.filter((visit) => labCodes.some((code) => visit.labs.has(code)) || visit.orders.has(text)).length;
      expect({ item: text, count: Number(count), total: Number(total) }).toEqual({ item: text, count: expected, total: size });
    }
  });

  it('leaves out what is already drafted', async () => {
    const request = abdominalPainRequest('order-select');
    const first = (await testApp.app.inject({ method: 'POST', url: '/cds-services/order-select', payload: request })).json();
    const workup = first.cards.find((card: Json) => card.summary.startsWith('Workup'));
    const top = workup.suggestions[0].actions[0].resource;
    request.context.draftOrders.entry = [{ resource: { resourceType: 'ServiceRequest', id: 'drafted', status: 'draft', intent: 'order', subject: { reference: `Patient/${request.context.patientId}` }, code: top.code } }];
    request.context.selections = ['ServiceRequest/drafted'];
    const second = (await testApp.app.inject({ method: 'POST', url: '/cds-services/order-select', payload: request })).json();
    const labels = second.cards.find((card: Json) => card.summary.startsWith('Workup')).suggestions.map((suggestion: Json) => suggestion.label);
    expect(labels).not.toContain(workup.suggestions[0].label);
    expect(second.cards.find((card: Json) => card.summary.startsWith('Workup')).detail).toContain('Already ordered:');
  });

  it('stores feedback on issued cards and refuses cards it did not issue', async () => {
    const answer = (await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: abdominalPainRequest('patient-view') })).json();
    const card = answer.cards.find((candidate: Json) => candidate.suggestions);
    const feedback = {
      feedback: [
        { card: card.uuid, outcome: 'accepted', acceptedSuggestions: [{ id: card.suggestions[0].uuid }], outcomeTimestamp: '2026-11-23T12:01:00Z' },
        { card: card.uuid, outcome: 'overridden', overrideReason: { userComment: 'done elsewhere' }, outcomeTimestamp: '2026-11-23T12:02:00Z' },
      ],
    };
    const stored = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view/feedback', payload: feedback });
    expect(stored.statusCode).toBe(200);
    expect(stored.json()).toEqual({ received: 2 });
    const rows = await testApp.database.db.selectFrom('feedback').selectAll().where('card_uuid', '=', card.uuid).orderBy('feedback_id').execute();
    expect(rows.map((row) => row.outcome)).toEqual(['accepted', 'overridden']);
    expect(rows[0]!.accepted_suggestions).toEqual([{ id: card.suggestions[0].uuid }]);

    const unknown = await testApp.app.inject({
      method: 'POST',
      url: '/cds-services/patient-view/feedback',
      payload: { feedback: [{ card: '00000000-0000-4000-8000-000000000000', outcome: 'overridden', outcomeTimestamp: '2026-11-23T12:03:00Z' }] },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toBe('unknown-card');
    // The same card is not this service's when fed back to another service.
    const elsewhere = await testApp.app.inject({ method: 'POST', url: '/cds-services/order-sign/feedback', payload: feedback });
    expect(elsewhere.statusCode).toBe(404);
  });

  it('answers no card when nothing matches, and 4xx for bad input', async () => {
    const request = abdominalPainRequest('patient-view');
    request.prefetch.chiefComplaint.entry[0].resource.valueString = 'zygomatic whatsit';
    const none = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: request });
    expect(none.statusCode).toBe(200);
    expect(none.json()).toEqual({ cards: [] });

    const wrongHook = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: { ...request, hook: 'order-sign' } });
    expect(wrongHook.statusCode).toBe(400);
    const malformed = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', headers: { 'content-type': 'application/json' }, payload: '{"hook":' });
    expect(malformed.statusCode).toBe(400);
    const missingPatient = { ...request, prefetch: { ...request.prefetch, patient: null } };
    const unavailable = await testApp.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: missingPatient });
    expect(unavailable.statusCode).toBe(412);
    expect(unavailable.json().message).toContain('patient');
    const unknownService = await testApp.app.inject({ method: 'POST', url: '/cds-services/nope', payload: request });
    expect(unknownService.statusCode).toBe(404);
    const health = await testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(health.json()).toEqual({ status: 'ok', database: 'ok' });
  });
});
