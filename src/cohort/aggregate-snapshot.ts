import type { BaselineStatistics, CohortCriteria, CohortStatistics, Icd10Overlap, ItemCategory, ItemCount } from './types.js';

/**
 * The precomputed cohort aggregates of one generation (migration 0006), held in memory: a hook sums the cells its
 * criteria select without a round trip to the database. The cells and their semantics are those of
 * `AggregateCohortSource` (src/db/cohort-aggregate.repository.ts), which this mirrors in plain code; a test compares
 * both with the exact scan on every cohort of the demo.
 */

/** The complaint concept of the cells that hold every encounter once (concepts are slugs, so never a real one). */
export const anyComplaintConcept = '*';

/** How an item is shown: the same for every encounter when `uniform` (else only the exact scan knows the cohort's min()). */
export interface SnapshotItem {
  readonly itemCode: string;
  readonly category: ItemCategory;
  readonly kind: string;
  readonly display: string;
  readonly codeSystem: string | null;
  readonly code: string | null;
  readonly uniform: boolean;
}

/** Two parallel arrays: keys ascending, and the encounters for each. */
export interface Histogram {
  readonly keys: Int32Array;
  readonly counts: Int32Array;
}

/** One cell: its key (what criteria test) and its sums. */
export interface SnapshotCell {
  readonly complaintConcept: string;
  readonly sex: string;
  readonly ageYears: number;
  readonly acuity: number | null;
  /** '' when the generation is not split by site. */
  readonly site: string;
  /** 0 when the generation is not split by start year. */
  readonly startYear: number;
  /** Distinct ICD-10 categories, sorted. */
  readonly icd10Categories: readonly string[];
  readonly encounters: number;
  readonly admitted: number;
  readonly returned72h: number;
  /** Keys are indexes into `AggregateSnapshotData.items`. */
  readonly items: Histogram;
  /** Keys are minutes. */
  readonly edLengthOfStay: Histogram;
  readonly hospitalLengthOfStay: Histogram;
}

export interface AggregateSnapshotData {
  readonly generation: number;
  readonly bySite: boolean;
  readonly byStartYear: boolean;
  /** Encounters in the cohort (the baseline's size). */
  readonly encounters: number;
  readonly cells: readonly SnapshotCell[];
  readonly items: readonly SnapshotItem[];
  /** item code → encounters, items with none left out. */
  readonly baseline: ReadonlyMap<string, number>;
}

interface IndexedCell extends SnapshotCell {
  /** The cell's categories as numbers of the snapshot's category table, for flag look-ups instead of string sets. */
  readonly categoryIds: Int32Array;
}

/** Whether a cell's categories overlap the wanted ones (`wanted` flags them by number; `wantedCount` of them). */
function overlaps(own: Int32Array, wanted: Uint8Array, wantedCount: number, overlap: Icd10Overlap): boolean {
  let shared = 0;
  for (let index = 0; index < own.length; index += 1) shared += wanted[own[index]!]!;
  switch (overlap.measure) {
    case 'any':
      return shared > 0;
    case 'all':
      return shared === wantedCount;
    case 'jaccard':
      // The same float8 division as the SQL (and matchesCriteria): identical to the last bit. A cell's categories
      // are distinct, so `own.length` is its set's size.
      return shared > 0 && shared / (own.length + wantedCount - shared) >= overlap.atLeast;
  }
}

/** percentile_cont(0.5) over a histogram, as PostgreSQL interpolates between the two middle values. */
function histogramMedian(keys: readonly number[], counts: ReadonlyMap<number, number>, total: number): number | null {
  if (total === 0) return null;
  const lowerRank = Math.floor((total - 1) * 0.5);
  const upperRank = Math.ceil((total - 1) * 0.5);
  let upTo = 0;
  let lower: number | null = null;
  for (const key of keys) {
    upTo += counts.get(key)!;
    if (lower === null && upTo > lowerRank) lower = key;
    if (upTo > upperRank) return lower === key ? key : lower! + 0.5 * (key - lower!);
  }
  return null;
}

