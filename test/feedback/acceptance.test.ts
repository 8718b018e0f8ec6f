import { describe, expect, it } from '@jest/globals';
import { buildCohortCards, buildWorkupCard, type CardContext } from '../../src/cards/cohort-cards.js';
import { rankItems } from '../../src/cards/item-ranking.js';
import { cardUuidFactory } from '../../src/cards/uuid.js';
import type { CohortSelection } from '../../src/cohort/matching.js';
import { defaultRules, rulesSchema, suggestedOverrideReasons, type Rules } from '../../src/cohort/rules.js';
import type { ItemCount } from '../../src/cohort/types.js';
import {
  acceptanceFactor,
  estimateAcceptance,
  evidenceKey,
  itemOutcomesOfCard,
  type AcceptanceEvidence,
  type ItemOutcomeCounts,
} from '../../src/feedback/acceptance.js';
import { hookResponseSchema } from '../../src/hooks/cds-hooks.schema.js';
import { makeCriteria, makeFacts } from '../cohort/fixtures.js';

function item(itemCode: string, display: string, encounters: number): ItemCount {
  return { itemCode, display, encounters, category: 'workup', kind: 'lab', codeSystem: 'urn:test', code: itemCode };
}

// Lift: lipase 75% ÷ 20% = 3.75×, CT 60% ÷ 30% = 2×, lactate 37.5% ÷ 40% ≈ 0.94×.
const items: ItemCount[] = [item('lab:lipase', 'Lipase', 30), item('order:ct', 'CT abdomen', 24), item('lab:lactate', 'Lactate', 15)];
const baseline = { size: 200, items: new Map([['lab:lipase', 40], ['order:ct', 60], ['lab:lactate', 80]]) };
const selection: CohortSelection = {
  plan: { criteria: makeCriteria({ sex: 'female', ageMin: 40, ageMax: 60, complaintConcept: 'abdominal-pain' }), relaxation: [] },
  sizesTried: [40],
  statistics: { size: 40, items, outcomes: { admitted: 5, returned72h: 0, edLosMedianMinutes: null, edLosKnown: 0, hospitalLosMedianMinutes: null, hospitalLosKnown: 0 } },
};

const withFeedbackRanking: Rules = rulesSchema.parse({ feedbackRanking: { kind: 'beta' } });

