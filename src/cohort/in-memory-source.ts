import { filterCohort, type MatchableEncounter } from './matching.js';
import { median } from './statistics.js';
import type { BaselineStatistics, CohortCriteria, CohortSource, CohortStatistics, DescribeCohortOptions, ItemCount } from './types.js';

/** A prior encounter held in memory, as tests and small tools build them. */
export interface InMemoryEncounter extends MatchableEncounter {
  readonly admitted: boolean;
  readonly returned72h: boolean;
  readonly edLosMinutes: number | null;
  readonly hospitalLosMinutes: number | null;
  /** `weight`: the reputation weight of the clinician who ordered it here (docs/reputation.md); absent: 1. */
  readonly items: readonly (Omit<ItemCount, 'encounters' | 'weightedEncounters'> & { readonly weight?: number })[];
}

/** A CohortSource over an array: the reference semantics that the SQL source is tested against. */
export class InMemoryCohortSource implements CohortSource {
  constructor(private readonly encounters: readonly InMemoryEncounter[]) {}

  async countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]> {
    return criteria.map((one) => filterCohort(this.encounters, one).length);
  }

  async describeCohort(criteria: CohortCriteria, options: DescribeCohortOptions = {}): Promise<CohortStatistics> {
    return describe(filterCohort(this.encounters, criteria), options.itemWeighting === 'clinician-reputation');
  }

  async describeBaseline(): Promise<BaselineStatistics> {
    const statistics = describe(this.encounters);
    return { size: statistics.size, items: new Map(statistics.items.map((item) => [item.itemCode, item.encounters])) };
  }
}

function describe(cohort: readonly InMemoryEncounter[], weighted = false): CohortStatistics {
  const items = new Map<string, ItemCount>();
  for (const encounter of cohort) {
    // An item listed twice in one encounter counts once, with the larger weight (as the SQL source takes the max).
    const weights = new Map<string, number>();
    for (const { itemCode, weight } of encounter.items) weights.set(itemCode, Math.max(weights.get(itemCode) ?? -Infinity, weight ?? 1));
    const seen = new Set<string>();
    for (const { weight: _weight, ...item } of encounter.items) {
      if (seen.has(item.itemCode)) continue;
      seen.add(item.itemCode);
      const current = items.get(item.itemCode);
      const count: ItemCount = { ...item, encounters: (current?.encounters ?? 0) + 1 };
      items.set(
        item.itemCode,
        weighted ? { ...count, weightedEncounters: (current?.weightedEncounters ?? 0) + weights.get(item.itemCode)! } : count,
      );
    }
  }
  const edLos = cohort.flatMap((encounter) => (encounter.edLosMinutes === null ? [] : [encounter.edLosMinutes]));
  const hospitalLos = cohort.flatMap((encounter) =>
    encounter.admitted && encounter.hospitalLosMinutes !== null ? [encounter.hospitalLosMinutes] : [],
  );
  return {
    size: cohort.length,
    items: [...items.values()].sort((a, b) => b.encounters - a.encounters || a.itemCode.localeCompare(b.itemCode)),
    outcomes: {
      admitted: cohort.filter((encounter) => encounter.admitted).length,
      returned72h: cohort.filter((encounter) => encounter.returned72h).length,
      edLosMedianMinutes: median(edLos),
      edLosKnown: edLos.length,
      hospitalLosMedianMinutes: median(hospitalLos),
      hospitalLosKnown: hospitalLos.length,
    },
  };
}