function addHistogram(into: Map<number, number>, histogram: Histogram): number {
  let total = 0;
  for (let index = 0; index < histogram.keys.length; index += 1) {
    const count = histogram.counts[index]!;
    if (count <= 0) continue;
    const key = histogram.keys[index]!;
    into.set(key, (into.get(key) ?? 0) + count);
    total += count;
  }
  return total;
}

/** Criteria as a cell is tested against them (see AggregateSnapshot.prepare). */
interface PreparedCriteria {
  readonly concept: string;
  readonly sex: string | null;
  readonly ageMin: number;
  readonly ageMax: number;
  readonly acuity: CohortCriteria['acuity'];
  /** The distinct ICD-10 categories wanted, flagged by number (categories no cell has count but flag nothing); null: none. */
  readonly categories: Uint8Array | null;
  readonly categoryCount: number;
  readonly overlap: Icd10Overlap;
  readonly sites: ReadonlySet<string> | null;
  /** Cells of this start year or earlier are outside a look-back window; null: no window. */
  readonly oldestExcluded: number | null;
}

/** Whether a cell of the criteria's concept belongs to the cohort: `cellCondition` of the SQL aggregates. */
function cellMatches(cell: IndexedCell, criteria: PreparedCriteria): boolean {
  if (criteria.sex !== null && cell.sex !== criteria.sex) return false;
  if (cell.ageYears < criteria.ageMin || cell.ageYears > criteria.ageMax) return false;
  if (criteria.acuity !== null && (cell.acuity === null || cell.acuity < criteria.acuity.min || cell.acuity > criteria.acuity.max)) return false;
  if (criteria.categories !== null && !overlaps(cell.categoryIds, criteria.categories, criteria.categoryCount, criteria.overlap)) return false;
  if (criteria.sites !== null && !criteria.sites.has(cell.site)) return false;
  if (criteria.oldestExcluded !== null && cell.startYear <= criteria.oldestExcluded) return false;
  return true;
}

/** Cells sorted by age, so that an age band is a binary search and a slice. */
type AgeSortedCells = readonly IndexedCell[];

function ageSorted(cells: IndexedCell[]): AgeSortedCells {
  return cells.sort((a, b) => a.ageYears - b.ageYears);
}