function context(rules: Rules, acceptance?: AcceptanceEvidence): CardContext {
  return {
    facts: makeFacts(),
    selection,
    baseline,
    rules,
    rulesVersion: 2,
    patientId: 'example-patient',
    encounterId: undefined,
    uuidFor: cardUuidFactory('order-select', 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea', 2),
    conceptDisplay: (concept) => concept,
    ...(acceptance ? { acceptance } : {}),
  };
}

function evidence(entries: Record<string, ItemOutcomeCounts>, concept = 'abdominal-pain'): AcceptanceEvidence {
  return new Map(Object.entries(entries).map(([code, counts]) => [evidenceKey(concept, code), counts]));
}

const labels = (rules: Rules, acceptance?: AcceptanceEvidence) =>
  buildWorkupCard(context(rules, acceptance))!.suggestions!.map((suggestion) => suggestion.label);

describe('acceptance estimate', () => {
  const prior = { priorAcceptance: 0.5, priorStrength: 20, minOutcomes: 20 };

  it('is the Beta posterior mean, and the prior alone without feedback', () => {
    expect(estimateAcceptance(undefined, prior)).toEqual({ outcomes: 0, accepted: 0, observedRate: null, posteriorRate: 0.5, enough: false });
    const estimate = estimateAcceptance({ accepted: 30, overridden: 5, notChosen: 5 }, prior);
    expect(estimate.outcomes).toBe(40);
    expect(estimate.observedRate).toBeCloseTo(0.75, 10);
    expect(estimate.posteriorRate).toBeCloseTo((30 + 10) / (40 + 20), 10);
    expect(estimate.enough).toBe(true);
  });

  it('leaves the rank alone below minOutcomes, whatever the clicks, and at the prior mean above it', () => {
    for (let outcomes = 0; outcomes < prior.minOutcomes; outcomes += 1) {
      expect(acceptanceFactor({ accepted: outcomes, overridden: 0, notChosen: 0 }, prior)).toBe(1);
      expect(acceptanceFactor({ accepted: 0, overridden: outcomes, notChosen: 0 }, prior)).toBe(1);
    }
    expect(acceptanceFactor({ accepted: 50, overridden: 50, notChosen: 0 }, prior)).toBeCloseTo(1, 10);
    // Bounds: never accepted in n → s / (n + s); always accepted → (n + m·s) / (m·(n + s)).
    expect(acceptanceFactor({ accepted: 0, overridden: 60, notChosen: 0 }, prior)).toBeCloseTo(20 / 80, 10);
    expect(acceptanceFactor({ accepted: 60, overridden: 0, notChosen: 0 }, prior)).toBeCloseTo(70 / 40, 10);
  });

  it('moves a factor less, for the same observed rate, the stronger the prior', () => {
    const counts = { accepted: 20, overridden: 0, notChosen: 0 };
    const weak = acceptanceFactor(counts, { ...prior, priorStrength: 2 });
    const strong = acceptanceFactor(counts, { ...prior, priorStrength: 200 });
    expect(weak).toBeGreaterThan(strong);
    expect(strong).toBeGreaterThan(1);
  });
});

describe('ranking with acceptance evidence', () => {
  const byLift = ['Order Lipase', 'Order CT abdomen', 'Order Lactate'];

  it('cannot be reordered by a handful of clicks', () => {
    // Nineteen answers, all against the top item and all for the last: below minOutcomes (20), nothing moves.
    const handful = evidence({
      'lab:lipase': { accepted: 0, overridden: 19, notChosen: 0 },
      'lab:lactate': { accepted: 19, overridden: 0, notChosen: 0 },
    });
    expect(labels(withFeedbackRanking, handful)).toEqual(byLift);
  });

  it('is reordered by strong evidence, under the rules option only', () => {
    const strong = evidence({
      'lab:lipase': { accepted: 6, overridden: 30, notChosen: 24 },
      'order:ct': { accepted: 55, overridden: 0, notChosen: 5 },
    });
    // CT: 2 × (55 + 10) / 80 / 0.5 = 3.25; lipase: 3.75 × (6 + 10) / 80 / 0.5 = 1.5; lactate keeps 0.94.
    expect(labels(withFeedbackRanking, strong)).toEqual(['Order CT abdomen', 'Order Lipase', 'Order Lactate']);
    expect(labels(defaultRules, strong)).toEqual(byLift);
    // The same card JSON as without evidence when the option is off: old versions keep their cards.
    expect(buildCohortCards(context(defaultRules, strong))).toEqual(buildCohortCards(context(defaultRules)));
  });

  it('uses the evidence of the cohort complaint only', () => {
    const otherComplaint = evidence({ 'lab:lipase': { accepted: 0, overridden: 200, notChosen: 0 } }, 'chest-pain');
    expect(labels(withFeedbackRanking, otherComplaint)).toEqual(byLift);
  });

  it('can push an item off a full card and bring one on', () => {
    const rules = rulesSchema.parse({ feedbackRanking: { kind: 'beta' }, maxItemsPerCard: 2 });
    expect(labels(rules)).toEqual(['Order Lipase', 'Order CT abdomen']);
    const strong = evidence({ 'lab:lactate': { accepted: 300, overridden: 0, notChosen: 0 }, 'order:ct': { accepted: 0, overridden: 300, notChosen: 0 } });
    expect(labels(rules, strong)).toEqual(['Order Lipase', 'Order Lactate']);
  });

  it('composes factors by product and keeps lift order without them', () => {
    const plain = rankItems(items, 'workup', 40, baseline, defaultRules, []);
    expect(plain.distinctive.map((ranked) => ranked.score)).toEqual(plain.distinctive.map((ranked) => ranked.lift));
    const halveLipase = (candidate: ItemCount) => (candidate.itemCode === 'lab:lipase' ? 0.5 : 1);
    const composed = rankItems(items, 'workup', 40, baseline, defaultRules, [], [halveLipase, halveLipase]);
    expect(composed.distinctive.map((ranked) => ranked.item.itemCode)).toEqual(['order:ct', 'lab:lipase', 'lab:lactate']);
    expect(composed.distinctive[1]!.score).toBeCloseTo(3.75 / 4, 10);
  });
});

describe('card detail and override reasons', () => {
  it('shows the acceptance rate once there is enough evidence', () => {
    const detail = buildWorkupCard(
      context(withFeedbackRanking, evidence({ 'order:ct': { accepted: 30, overridden: 6, notChosen: 4 }, 'lab:lipase': { accepted: 3, overridden: 1, notChosen: 0 } })),
    )!.detail!;
    expect(detail).toContain('Accepted by clinicians');
    expect(detail).toMatch(/\| CT abdomen \|[^\n]*\| 75% of 40 \|/);
    // Four answers are not enough to show a rate.
    expect(detail).toMatch(/\| Lipase \|[^\n]*\| – \|/);
    expect(buildWorkupCard(context(defaultRules))!.detail).not.toContain('Accepted by clinicians');
  });

  it('offers the rules override reasons on item cards, valid CDS Hooks', () => {
    const rules = rulesSchema.parse({ overrideReasons: suggestedOverrideReasons });
    const cards = buildCohortCards(context(rules)).map((built) => built.card);
    const workup = cards.find((card) => card.suggestions !== undefined)!;
    expect(workup.overrideReasons).toEqual(suggestedOverrideReasons);
    expect(hookResponseSchema.safeParse({ cards }).success).toBe(true);
    // Default: none, as versions before the field.
    expect(buildCohortCards(context(defaultRules)).some((built) => built.card.overrideReasons !== undefined)).toBe(false);
  });

  it('refuses override reasons a card could not offer', () => {
    expect(rulesSchema.safeParse({ overrideReasons: [{ code: 'x', display: 'X' }] }).success).toBe(false);
    const twice = [suggestedOverrideReasons[0], suggestedOverrideReasons[0]];
    expect(rulesSchema.safeParse({ overrideReasons: twice }).success).toBe(false);
    expect(rulesSchema.safeParse({ feedbackRanking: { kind: 'beta', priorAcceptance: 1 } }).success).toBe(false);
    expect(rulesSchema.parse({}).feedbackRanking).toEqual({ kind: 'none' });
  });
});

describe('item outcomes of a card', () => {
  const card = { suggestionUuids: ['s1', 's2', 's3'], itemCodes: ['a', 'b', 'c'] };

  it('counts accepted suggestions, passes over the rest of an accepted card, and overrides the whole card', () => {
    expect(itemOutcomesOfCard(card, [])).toEqual([
      { itemCode: 'a', outcome: null },
      { itemCode: 'b', outcome: null },
      { itemCode: 'c', outcome: null },
    ]);
    expect(itemOutcomesOfCard(card, [{ outcome: 'accepted', acceptedSuggestionIds: ['s2'] }]).map((entry) => entry.outcome)).toEqual([
      'not-chosen',
      'accepted',
      'not-chosen',
    ]);
    expect(itemOutcomesOfCard(card, [{ outcome: 'overridden', acceptedSuggestionIds: [] }]).map((entry) => entry.outcome)).toEqual([
      'overridden',
      'overridden',
      'overridden',
    ]);
    // Accepted later after an override: the accepted item counts as accepted, the others as overridden; a retry adds nothing.
    const mixed = [
      { outcome: 'overridden' as const, acceptedSuggestionIds: [] },
      { outcome: 'accepted' as const, acceptedSuggestionIds: ['s3'] },
      { outcome: 'accepted' as const, acceptedSuggestionIds: ['s3'] },
    ];
    expect(itemOutcomesOfCard(card, mixed).map((entry) => entry.outcome)).toEqual(['overridden', 'overridden', 'accepted']);
  });
});
