import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { assertValidResponse, hookNames, hookResponseSchema } from '../../src/hooks/cds-hooks.schema.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { chiefComplaintBundle, prefetchedRequest } from '../helpers/cds-hooks-examples.js';

type Json = Record<string, any>;

/** A request that is valid but for what the test changes: everything prefetched, no FHIR server. */
function baseRequest(hook: (typeof hookNames)[number]): Json {
  return prefetchedRequest(hook, { patient: { gender: 'male', birthDate: '1965-04-02' } });
}

describe('hostile input', () => {
  let testApp: TestApp;

  beforeAll(async () => {
    // Rate limiting has its own test; here thousands of requests must reach the hook.
    testApp = await buildTestApp({ rateLimitPerMinute: 0 });
  });

  afterAll(async () => {
    await testApp.close();
  });

  async function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
    return testApp.app.inject({ method: 'POST', url, payload: payload as string, headers });
  }

  it.each([
    ['malformed JSON', '{"hook": "patient-view",', { 'content-type': 'application/json' }, 400],
    ['wrong content type', 'hook=patient-view', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
    ['deeply nested JSON', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, { 'content-type': 'application/json' }, 400],
  ])('%s gets a 4xx', async (_name, body, headers, status) => {
    const response = await post('/cds-services/patient-view', body, headers);
    expect(response.statusCode).toBe(status);
    expect(response.json()).toHaveProperty('error');
  });

  it('refuses an oversize body with 413', async () => {
    const request = baseRequest('order-select');
    request.context.draftOrders.entry = Array.from({ length: 20000 }, (_, index) => ({
      resource: { resourceType: 'ServiceRequest', id: `sr-${index}`, status: 'draft', intent: 'order', code: { text: 'x'.repeat(40) } },
    }));
    const response = await post('/cds-services/order-select', request);
    expect(response.statusCode).toBe(413);
  });

  it.each([
    ['hookInstance not a uuid', (request: Json) => (request.hookInstance = 'not-a-uuid')],
    ['unknown hook', (request: Json) => (request.hook = 'chart-open')],
    ['context of the wrong type', (request: Json) => (request.context = 'patient')],
    ['patientId of the wrong type', (request: Json) => (request.context.patientId = 42)],
    ['prefetch of the wrong type', (request: Json) => (request.prefetch = [])],
  ])('%s gets a 400 naming what was wrong', async (_name, mutate) => {
    const request = baseRequest('patient-view');
    mutate(request);
    const response = await post('/cds-services/patient-view', request);
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toBe('invalid-request');
    expect(response.json().details.length).toBeGreaterThan(0);
  });

  /** Wrong types for a field of each kind: a string, a number, an array, an object or a Bundle. */
  const notAString = [42, true, null, [], {}];
  const notANumber = ['300', true, null, [], {}];
  const notAnArray = ['ServiceRequest/ex-sr-ct-1', 42, null, {}];
  const notAnObject = ['patient', 42, true, null, []];
  /** Every field of the request: its path, the hook it belongs to, and the wrong values it is sent. */
  const fields: Array<[path: string, hook: (typeof hookNames)[number], wrong: unknown[]]> = [
    ['hook', 'patient-view', notAString],
    ['hookInstance', 'patient-view', notAString],
    ['fhirServer', 'patient-view', notAString],
    ['fhirAuthorization', 'patient-view', notAnObject],
    ['fhirAuthorization.access_token', 'patient-view', notAString],
    ['fhirAuthorization.token_type', 'patient-view', notAString],
    ['fhirAuthorization.expires_in', 'patient-view', notANumber],
    ['fhirAuthorization.scope', 'patient-view', notAString],
    ['fhirAuthorization.subject', 'patient-view', notAString],
    ['fhirAuthorization.patient', 'patient-view', notAString],
    ['context', 'patient-view', notAnObject],
    ['context.userId', 'patient-view', notAString],
    ['context.patientId', 'patient-view', notAString],
    ['context.encounterId', 'encounter-start', notAString],
    ['context.selections', 'order-select', notAnArray],
    ['context.draftOrders', 'order-select', notAnObject],
    ['context.draftOrders', 'order-sign', notAnObject],
    ['prefetch', 'patient-view', ['patient', 42, true, null, []]],
  ];

  /** A valid request with every optional field present, so that each can be given a wrong type. */
  function requestWithEveryField(hook: (typeof hookNames)[number]): Json {
    const request = baseRequest(hook);
    // Off the FHIR server allowlist, but everything is prefetched: nothing is fetched and the request is valid.
    request.fhirServer = 'https://ehr.example.org/fhir/R4';
    request.fhirAuthorization = { access_token: 'opaque-test-token', token_type: 'Bearer', expires_in: 300, scope: 'user/Patient.read', subject: 'cohort-cds', patient: request.context.patientId };
    request.context.encounterId ??= 'ex-enc-ed-3306';
    return request;
  }

  function setField(request: Json, path: string, value: unknown): void {
    const keys = path.split('.');
    const parent = keys.slice(0, -1).reduce<Json>((object, key) => object[key] as Json, request);
    parent[keys.at(-1)!] = value;
  }

  it.each(hookNames)('takes %s with every optional field present (the control for the wrong types below)', async (hook) => {
    const response = await post(`/cds-services/${hook}`, requestWithEveryField(hook));
    expect(response.statusCode).toBe(200);
  });

  it.each(fields)('refuses a wrong type in %s (%s) with a 400 naming the field, and keeps serving', async (path, hook, wrongValues) => {
    for (const wrong of wrongValues) {
      const request = requestWithEveryField(hook);
      setField(request, path, wrong);
      const response = await post(`/cds-services/${hook}`, request);
      const body = response.json();
      expect({ wrong, status: response.statusCode, error: body.error }).toEqual({ wrong, status: 400, error: 'invalid-request' });
      expect(body.message).toEqual(expect.any(String));
      // The details point at the field (or inside it), e.g. /fhirAuthorization/expires_in.
      const pointer = `/${path.replaceAll('.', '/')}`;
      const paths = (body.details as { path: string; message: string }[]).map((detail) => detail.path);
      expect({ wrong, named: paths.some((detailPath) => detailPath === pointer || detailPath.startsWith(`${pointer}/`)) }).toEqual({ wrong, named: true });
      for (const detail of body.details as { message: unknown }[]) expect(detail.message).toEqual(expect.stringMatching(/\S/));
    }
    const after = await post(`/cds-services/${hook}`, requestWithEveryField(hook));
    expect(after.statusCode).toBe(200);
  });

  it.each([
    ['no birthDate', { gender: 'male' }],
    ['no gender', { birthDate: '1965-04-02' }],
    ['a birthDate in the future', { gender: 'female', birthDate: '2199-01-01' }],
    ['an age over 120', { gender: 'female', birthDate: '1850-01-01' }],
  ])('a Patient with %s still gets a valid answer', async (_name, fields) => {
    const request = baseRequest('patient-view');
    request.prefetch.patient = { resourceType: 'Patient', id: request.context.patientId, ...fields };
    request.prefetch.chiefComplaint = chiefComplaintBundle(request.context.patientId, 'abd pain');
    const response = await post('/cds-services/patient-view', request);
    expect(response.statusCode).toBe(200);
    assertValidResponse(response.json());
  });

  it('shows markup, injection strings and control characters from a complaint as text, never as markup', async () => {
    const request = baseRequest('patient-view');
    request.prefetch.chiefComplaint = chiefComplaintBundle(
      request.context.patientId,
      "abd pain, <img src=x onerror=alert(1)>, '; drop table cohort_encounter; --, [x](javascript:alert(1)), \u0000\u202e",
    );
    request.prefetch.conditions = {
      resourceType: 'Bundle',
      type: 'searchset',
      entry: [{ resource: { resourceType: 'Condition', subject: { reference: `Patient/${request.context.patientId}` }, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: "R10'; DELETE FROM feedback; --" }] } } }],
    };
    const response = await post('/cds-services/patient-view', request);
    expect(response.statusCode).toBe(200);
    const text = response.body;
    expect(text).not.toContain('<img');
    expect(text).not.toContain('](javascript');
    const count = await testApp.database.db.selectFrom('cohort_encounter').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(testApp.ingest.loaded.encounters);
  });

  const prefetchShapes: Record<string, (request: Json) => void> = {
    complete: (request) => {
      request.prefetch.chiefComplaint = chiefComplaintBundle(request.context.patientId, 'chest pain');
      request.prefetch.conditions = { resourceType: 'Bundle', type: 'searchset', entry: [] };
    },
    'a key missing (no FHIR server to fetch it from)': (request) => {
      request.prefetch.chiefComplaint = chiefComplaintBundle(request.context.patientId, 'chest pain');
      delete request.prefetch.conditions;
    },
    'a key null': (request) => {
      request.prefetch.chiefComplaint = chiefComplaintBundle(request.context.patientId, 'chest pain');
      request.prefetch.conditions = null;
    },
    'a key holding an OperationOutcome': (request) => {
      request.prefetch.chiefComplaint = chiefComplaintBundle(request.context.patientId, 'chest pain');
      request.prefetch.conditions = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden' }] };
    },
    'a paged search Bundle': (request) => {
      const bundle = chiefComplaintBundle(request.context.patientId, 'chest pain');
      bundle.link = [{ relation: 'next', url: 'https://ehr.example.org/fhir/Observation?page=2' }];
      bundle.total = 2;
      request.prefetch.chiefComplaint = bundle;
    },
  };

  for (const hook of hookNames) {
    it.each(Object.keys(prefetchShapes))(`${hook} with %s answers a response that passes the schema`, async (shape) => {
      const request = baseRequest(hook);
      prefetchShapes[shape]!(request);
      const response = await post(`/cds-services/${hook}`, request);
      expect(response.statusCode).toBe(200);
      const body = response.json();
      assertValidResponse(body);
      expect(hookResponseSchema.safeParse(body).success).toBe(true);
      // A 60-year-old man with chest pain has a cohort in the demo: every shape reaches the cards.
      expect(body.cards.length).toBeGreaterThan(0);
    });
  }

  it('survives thousands of generated requests: never a 5xx, every 200 a valid response', async () => {
    const text = fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('abd pain', 'Chest pain, Transfer', 'SOB', 'ABD PN', '', ' '), fc.string({ unit: 'binary', maxLength: 40 }));
    const anyJson = fc.jsonValue({ maxDepth: 3 });
    const patient = fc.record(
      {
        resourceType: fc.constantFrom('Patient', 'Patient', 'Observation', 'OperationOutcome'),
        id: fc.oneof(fc.constant('ex-pt-4821'), fc.string({ maxLength: 20 })),
        gender: fc.oneof(fc.constantFrom('male', 'female', 'other', 'unknown'), anyJson),
        birthDate: fc.oneof(fc.constantFrom('1965', '1965-04', '1965-04-02', '2199-01-01', '0001-01-01', 'yesterday'), anyJson),
      },
      { requiredKeys: ['resourceType'] },
    );
    const request = fc.record({
      hook: fc.constantFrom(...hookNames),
      complaint: text,
      codes: fc.array(fc.oneof(fc.constantFrom('R079', 'K57.30', 'I21.4', 'r10.84', '786.50', 'V08'), fc.string({ maxLength: 12 })), { maxLength: 6 }),
      patient,
      drafts: fc.array(fc.record({ resourceType: fc.constantFrom('ServiceRequest', 'MedicationRequest', 'Bogus'), code: fc.oneof(fc.record({ text }), anyJson) }), { maxLength: 5 }),
      noise: fc.dictionary(fc.constantFrom('hookInstance', 'fhirServer', 'context', 'prefetch', 'extra'), anyJson, { maxKeys: 1 }),
    });
    let okBodies = 0;
    await fc.assert(
      fc.asyncProperty(request, async (generated) => {
        const body = baseRequest(generated.hook);
        body.prefetch.patient = generated.patient;
        body.prefetch.chiefComplaint = chiefComplaintBundle(body.context.patientId, generated.complaint);
        body.prefetch.conditions = {
          resourceType: 'Bundle',
          type: 'searchset',
          entry: generated.codes.map((code) => ({ resource: { resourceType: 'Condition', subject: { reference: `Patient/${body.context.patientId}` }, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code }] } } })),
        };
        if ('draftOrders' in body.context) {
          body.context.draftOrders.entry = generated.drafts.map((draft) => ({ resource: { ...draft, status: 'draft', intent: 'order' } }));
        }
        Object.assign(body, generated.noise);
        const response = await post(`/cds-services/${generated.hook}`, body);
        expect(response.statusCode).toBeLessThan(500);
        if (response.statusCode === 200) {
          okBodies += 1;
          const parsed = response.json();
          assertValidResponse(parsed);
          expect(hookResponseSchema.safeParse(parsed).success).toBe(true);
        } else {
          expect(response.json()).toHaveProperty('error');
        }
      }),
      { numRuns: 2000 },
    );
    // The generator must reach the card path, not only the validator.
    expect(okBodies).toBeGreaterThan(200);
    const health = await testApp.app.inject({ method: 'GET', url: '/health/ready' });
    expect(health.statusCode).toBe(200);
  });
});
