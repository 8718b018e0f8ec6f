/**
 * The snapshot's cohort statistics keep their items packed (one typed array) and build the item objects when read.
 * What the rest of the service sees must not change: the SQL's order, every field, and a plain-looking `items` for
 * spreading, JSON and deep equality. (Their agreement with the exact SQL on the real demo is
 * test/db/cohort-aggregate.int.test.ts.)
 */
import { describe, expect, it } from '@jest/globals';
import { AggregateSnapshot, type AggregateSnapshotData, type SnapshotCell, type SnapshotItem } from '../../src/cohort/aggregate-snapshot.js';
import { makeCriteria } from './fixtures.js';

const histogram = (pairs: readonly (readonly [number, number])[]) => ({
  keys: Int32Array.from(pairs, ([key]) => key),
  counts: Int32Array.from(pairs, ([, count]) => count),
});

const item = (itemCode: string, display: string): SnapshotItem => ({
  itemCode,
  category: 'workup',
  kind: 'lab',
  display,
  codeSystem: 'http://loinc.org',
  code: itemCode.slice(4),
  uniform: true,
});

function cell(ageYears: number, encounters: number, items: readonly (readonly [number, number])[]): SnapshotCell {
  return {
    complaintConcept: 'chest-pain',
    sex: 'female',
    ageYears,
    acuity: null,
    site: '',
    startYear: 0,
    icd10Categories: [],
    encounters,
    admitted: 1,
    returned72h: 0,
    items: histogram(items),
    edLengthOfStay: histogram([[240, encounters]]),
    hospitalLengthOfStay: histogram([]),
  };
}

const data: AggregateSnapshotData = {
  generation: 1,
  bySite: false,
  byStartYear: false,
  encounters: 30,
  // Item 2 ties item 0 on encounters and sorts before it by code; item 1 is in one cell only.
  items: [item('lab:2000', 'Troponin'), item('lab:3000', 'Lipase'), item('lab:1000', 'CBC')],
  cells: [cell(50, 12, [[0, 5], [1, 2], [2, 1]]), cell(51, 18, [[0, 3], [2, 7]])],
  baseline: new Map([['lab:1000', 20]]),
};

describe('AggregateSnapshot.describeCohort', () => {
  const snapshot = new AggregateSnapshot(data);
  const criteria = makeCriteria({ sex: 'female', ageMin: 45, ageMax: 55, complaintConcept: 'chest-pain', icd10: null });

  it('sums the items over the cells, most encounters first and then by code, every field as the table has it', () => {
    const statistics = snapshot.describeCohort(criteria)!;
    expect(statistics.size).toBe(30);
    expect(statistics.items).toEqual([
      { itemCode: 'lab:1000', category: 'workup', kind: 'lab', display: 'CBC', codeSystem: 'http://loinc.org', code: '1000', encounters: 8 },
      { itemCode: 'lab:2000', category: 'workup', kind: 'lab', display: 'Troponin', codeSystem: 'http://loinc.org', code: '2000', encounters: 8 },
      { itemCode: 'lab:3000', category: 'workup', kind: 'lab', display: 'Lipase', codeSystem: 'http://loinc.org', code: '3000', encounters: 2 },
    ]);
    expect(statistics.outcomes).toMatchObject({ admitted: 2, returned72h: 0, edLosMedianMinutes: 240, edLosKnown: 30 });
  });

  it('keeps the items packed until read, then reads as a plain field: the same array while held, in spreads and JSON', () => {
    const statistics = snapshot.describeCohort(criteria)!;
    const descriptor = Object.getOwnPropertyDescriptor(statistics, 'items')!;
    // An accessor, not a stored array of objects: that is what a cache of thousands of cohorts holds.
    expect(descriptor.get).toBeInstanceOf(Function);
    expect(descriptor.value).toBeUndefined();
    expect(descriptor.enumerable).toBe(true);
    const first = statistics.items;
    expect(statistics.items).toBe(first);
    expect({ ...statistics }.items).toEqual(first);
    expect(JSON.parse(JSON.stringify(statistics)).items.map((one: { itemCode: string }) => one.itemCode)).toEqual(['lab:1000', 'lab:2000', 'lab:3000']);
  });

  it('gives nothing for a cohort with an item whose display differs between encounters (only the SQL knows which)', () => {
    const mixed = new AggregateSnapshot({ ...data, items: [data.items[0]!, { ...data.items[1]!, uniform: false }, data.items[2]!] });
    expect(mixed.describeCohort(criteria)).toBeNull();
    // A band without the non-uniform item is still answered.
    expect(mixed.describeCohort({ ...criteria, ageMin: 51 })!.items.map((one) => one.itemCode)).toEqual(['lab:1000', 'lab:2000']);
  });
});
