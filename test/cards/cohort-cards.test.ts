import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { buildCohortCards, buildPrognosisCard, buildWorkupCard, describeCohortCriteria, type CardContext } from '../../src/cards/cohort-cards.js';
import { escapeMarkdown, fitSummary } from '../../src/cards/format.js';
import { cardUuidFactory, uuidV5 } from '../../src/cards/uuid.js';
import type { CohortSelection } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema, suggestedOverrideReasons } from '../../src/cohort/rules.js';
import type { CohortCriteria, ItemCount } from '../../src/cohort/types.js';
import { makeCriteria, makeFacts } from '../cohort/fixtures.js';

function item(itemCode: string, display: string, encounters: number, overrides: Partial<ItemCount> = {}): ItemCount {
  return { itemCode, display, encounters, category: 'workup', kind: 'lab', codeSystem: 'urn:test', code: itemCode, ...overrides };
}

const items: ItemCount[] = [
  item('panel:bmp', 'Basic metabolic panel', 39),
  item('lab:lipase', 'Lipase', 30),
  item('order:ct', 'Radiology: CT Scan', 24, { kind: 'imaging' }),
  item('lab:lactate', 'Lactate', 15),
  item('lab:rare', 'Ammonia', 6),
  item('med:morphine', 'Morphine', 20, { category: 'treatment', kind: 'medication' }),
  item('med:ondansetron', 'Ondansetron', 12, { category: 'treatment', kind: 'medication' }),
];

const selection: CohortSelection = {
  plan: {
    criteria: makeCriteria({ sex: 'female', ageMin: 40, ageMax: 60, complaintConcept: 'abdominal-pain' }),
    relaxation: ['ignore-icd10'],
  },
  sizesTried: [4, 40],
  statistics: {
    size: 40,
    items,
    outcomes: { admitted: 22, returned72h: 3, edLosMedianMinutes: 330, edLosKnown: 40, hospitalLosMedianMinutes: 4320, hospitalLosKnown: 22 },
  },
};

const baseline = {
  size: 200,
  items: new Map([
    ['panel:bmp', 196],
    ['lab:lipase', 40],
    ['order:ct', 60],
    ['lab:lactate', 80],
    ['lab:rare', 10],
    ['med:morphine', 50],
    ['med:ondansetron', 40],
  ]),
};

