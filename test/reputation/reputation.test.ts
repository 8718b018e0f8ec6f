import { describe, expect, it } from '@jest/globals';
import { rankItems } from '../../src/cards/item-ranking.js';
import { InMemoryCohortSource, type InMemoryEncounter } from '../../src/cohort/in-memory-source.js';
import { defaultRules } from '../../src/cohort/rules.js';
import { computeReputation, withReputationWeights, type ReputationEncounter } from '../../src/reputation/reputation.js';
import { makeCriteria, makeEncounters } from '../cohort/fixtures.js';

const item = (itemCode: string) => ({ itemCode });

/**
 * 60 abdominal-pain visits: nearly all get lipase, none but the contrary clinician's get "mystery". `agreeing`
 * orders lipase in 15 visits, `contrary` orders mystery in 15, `once` orders mystery in one.
 */
function consensusCohort(): ReputationEncounter[] {
  const encounters: ReputationEncounter[] = [];
  for (let index = 0; index < 60; index += 1) {
    const clinicians = new Map<string, string>();
    const items = [item('lab:lipase')];
    if (index < 15) clinicians.set('lab:lipase', 'agreeing');
    if (index >= 15 && index < 30) {
      items.push(item('order:mystery'));
      clinicians.set('order:mystery', 'contrary');
    }
    if (index === 30) {
      items.push(item('order:mystery'));
      clinicians.set('order:mystery', 'once');
    }
    encounters.push({ complaintConcepts: ['abdominal-pain'], returned72h: false, items, clinicianByItem: clinicians });
  }
  return encounters;
}

function byKey(encounters: readonly ReputationEncounter[]) {
  return new Map(computeReputation(encounters).clinicians.map((clinician) => [clinician.clinicianKey, clinician]));
}

describe('computeReputation', () => {
  it('ranks a clinician whose orders agree with the complaint consensus above one whose orders do not', () => {
    const reputations = byKey(consensusCohort());
    const agreeing = reputations.get('agreeing')!;
    const contrary = reputations.get('contrary')!;
    // Leave-one-out: each lipase order agrees with the 59 other visits; mystery is in 16 visits, so 15 of 59.
    expect(agreeing.rawAgreement).toBeCloseTo(1, 10);
    expect(contrary.rawAgreement).toBeCloseTo(15 / 59, 10);
    expect(agreeing.weight).toBeGreaterThan(1);
    expect(contrary.weight).toBeLessThan(1);
    expect(agreeing.orders).toBe(15);
    expect(agreeing.encounters).toBe(15);
  });

  it('keeps a clinician seen once near the mean: the prior outweighs one order', () => {
    const summary = computeReputation(consensusCohort());
    const once = summary.clinicians.find((clinician) => clinician.clinicianKey === 'once')!;
    const contrary = summary.clinicians.find((clinician) => clinician.clinicianKey === 'contrary')!;
    expect(once.rawAgreement).toBeCloseTo(15 / 59, 10);
    // Smoothed with 20 orders' worth of the mean: (agreement + 20·mean) / 21.
    expect(once.agreement).toBeCloseTo((15 / 59 + 20 * summary.meanAgreement!) / 21, 10);
    expect(Math.abs(once.weight - 1)).toBeLessThan(0.1);
    // Same kind of order, fifteen times: far from the mean.
    expect(Math.abs(contrary.weight - 1)).toBeGreaterThan(3 * Math.abs(once.weight - 1));
  });

  it('lowers the weight of a clinician whose patients return within 72 hours, other things equal', () => {
    const encounters: ReputationEncounter[] = Array.from({ length: 40 }, (_, index) => ({
      complaintConcepts: ['chest-pain'],
      returned72h: index < 20 ? index % 2 === 0 : false,
      items: [item('lab:troponin')],
      clinicianByItem: new Map([['lab:troponin', index < 20 ? 'returns' : 'no-returns']]),
    }));
    const reputations = byKey(encounters);
    expect(reputations.get('returns')!.rawAgreement).toBe(reputations.get('no-returns')!.rawAgreement);
    expect(reputations.get('returns')!.returnRate72h).toBeGreaterThan(reputations.get('no-returns')!.returnRate72h);
    expect(reputations.get('returns')!.weight).toBeLessThan(reputations.get('no-returns')!.weight);
  });

  it('counts only items that name a clinician and says when there are none', () => {
    const summary = computeReputation([{ complaintConcepts: ['fall'], returned72h: true, items: [item('lab:a'), item('lab:b')] }]);
    expect(summary).toMatchObject({ clinicians: [], meanAgreement: null, meanReturnRate72h: null, items: 2, itemsWithClinician: 0 });
  });

  it('keeps every weight within its bounds', () => {
    const encounters: ReputationEncounter[] = Array.from({ length: 500 }, (_, index) => ({
      complaintConcepts: ['fall'],
      returned72h: index % 3 === 0,
      items: [item(index < 250 ? 'common' : `unique-${index}`)],
      clinicianByItem: new Map([[index < 250 ? 'common' : `unique-${index}`, index < 250 ? 'mainstream' : 'maverick']]),
    }));
    for (const clinician of computeReputation(encounters, { agreementPriorOrders: 1, returnPriorEncounters: 1, minWeight: 0.5, maxWeight: 1.5 }).clinicians) {
      expect(clinician.weight).toBeGreaterThanOrEqual(0.5);
      expect(clinician.weight).toBeLessThanOrEqual(1.5);
    }
  });
});

