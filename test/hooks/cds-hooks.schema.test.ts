import { describe, expect, it } from '@jest/globals';
import {
  assertValidResponse,
  feedbackRequestSchema,
  findEmptyFields,
  hookNames,
  hookRequestSchema,
  hookRequestSchemas,
  hookResponseSchema,
} from '../../src/hooks/cds-hooks.schema.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';

const cardUuid = '4e0a3a1e-3283-4575-ab82-028d55fe2719';
const suggestionUuid = 'e56e1945-20b3-4393-8503-a1a20fd73152';

function validCard(): Record<string, unknown> {
  return {
    uuid: cardUuid,
    summary: 'Similar ED visits: 62% had a CT abdomen/pelvis',
    detail: '**42** similar visits.',
    indicator: 'info',
    source: { label: 'Cohort CDS', url: 'https://cds.example.org/about', topic: { system: 'https://cds.example.org/topics', code: 'workup', display: 'Workup' } },
    suggestions: [
      {
        label: 'Order lipase',
        uuid: suggestionUuid,
        isRecommended: false,
        actions: [{ type: 'create', description: 'Order lipase', resource: { resourceType: 'ServiceRequest', status: 'draft', intent: 'proposal' } }],
      },
    ],
    selectionBehavior: 'any',
    overrideReasons: [{ system: 'https://cds.example.org/override', code: 'not-relevant', display: 'Not relevant to this visit' }],
    links: [{ label: 'Cohort details', url: 'https://cds.example.org/cohorts/1', type: 'absolute' }],
  };
}

describe('hook request schemas', () => {
  it.each(hookNames)('accept the %s example', (hook) => {
    const example = readExampleRequest(hook);
    expect(hookRequestSchemas[hook].safeParse(example).success).toBe(true);
    expect(hookRequestSchema.parse(example).hook).toBe(hook);
  });

  it('rejects a hookInstance that is not a UUID', () => {
    const request = { ...readExampleRequest('patient-view'), hookInstance: 'not-a-uuid' };
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });

  it('requires fhirServer when fhirAuthorization is given (cds-r-1)', () => {
    const { fhirServer: _fhirServer, ...request } = readExampleRequest('patient-view');
    const result = hookRequestSchemas['patient-view'].safeParse(request);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['fhirServer']);
  });

  it('accepts a lower-case token type and reports it as Bearer', () => {
    const request = readExampleRequest('patient-view');
    (request['fhirAuthorization'] as Record<string, unknown>)['token_type'] = 'bearer';
    expect(hookRequestSchemas['patient-view'].parse(request).fhirAuthorization?.token_type).toBe('Bearer');
  });

  it('rejects a token type other than Bearer', () => {
    const request = readExampleRequest('patient-view');
    (request['fhirAuthorization'] as Record<string, unknown>)['token_type'] = 'MAC';
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });

  it('requires encounterId for encounter-start but not for patient-view', () => {
    const request = readExampleRequest('encounter-start');
    delete (request['context'] as Record<string, unknown>)['encounterId'];
    expect(hookRequestSchemas['encounter-start'].safeParse(request).success).toBe(false);
    expect(hookRequestSchemas['patient-view'].safeParse(readExampleRequest('patient-view')).success).toBe(true);
  });

  it('requires selections and draftOrders for order-select', () => {
    const withoutSelections = readExampleRequest('order-select');
    delete (withoutSelections['context'] as Record<string, unknown>)['selections'];
    expect(hookRequestSchemas['order-select'].safeParse(withoutSelections).success).toBe(false);
    const withoutDrafts = readExampleRequest('order-sign');
    delete (withoutDrafts['context'] as Record<string, unknown>)['draftOrders'];
    expect(hookRequestSchemas['order-sign'].safeParse(withoutDrafts).success).toBe(false);
  });

  it('bounds draftOrders to 500 entries', () => {
    const request = readExampleRequest('order-sign');
    const entry = { resource: { resourceType: 'ServiceRequest', status: 'draft' } };
    (request['context'] as { draftOrders: { entry: unknown[] } }).draftOrders.entry = Array.from({ length: 501 }, () => entry);
    expect(hookRequestSchemas['order-sign'].safeParse(request).success).toBe(false);
  });

  it.each(['..', '.', 'a/b', 'a?b', ''])('rejects the patientId %j', (patientId) => {
    const request = readExampleRequest('patient-view');
    (request['context'] as Record<string, unknown>)['patientId'] = patientId;
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });

  it('rejects a userId that is not ResourceType/id', () => {
    const request = readExampleRequest('patient-view');
    (request['context'] as Record<string, unknown>)['userId'] = 'dr-smith';
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });

  it('keeps null prefetch values and drops unknown context fields', () => {
    const request = readExampleRequest('patient-view');
    (request['context'] as Record<string, unknown>)['somethingNew'] = 'x';
    const parsed = hookRequestSchemas['patient-view'].parse(request);
    expect(parsed.prefetch?.['acuity']).toBeNull();
    expect(parsed.context).not.toHaveProperty('somethingNew');
  });

  it('rejects a prefetch value that is not a FHIR resource', () => {
    const request = readExampleRequest('patient-view');
    (request['prefetch'] as Record<string, unknown>)['patient'] = { gender: 'female' };
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });

  it('rejects a fhirServer that is not http(s)', () => {
    const request = { ...readExampleRequest('patient-view'), fhirServer: 'file:///etc/passwd' };
    expect(hookRequestSchemas['patient-view'].safeParse(request).success).toBe(false);
  });
});