/** The first position whose age is at least `age`. */
function firstAtLeast(cells: AgeSortedCells, age: number): number {
  let low = 0;
  let high = cells.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (cells[middle]!.ageYears < age) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** One generation's aggregates in memory, answering the criteria it can answer exactly. */
export class AggregateSnapshot {
  /** Per complaint concept: its cells by age, and per sex its cells by age. */
  private readonly index = new Map<string, { readonly all: AgeSortedCells; readonly bySex: ReadonlyMap<string, AgeSortedCells> }>();
  /** The newest start year with encounters: what a look-back window without a reference year counts back from. */
  private readonly newestStartYear: number | null;
  /** Every ICD-10 category of any cell, numbered. */
  private readonly categoryIds = new Map<string, number>();

  constructor(readonly data: AggregateSnapshotData) {
    let newest: number | null = null;
    const byConcept = new Map<string, IndexedCell[]>();
    for (const cell of data.cells) {
      const categoryIds = Int32Array.from(new Set(cell.icd10Categories), (category) => {
        let id = this.categoryIds.get(category);
        if (id === undefined) this.categoryIds.set(category, (id = this.categoryIds.size));
        return id;
      });
      const indexed: IndexedCell = { ...cell, categoryIds };
      const list = byConcept.get(cell.complaintConcept);
      if (list) list.push(indexed);
      else byConcept.set(cell.complaintConcept, [indexed]);
      if (cell.encounters > 0 && (newest === null || cell.startYear > newest)) newest = cell.startYear;
    }
    for (const [concept, cells] of byConcept) {
      const bySex = new Map<string, IndexedCell[]>();
      for (const cell of cells) {
        const list = bySex.get(cell.sex);
        if (list) list.push(cell);
        else bySex.set(cell.sex, [cell]);
      }
      this.index.set(concept, { all: ageSorted([...cells]), bySex: new Map([...bySex].map(([sex, list]) => [sex, ageSorted(list)])) });
    }
    this.newestStartYear = newest;
  }

  get generation(): number {
    return this.data.generation;
  }

  /** Whether these criteria can be answered from the cells exactly (else: the exact scan). */
  answers(criteria: CohortCriteria): boolean {
    return (
      (criteria.complaintConcept !== null || criteria.otherComplaintConcepts.length === 0) &&
      criteria.otherComplaintConcepts.every((concept) => concept === criteria.complaintConcept) &&
      (criteria.icd10 === null || criteria.icd10.level === 'category') &&
      (criteria.sites === null || this.data.bySite) &&
      (criteria.lookback === null || this.data.byStartYear)
    );
  }

  private wantedCategories(criteria: CohortCriteria): Pick<PreparedCriteria, 'categories' | 'categoryCount'> {
    if (criteria.icd10 === null) return { categories: null, categoryCount: 0 };
    const wanted = new Set(criteria.icd10.codes.map((code) => code.slice(0, 3)));
    const flags = new Uint8Array(this.categoryIds.size);
    for (const category of wanted) {
      const id = this.categoryIds.get(category);
      if (id !== undefined) flags[id] = 1;
    }
    return { categories: flags, categoryCount: wanted.size };
  }

  /** The criteria in the form a cell is tested against; null when no cell can match. */
  private prepare(criteria: CohortCriteria): PreparedCriteria | null {
    let oldestExcluded: number | null = null;
    if (criteria.lookback !== null) {
      const reference = criteria.lookback.referenceYear ?? this.newestStartYear;
      // No encounter at all: `start_year > null` holds for no cell.
      if (reference === null) return null;
      oldestExcluded = reference - criteria.lookback.years;
    }
    return {
      concept: criteria.complaintConcept ?? anyComplaintConcept,
      sex: criteria.sex,
      ageMin: criteria.ageMin ?? Number.NEGATIVE_INFINITY,
      ageMax: criteria.ageMax ?? Number.POSITIVE_INFINITY,
      acuity: criteria.acuity,
      ...this.wantedCategories(criteria),
      overlap: criteria.icd10?.overlap ?? { measure: 'any' },
      sites: criteria.sites === null ? null : new Set(criteria.sites),
      oldestExcluded,
    };
  }

  /**
   * The cells within the concept, sex and age band given: a binary search and a slice of the age-sorted cells
   * (`from` inclusive, `to` exclusive); the caller tests the rest.
   */
  private candidates(concept: string, sex: string | null, ageMin: number, ageMax: number): { readonly cells: AgeSortedCells; readonly from: number; readonly to: number } {
    const entry = this.index.get(concept);
    const cells = (entry === undefined ? undefined : sex === null ? entry.all : entry.bySex.get(sex)) ?? [];
    const from = Number.isFinite(ageMin) ? firstAtLeast(cells, ageMin) : 0;
    const to = Number.isFinite(ageMax) ? firstAtLeast(cells, ageMax + 1) : cells.length;
    return { cells, from, to };
  }

  /** The cells of a cohort; the criteria must be answerable. */
  private cellsOf(criteria: CohortCriteria): IndexedCell[] {
    const prepared = this.prepare(criteria);
    if (prepared === null) return [];
    const { cells, from, to } = this.candidates(prepared.concept, prepared.sex, prepared.ageMin, prepared.ageMax);
    const matching: IndexedCell[] = [];
    for (let position = from; position < to; position += 1) {
      if (cellMatches(cells[position]!, prepared)) matching.push(cells[position]!);
    }
    return matching;
  }

  /**
   * The size of each cohort; every criteria must be answerable. The rungs of a ladder share their concept and widen
   * step by step, so the cells of the widest band are visited once and tested against every rung.
   */
  countCohorts(criteria: readonly CohortCriteria[]): number[] {
    const sizes = criteria.map(() => 0);
    const byConcept = new Map<string, { readonly index: number; readonly prepared: PreparedCriteria }[]>();
    criteria.forEach((one, index) => {
      const prepared = this.prepare(one);
      if (prepared === null) return;
      const group = byConcept.get(prepared.concept);
      if (group) group.push({ index, prepared });
      else byConcept.set(prepared.concept, [{ index, prepared }]);
    });
    for (const [concept, group] of byConcept) {
      const sexes = new Set(group.map(({ prepared }) => prepared.sex));
      const sex = sexes.size === 1 ? group[0]!.prepared.sex : null;
      const ageMin = Math.min(...group.map(({ prepared }) => prepared.ageMin));
      const ageMax = Math.max(...group.map(({ prepared }) => prepared.ageMax));
      const { cells, from, to } = this.candidates(concept, sex, ageMin, ageMax);
      for (let position = from; position < to; position += 1) {
        const cell = cells[position]!;
        for (const { index, prepared } of group) {
          if (cellMatches(cell, prepared)) sizes[index] = sizes[index]! + cell.encounters;
        }
      }
    }
    return sizes;
  }

  /**
   * The cohort's statistics, as the exact scan gives them; null when an item of the cohort is not uniform (its
   * display or coding differs between encounters, and only the scan knows which one the cohort shows).
   */
  describeCohort(criteria: CohortCriteria): CohortStatistics | null {
    let size = 0;
    let admitted = 0;
    let returned72h = 0;
    // Items are summed in an array indexed like `data.items`; `touched` lists the ones seen, in first-seen order.
    const itemTotals = new Int32Array(this.data.items.length);
    const touched: number[] = [];
    const ed = new Map<number, number>();
    const hospital = new Map<number, number>();
    let edKnown = 0;
    let hospitalKnown = 0;
    for (const cell of this.cellsOf(criteria)) {
      size += cell.encounters;
      admitted += cell.admitted;
      returned72h += cell.returned72h;
      const { keys, counts } = cell.items;
      for (let index = 0; index < keys.length; index += 1) {
        const count = counts[index]!;
        if (count <= 0) continue;
        const key = keys[index]!;
        if (itemTotals[key] === 0) touched.push(key);
        itemTotals[key] = itemTotals[key]! + count;
      }
      edKnown += addHistogram(ed, cell.edLengthOfStay);
      hospitalKnown += addHistogram(hospital, cell.hospitalLengthOfStay);
    }
    const items: ItemCount[] = [];
    for (const index of touched) {
      const encounters = itemTotals[index]!;
      const item = this.data.items[index]!;
      if (!item.uniform) return null;
      items.push({
        itemCode: item.itemCode,
        category: item.category,
        kind: item.kind,
        display: item.display,
        codeSystem: item.codeSystem,
        code: item.code,
        encounters,
      });
    }
    // The SQL's order: most encounters first, then the item code (byte order, as under the C collation).
    items.sort((a, b) => b.encounters - a.encounters || (a.itemCode < b.itemCode ? -1 : a.itemCode > b.itemCode ? 1 : 0));
    const ascending = (histogram: Map<number, number>) => [...histogram.keys()].sort((a, b) => a - b);
    return {
      size,
      items,
      outcomes: {
        admitted,
        returned72h,
        edLosMedianMinutes: histogramMedian(ascending(ed), ed, edKnown),
        edLosKnown: edKnown,
        hospitalLosMedianMinutes: histogramMedian(ascending(hospital), hospital, hospitalKnown),
        hospitalLosKnown: hospitalKnown,
      },
    };
  }

  describeBaseline(): BaselineStatistics {
    return { size: this.data.encounters, items: this.data.baseline };
  }
}