describe('weighting by reputation', () => {
  const rated = [
    { clinicianKey: 'trusted', weight: 2 },
    { clinicianKey: 'doubtful', weight: 0.5 },
  ];
  const labItem = (code: string) => ({ itemCode: code, category: 'workup' as const, kind: 'imaging', display: code, codeSystem: null, code: null });
  /** 20 visits: "ct" ordered by the trusted clinician in 12, "us" by the doubtful one in 12, "xr" by nobody known in 12. */
  const cohort: InMemoryEncounter[] = makeEncounters(20).map((encounter, index) => ({
    ...encounter,
    items: [...(index < 12 ? [labItem('ct'), labItem('xr')] : []), ...(index >= 8 ? [labItem('us')] : [])],
  }));
  const clinicianByItem = (index: number) =>
    new Map([...(index < 12 ? [['ct', 'trusted'] as const] : []), ...(index >= 8 ? [['us', 'doubtful'] as const] : [])]);
  const weighted = withReputationWeights(
    cohort.map((encounter, index) => ({ ...encounter, clinicianByItem: clinicianByItem(index) })),
    rated,
  );

  it('sums the weights of the ordering clinicians, 1 for an item without one, only when asked for', async () => {
    const source = new InMemoryCohortSource(weighted);
    const plain = await source.describeCohort(makeCriteria());
    expect(plain.items.every((count) => count.weightedEncounters === undefined)).toBe(true);
    const statistics = await source.describeCohort(makeCriteria(), { itemWeighting: 'clinician-reputation' });
    const of = (code: string) => statistics.items.find((count) => count.itemCode === code)!;
    expect(of('ct')).toMatchObject({ encounters: 12, weightedEncounters: 24 });
    expect(of('us')).toMatchObject({ encounters: 12, weightedEncounters: 6 });
    expect(of('xr')).toMatchObject({ encounters: 12, weightedEncounters: 12 });
    // The true counts and the outcomes do not move.
    expect(statistics.size).toBe(plain.size);
    expect(statistics.items.map(({ weightedEncounters: _dropped, ...count }) => count)).toEqual(plain.items);
  });

  it('reorders the suggestions by weighted share under itemWeighting, and only then', async () => {
    const source = new InMemoryCohortSource(weighted);
    const statistics = await source.describeCohort(makeCriteria(), { itemWeighting: 'clinician-reputation' });
    const baseline = { size: 100, items: new Map([['ct', 30], ['us', 30], ['xr', 30]]) };
    const rules = { ...defaultRules, minCellSize: 5, minCohortSize: 5 };
    const order = (itemWeighting: 'none' | 'clinician-reputation') =>
      rankItems(statistics.items, 'workup', statistics.size, baseline, { ...rules, itemWeighting }, []).distinctive.map((ranked) => ranked.item.itemCode);
    // Same counts and baseline: unweighted, the display breaks the tie; weighted, the trusted clinician's order leads.
    expect(order('none')).toEqual(['ct', 'us', 'xr']);
    expect(order('clinician-reputation')).toEqual(['ct', 'xr', 'us']);
    const shown = rankItems(statistics.items, 'workup', statistics.size, baseline, { ...rules, itemWeighting: 'clinician-reputation' }, []);
    expect(shown.distinctive.map((ranked) => ranked.share)).toEqual([12 / 20, 12 / 20, 12 / 20]);
  });
});