describe('hook response schema', () => {
  it('accepts a full card and an empty card list', () => {
    expect(() => assertValidResponse({ cards: [validCard()] })).not.toThrow();
    expect(() => assertValidResponse({ cards: [] })).not.toThrow();
  });

  it('accepts system actions without a description', () => {
    const response = { cards: [], systemActions: [{ type: 'update', resource: { resourceType: 'ServiceRequest', id: 'sr-1', status: 'draft' } }] };
    expect(() => assertValidResponse(response)).not.toThrow();
  });

  it('rejects a summary of 140 characters', () => {
    expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), summary: 'x'.repeat(140) }] }).success).toBe(false);
    expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), summary: 'x'.repeat(139) }] }).success).toBe(true);
  });

  it('requires selectionBehavior when suggestions are present', () => {
    const { selectionBehavior: _selectionBehavior, ...card } = validCard();
    expect(() => assertValidResponse({ cards: [card] })).toThrow(/selectionBehavior/);
  });

  it('rejects fields the spec does not define', () => {
    expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), severity: 'high' }] }).success).toBe(false);
  });

  it('rejects appContext on an absolute link, and takes it on a smart link', () => {
    const card = { ...validCard(), links: [{ label: 'x', url: 'https://example.org', type: 'absolute', appContext: '{}' }] };
    expect(hookResponseSchema.safeParse({ cards: [card] }).success).toBe(false);
    const smart = { ...validCard(), links: [{ label: 'x', url: 'https://example.org/launch', type: 'smart', appContext: '{"cohort":1}' }] };
    expect(hookResponseSchema.safeParse({ cards: [smart] }).success).toBe(true);
  });

  it('accepts the indicators info, warning and critical only', () => {
    for (const indicator of ['info', 'warning', 'critical']) expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), indicator }] }).success).toBe(true);
    // hard-stop was the 1.0 draft's name for critical.
    for (const indicator of ['hard-stop', 'success', 'INFO']) expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), indicator }] }).success).toBe(false);
  });

  it('requires a source label, and a uuid on every card and suggestion (feedback names them by it)', () => {
    expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), source: { url: 'https://cds.example.org/about' } }] }).success).toBe(false);
    const { uuid: _uuid, ...withoutUuid } = validCard();
    expect(hookResponseSchema.safeParse({ cards: [withoutUuid] }).success).toBe(false);
    const suggestion = { label: 'Order lipase', actions: [{ type: 'create', description: 'x', resource: { resourceType: 'ServiceRequest' } }] };
    expect(hookResponseSchema.safeParse({ cards: [{ ...validCard(), suggestions: [suggestion] }] }).success).toBe(false);
  });

  it('requires a resource for create and update and a resourceId for delete', () => {
    const withAction = (action: Record<string, unknown>) => ({ cards: [{ ...validCard(), suggestions: [{ label: 'x', uuid: suggestionUuid, actions: [action] }] }] });
    expect(hookResponseSchema.safeParse(withAction({ type: 'create', description: 'x' })).success).toBe(false);
    expect(hookResponseSchema.safeParse(withAction({ type: 'update', description: 'x' })).success).toBe(false);
    expect(hookResponseSchema.safeParse(withAction({ type: 'update', description: 'x', resource: { resourceType: 'ServiceRequest', id: 'sr-1' } })).success).toBe(true);
    expect(hookResponseSchema.safeParse(withAction({ type: 'delete', description: 'x' })).success).toBe(false);
    expect(hookResponseSchema.safeParse(withAction({ type: 'delete', description: 'x', resourceId: 'ServiceRequest/1' })).success).toBe(true);
  });

  it('requires a display on override reasons', () => {
    const card = { ...validCard(), overrideReasons: [{ system: 'https://cds.example.org/override', code: 'x' }] };
    expect(hookResponseSchema.safeParse({ cards: [card] }).success).toBe(false);
  });

  it.each([
    ['an empty detail', { detail: '' }],
    ['an empty links array', { links: [] }],
    ['a null detail', { detail: null }],
  ])('rejects %s', (_name, change) => {
    expect(() => assertValidResponse({ cards: [{ ...validCard(), ...change }] })).toThrow();
  });
});