function context(overrides: Partial<CardContext> = {}): CardContext {
  return {
    facts: makeFacts(),
    selection,
    baseline,
    rules: defaultRules,
    rulesVersion: 3,
    patientId: 'example-patient',
    encounterId: 'example-encounter',
    uuidFor: cardUuidFactory('order-select', 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', 3),
    conceptDisplay: (concept) => (concept === 'abdominal-pain' ? 'Abdominal pain' : concept),
    ...overrides,
  };
}

describe('uuidV5', () => {
  it('matches the RFC 9562 example', () => {
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('agrees with the RFC algorithm written out on bytes, for short, long and non-ASCII names and every variant digit', () => {
    const namespace = '8f6c2a3e-5b1d-4c7e-9a0f-3d2e1b4c5a69';
    const reference = (name: string) => {
      const digest = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest();
      digest[6] = (digest[6]! & 0x0f) | 0x50;
      digest[8] = (digest[8]! & 0x3f) | 0x80;
      const hex = digest.subarray(0, 16).toString('hex');
      return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join('-');
    };
    // 256 units fill the reused buffer exactly (3 bytes each at most); 257 and more take the other path.
    const names = ['workup', 'workup/lab:50912', 'é'.repeat(256), 'ü'.repeat(257), 'x'.repeat(5000), ...Array.from({ length: 40 }, (_, i) => `treatment/med:${i}`)];
    const uuids = names.map((name) => uuidV5(namespace, name));
    expect(uuids).toEqual(names.map(reference));
    expect(new Set(uuids.map((uuid) => uuid[19])).size).toBe(4);
  });
});

describe('workup card', () => {
  const card = buildWorkupCard(context())!;

  it('puts what is distinctive for the cohort first, by lift', () => {
    // Lipase 75% vs 20% (3.75×), CT 60% vs 30% (2×), lactate 38% vs 40% (0.9×).
    expect(card.suggestions?.map((suggestion) => suggestion.label)).toEqual([
      'Order Lipase',
      'Order Radiology: CT Scan',
      'Order Lactate',
    ]);
    expect(card.summary).toBe('Workup in 40 similar visits: Lipase 75%, Radiology: CT Scan 60%, Lactate 38%');
    expect(card.selectionBehavior).toBe('any');
  });

  it('keeps routine items to one line and hides small cells', () => {
    expect(card.detail).toContain('Routine in nearly every ED visit: Basic metabolic panel 98%.');
    expect(card.detail).not.toContain('Ammonia');
    expect(card.detail).toContain('| Lipase | 75% (30 of 40) | 20% | 3.8× |');
  });

  it('says who is similar and which relaxation was applied', () => {
    expect(card.detail).toContain('Similar visits: female, age 40–60, chief complaint abdominal pain.');
    expect(card.detail).toContain('Relaxed to reach 11 visits: diagnoses not matched.');
    expect(card.source.label).toBe('Cohort CDS · 40 similar ED visits · rules v3');
  });

  it('suggests a draft ServiceRequest for the patient', () => {
    expect(card.suggestions?.[0]?.actions[0]).toEqual({
      type: 'create',
      description: 'Order Lipase (75% of 40 similar visits)',
      resource: {
        resourceType: 'ServiceRequest',
        status: 'draft',
        intent: 'proposal',
        code: { coding: [{ system: 'urn:test', code: 'lab:lipase', display: 'Lipase' }], text: 'Lipase' },
        subject: { reference: 'Patient/example-patient' },
        encounter: { reference: 'Encounter/example-encounter' },
      },
    });
  });

  it('leaves out what the draft orders already hold, by code or by words', () => {
    const drafted = buildWorkupCard(
      context({
        facts: makeFacts({
          draftOrders: [
            { resourceType: 'ServiceRequest', codes: ['urn:test|lab:lipase'], texts: [] },
            { resourceType: 'ServiceRequest', codes: [], texts: ['Radiology: CT scan'] },
          ],
        }),
      }),
    )!;
    expect(drafted.suggestions?.map((suggestion) => suggestion.label)).toEqual(['Order Lactate']);
    expect(drafted.detail).toContain('Already ordered: Lipase 75%, Radiology: CT Scan 60%.');
  });

  it('is deterministic: same input, same JSON and uuids; another hook instance, other uuids', () => {
    expect(buildWorkupCard(context())).toEqual(card);
    const other = buildWorkupCard(context({ uuidFor: cardUuidFactory('order-select', 'another-instance', 3) }))!;
    expect(other.uuid).not.toBe(card.uuid);
    expect(new Set(card.suggestions?.map((suggestion) => suggestion.uuid)).size).toBe(3);
  });
});

describe('cohort description', () => {
  const displays: Record<string, string> = { 'abdominal-pain': 'Abdominal pain', 'nausea-vomiting': 'Nausea and vomiting', fever: 'Fever' };
  const describeWith = (criteria: Partial<CohortCriteria>, relaxation: CohortSelection['plan']['relaxation'] = []) =>
    describeCohortCriteria(
      context({
        selection: { ...selection, plan: { criteria: { ...selection.plan.criteria, ...criteria }, relaxation } },
        conceptDisplay: (concept) => displays[concept] ?? concept,
      }),
    );

  it('names the triage acuity matched, and says when it was dropped', () => {
    expect(describeWith({ acuity: { min: 2, max: 2 } })).toBe(
      'Similar visits: female, age 40–60, triage acuity ESI 2, chief complaint abdominal pain. No relaxation was needed.',
    );
    expect(describeWith({ acuity: { min: 1, max: 3 } })).toContain('triage acuity ESI 1–3,');
    expect(describeWith({}, ['ignore-acuity'])).toContain('Relaxed to reach 11 visits: triage acuity not matched.');
  });

  it('lists every complaint concept that qualifies', () => {
    expect(describeWith({ otherComplaintConcepts: ['nausea-vomiting'] })).toContain('chief complaint abdominal pain or nausea and vomiting.');
    expect(describeWith({ otherComplaintConcepts: ['nausea-vomiting', 'fever'] })).toContain(
      'chief complaint abdominal pain, nausea and vomiting or fever.',
    );
  });

  it('says how much ICD-10 overlap was asked for', () => {
    const icd10 = (overlap: NonNullable<CohortCriteria['icd10']>['overlap']) => ({ icd10: { level: 'category' as const, codes: ['K5730', 'R1084'], overlap } });
    expect(describeWith(icd10({ measure: 'any' }))).toContain('ICD-10 category K57, R10.');
    expect(describeWith(icd10({ measure: 'all' }))).toContain('all of ICD-10 categories K57, R10.');
    expect(describeWith(icd10({ measure: 'jaccard', atLeast: 0.5 }))).toContain(
      'ICD-10 categories K57, R10 with at least 50% in common (shared ÷ all categories of both visits).',
    );
  });

  it('names the sites and the look-back window', () => {
    expect(describeWith({ sites: ['north'] })).toContain('chief complaint abdominal pain, site north.');
    expect(describeWith({ sites: ['north', 'south'], lookback: { years: 5, referenceYear: null } })).toContain(
      'sites north or south, visits of the last 5 years on record.',
    );
    expect(describeWith({ lookback: { years: 1, referenceYear: null } })).toContain('visits of the latest year on record.');
    // With a reference year (a backtest), the years as the cohort stores them.
    expect(describeWith({ lookback: { years: 5, referenceYear: 2150 } })).toContain('visits since 2146.');
    expect(describeWith({ lookback: { years: 1, referenceYear: 2150 } })).toContain('visits since 2150.');
  });

  it('escapes site names from the rules', () => {
    expect(describeWith({ sites: ['[x](javascript:alert(1))'] })).toContain('site \\[x\\]\\(javascript:alert\\(1\\)\\)');
  });
});

describe('treatment card', () => {
  it('suggests MedicationRequests', () => {
    const [, built] = buildCohortCards(context());
    const treatment = built?.card;
    expect(built?.suggestedItemCodes).toEqual(['med:morphine', 'med:ondansetron']);
    expect(treatment?.summary).toBe('Treatment in 40 similar visits: Morphine 50%, Ondansetron 30%');
    expect(treatment?.suggestions?.[0]?.actions[0]?.resource).toMatchObject({
      resourceType: 'MedicationRequest',
      medicationCodeableConcept: { text: 'Morphine' },
    });
  });
});

describe('prognosis card', () => {
  it('gives admission with its interval, lengths of stay and suppresses small return counts', () => {
    const card = buildPrognosisCard(context());
    expect(card.summary).toBe('40 similar visits: admitted 55% (95% CI 40–69%); 72-h return fewer than 11 visits');
    expect(card.indicator).toBe('warning');
    expect(card.detail).toContain('| Median time in the ED | 5.5 h |');
    expect(card.detail).toContain('| Median hospital stay when admitted | 3.0 d |');
  });

  it('is info below the thresholds', () => {
    const rules = rulesSchema.parse({ admissionWarningRate: 0.6, returnWarningRate: 0.2 });
    expect(buildPrognosisCard(context({ rules })).indicator).toBe('info');
  });
});

describe('privacy', () => {
  it('returns no card for a cohort under the minimum size', () => {
    const small = { ...selection, statistics: { ...selection.statistics, size: 10 } };
    expect(buildCohortCards(context({ selection: small }))).toEqual([]);
  });
});

describe('format', () => {
  it('escapes markup from data', () => {
    expect(escapeMarkdown('<img src=x onerror=alert(1)> [a](javascript:x)')).toBe(
      '\\<img src=x onerror=alert\\(1\\)\\> \\[a\\]\\(javascript:x\\)',
    );
  });

  it('fits summaries under 140 characters', () => {
    const long = fitSummary('word '.repeat(60));
    expect(long.length).toBeLessThan(140);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('what templates share', () => {
  it('one ordered concept per item and one list of override reasons per rules, whatever the cohort', () => {
    const rules = rulesSchema.parse({ ...defaultRules, overrideReasons: suggestedOverrideReasons });
    const other = context({
      rules,
      selection: { ...selection, statistics: { ...selection.statistics, size: 41 } },
      patientId: 'another-patient',
    });
    const [first, second] = [buildWorkupCard(context({ rules }))!, buildWorkupCard(other)!];
    const conceptOf = (card: typeof first, index: number) => {
      const resource = card.suggestions![index]!.actions![0]!.resource as { code: unknown };
      return resource.code;
    };
    // Another cohort (its own counts and descriptions), the same lipase order: the very same concept object.
    expect(first.suggestions![0]!.actions![0]!.description).not.toBe(second.suggestions![0]!.actions![0]!.description);
    expect(conceptOf(second, 0)).toBe(conceptOf(first, 0));
    expect(conceptOf(first, 0)).toEqual({ coding: [{ system: 'urn:test', code: 'lab:lipase', display: 'Lipase' }], text: 'Lipase' });
    expect(conceptOf(first, 1)).not.toBe(conceptOf(first, 0));
    expect(second.overrideReasons).toBe(first.overrideReasons);
    expect(first.overrideReasons).toEqual(suggestedOverrideReasons.map(({ code, system, display }) => ({ code, system, display })));
  });
});
