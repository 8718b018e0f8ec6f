import { describe, expect, it } from '@jest/globals';
import { CohortCardCache } from '../../src/cards/card-cache.js';
import { buildCohortCards, type CardContext } from '../../src/cards/cohort-cards.js';
import { cardUuidFactory } from '../../src/cards/uuid.js';
import type { CohortSelection } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema, suggestedOverrideReasons } from '../../src/cohort/rules.js';
import type { CohortStatistics, ItemCount } from '../../src/cohort/types.js';
import { assertValidResponse, hookResponseSchema, serializeHookResponse, type HookResponse } from '../../src/hooks/cds-hooks.schema.js';
import { makeCriteria, makeFacts } from '../cohort/fixtures.js';

function item(itemCode: string, display: string, encounters: number, overrides: Partial<ItemCount> = {}): ItemCount {
  return { itemCode, display, encounters, category: 'workup', kind: 'lab', codeSystem: 'urn:test', code: itemCode, ...overrides };
}

function statistics(lipase: number): CohortStatistics {
  return {
    size: 40,
    items: [
      item('panel:bmp', 'Basic metabolic panel', 39),
      item('lab:lipase', 'Lipase', lipase),
      item('order:ct', 'Radiology: CT Scan', 24, { kind: 'imaging', codeSystem: null, code: null }),
      item('lab:lactate', 'Lactate', 15),
      item('med:morphine', 'Morphine', 20, { category: 'treatment', kind: 'medication' }),
      item('med:ondansetron', 'Ondansetron', 12, { category: 'treatment', kind: 'medication' }),
    ],
    outcomes: { admitted: 22, returned72h: 3, edLosMedianMinutes: 330, edLosKnown: 40, hospitalLosMedianMinutes: 4320, hospitalLosKnown: 22 },
  };
}

const baseline = {
  size: 200,
  items: new Map([
    ['panel:bmp', 196],
    ['lab:lipase', 40],
    ['order:ct', 60],
    ['lab:lactate', 80],
    ['med:morphine', 50],
    ['med:ondansetron', 40],
  ]),
};

const rules = rulesSchema.parse({ ...defaultRules, overrideReasons: suggestedOverrideReasons });

function selection(cohort: CohortStatistics, ageMin = 40): CohortSelection {
  return {
    plan: { criteria: makeCriteria({ sex: 'female', ageMin, ageMax: ageMin + 20, complaintConcept: 'abdominal-pain' }), relaxation: ['ignore-icd10'] },
    sizesTried: [4, 40],
    statistics: cohort,
  };
}

const shared = statistics(30);

/** One call: its patient, encounter and hookInstance are its own; the cohort may be shared. */
function call(patientId: string, hookInstance: string, overrides: Partial<CardContext> = {}): CardContext {
  return {
    facts: makeFacts(),
    selection: selection(shared),
    baseline,
    rules,
    rulesVersion: 2,
    patientId,
    encounterId: `${patientId}-visit`,
    uuidFor: cardUuidFactory('order-select', hookInstance, 2),
    conceptDisplay: (concept) => (concept === 'abdominal-pain' ? 'Abdominal pain' : concept),
    explanationLink: (kind) => ({ label: 'How this cohort was chosen', url: `https://cds.example.org/explain/${patientId}/${kind}`, type: 'absolute' }),
    ...overrides,
  };
}

const json = (context: CardContext, cache: CohortCardCache) => JSON.stringify(cache.build(context));

describe('CohortCardCache', () => {
  it('gives every call of a shared cohort the cards buildCohortCards gives it: own uuids, orders and links', () => {
    const cache = new CohortCardCache(10);
    const calls = [
      call('patient-a', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b'),
      call('patient-b', '7e6d5c4b-3a29-4817-8665-544332211000'),
      call('patient-c', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b', { encounterId: undefined }),
    ];
    const answers = calls.map((context) => json(context, cache));
    expect(answers).toEqual(calls.map((context) => JSON.stringify(buildCohortCards(context))));
    expect(cache.size).toBe(1);
    expect(cache.lookups()).toEqual({ hits: 2, misses: 1 });
    // The per-call parts differ (control: the cache did not hand out the first call's cards).
    expect(answers[1]).not.toBe(answers[0]);
    expect(answers[1]).toContain('Patient/patient-b');
    expect(answers[1]).not.toContain('patient-a');
    expect(answers[2]).not.toContain('"encounter"');
  });

  it('builds again for new statistics of the same cohort (an ingest), other rules or other draft orders', () => {
    const cache = new CohortCardCache(10);
    const before = call('patient-a', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b');
    expect(json(before, cache)).toContain('Lipase 75%');
    const ingested = { ...before, selection: selection(statistics(36)) };
    expect(json(ingested, cache)).toBe(JSON.stringify(buildCohortCards(ingested)));
    expect(json(ingested, cache)).toContain('Lipase 90%');
    const activated = { ...before, rules: rulesSchema.parse({ ...rules, maxItemsPerCard: 1 }), rulesVersion: 3 };
    expect(json(activated, cache)).toBe(JSON.stringify(buildCohortCards(activated)));
    const drafted = { ...before, facts: makeFacts({ draftOrders: [{ resourceType: 'ServiceRequest', codes: [], texts: ['lipase'] }] }) };
    expect(json(drafted, cache)).toBe(JSON.stringify(buildCohortCards(drafted)));
    expect(json(drafted, cache)).toContain('Already ordered: Lipase 75%');
    expect(json(before, cache)).not.toContain('Already ordered');
  });

  it('keeps at most maxEntries cohorts; 0 keeps none', () => {
    const cache = new CohortCardCache(2);
    for (const ageMin of [20, 30, 40]) cache.build(call('patient-a', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b', { selection: selection(shared, ageMin) }));
    expect(cache.size).toBe(2);
    const off = new CohortCardCache(0);
    const context = call('patient-a', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b');
    expect(json(context, off)).toBe(JSON.stringify(buildCohortCards(context)));
    expect(off.size).toBe(0);
  });
});

describe('hook response serialization', () => {
  it('writes the bytes of the schema-checked response: cards are built in the order of hookResponseSchema', () => {
    const context = call('patient-a', '0b8f6c3e-1d2a-4e5f-9a0b-1c2d3e4f5a6b');
    const response = { cards: buildCohortCards(context).map(({ card }) => card) } as HookResponse;
    // Every optional field is present somewhere: suggestions of both kinds, codings and none, override reasons, links.
    const body = serializeHookResponse(response);
    for (const field of ['"selectionBehavior"', '"overrideReasons"', '"links"', '"medicationCodeableConcept"', '"coding"', '"encounter"']) {
      expect(body).toContain(field);
    }
    assertValidResponse(JSON.parse(body));
    expect(body).toBe(JSON.stringify(hookResponseSchema.parse(response)));
  });
});