describe('findEmptyFields', () => {
  it('names every null, "", [] and {} by path, except the top-level empty cards', () => {
    const response = { cards: [{ a: null, b: '', c: [], d: {}, e: { f: [1, ''] }, g: 0, h: false, i: undefined }] };
    expect(findEmptyFields(response)).toEqual(['$.cards[0].a', '$.cards[0].b', '$.cards[0].c', '$.cards[0].d', '$.cards[0].e.f[1]']);
    expect(findEmptyFields({ cards: [] })).toEqual([]);
    expect(findEmptyFields({ cards: [], systemActions: [] })).toEqual(['$.systemActions']);
  });
});

describe('feedback schema', () => {
  it('accepts accepted and overridden feedback', () => {
    const body = {
      feedback: [
        { card: cardUuid, outcome: 'accepted', acceptedSuggestions: [{ id: suggestionUuid }], outcomeTimestamp: '2021-12-11T10:05:31Z' },
        {
          card: cardUuid,
          outcome: 'overridden',
          overrideReason: { reason: { code: 'd7ecf885', system: 'https://example.com/override' }, userComment: 'Already ordered.' },
          outcomeTimestamp: '1985-04-12T23:20:50.52Z',
        },
        { card: cardUuid, outcome: 'overridden', outcomeTimestamp: '2020-12-11T00:00:00+01:00' },
      ],
    };
    expect(feedbackRequestSchema.parse(body).feedback).toHaveLength(3);
  });

  it('requires acceptedSuggestions for an accepted outcome', () => {
    const body = { feedback: [{ card: cardUuid, outcome: 'accepted', outcomeTimestamp: '2021-12-11T10:05:31Z' }] };
    expect(feedbackRequestSchema.safeParse(body).success).toBe(false);
  });

  it.each([
    ['an unknown outcome', { outcome: 'ignored' }],
    ['a timestamp without a time', { outcomeTimestamp: '2021-12-11' }],
    ['a card that is not a uuid', { card: 'card-1' }],
  ])('rejects %s', (_name, change) => {
    const body = { feedback: [{ card: cardUuid, outcome: 'overridden', outcomeTimestamp: '2021-12-11T10:05:31Z', ...change }] };
    expect(feedbackRequestSchema.safeParse(body).success).toBe(false);
  });

  it('rejects an empty feedback array', () => {
    expect(feedbackRequestSchema.safeParse({ feedback: [] }).success).toBe(false);
  });
});
