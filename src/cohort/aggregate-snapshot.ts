import type { BaselineStatistics, CohortCriteria, CohortStatistics, Icd10Overlap, ItemCategory, ItemCount, OutcomeStatistics } from './types.js';

/**
 * The precomputed cohort aggregates of one generation (migration 0006), held in memory: a hook sums the cells its
 * criteria select without a round trip to the database. The cells and their semantics are those of
 * `AggregateCohortSource` (src/db/cohort-aggregate.repository.ts), which this mirrors in plain code; a test compares
 * both with the exact scan on every cohort of the demo.
 */

/** The complaint concept of the cells that hold every encounter once (concepts are slugs, so never a real one). */
export const anyComplaintConcept = '*';

/**
 * Whether cells split by these dimensions answer the criteria exactly: one complaint concept or none (the
 * any-complaint cells hold every encounter once), ICD-10 at category level (a cell keeps its whole category set),
 * sites and a look-back window only when the cells are split by them. Shared by the SQL aggregates and the snapshot.
 */
export function aggregatesAnswer(criteria: CohortCriteria, dimensions: { readonly bySite: boolean; readonly byStartYear: boolean }): boolean {
  return (
    (criteria.complaintConcept !== null || criteria.otherComplaintConcepts.length === 0) &&
    criteria.otherComplaintConcepts.every((concept) => concept === criteria.complaintConcept) &&
    (criteria.icd10 === null || criteria.icd10.level === 'category') &&
    (criteria.sites === null || dimensions.bySite) &&
    (criteria.lookback === null || dimensions.byStartYear)
  );
}

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

/**
 * A cell as the snapshot keeps it: what criteria test and its sums, without its histograms (those are packed, see
 * PackedHistograms) or its category names (numbered instead): fewer objects for the collector to mark.
 */
interface IndexedCell extends Omit<SnapshotCell, 'icd10Categories' | 'items' | 'edLengthOfStay' | 'hospitalLengthOfStay'> {
  /** The cell's categories as numbers of the snapshot's category table, for flag look-ups instead of string sets. */
  readonly categoryIds: Int32Array;
  /**
   * Position in the snapshot's storage order (by concept, sex and age): indexes `seenInWalk` and the cell's entries
   * in the packed histograms.
   */
  readonly serial: number;
}

/**
 * The histograms of every cell end to end, in storage order (cell `serial`'s entries from `start[serial]` to
 * `start[serial + 1]`). Summing the cells of an age band then reads memory in order instead of thousands of small
 * arrays spread over the heap (at 1M encounters the sum was bound by those loads).
 */
interface PackedHistograms {
  readonly start: Int32Array;
  readonly keys: Int32Array;
  readonly counts: Int32Array;
}

function packed(histograms: readonly Histogram[]): PackedHistograms {
  const start = new Int32Array(histograms.length + 1);
  histograms.forEach((histogram, index) => {
    start[index + 1] = start[index]! + histogram.keys.length;
  });
  const keys = new Int32Array(start[histograms.length]!);
  const counts = new Int32Array(keys.length);
  histograms.forEach((histogram, index) => {
    keys.set(histogram.keys, start[index]!);
    counts.set(histogram.counts, start[index]!);
  });
  return { start, keys, counts };
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

/**
 * A histogram over a known range of whole keys (minutes), kept as one dense array reused by every call: summing the
 * cells' histograms is then an add per entry, and the median a walk over the touched range (no map, no sort).
 */
class DenseHistogram {
  private readonly counts: Float64Array;
  private low = Number.POSITIVE_INFINITY;
  private high = Number.NEGATIVE_INFINITY;
  private total = 0;

  constructor(
    private readonly minimum: number,
    maximum: number,
  ) {
    this.counts = new Float64Array(Math.max(0, maximum - minimum + 1));
  }

  /** Adds the entries of cell `serial` of these packed histograms. */
  add({ start, keys, counts }: PackedHistograms, serial: number): void {
    for (let index = start[serial]!, end = start[serial + 1]!; index < end; index += 1) {
      const count = counts[index]!;
      if (count <= 0) continue;
      const slot = keys[index]! - this.minimum;
      this.counts[slot] = this.counts[slot]! + count;
      if (slot < this.low) this.low = slot;
      if (slot > this.high) this.high = slot;
      this.total += count;
    }
  }

  /** The number of values, and their percentile_cont(0.5) as PostgreSQL interpolates it; empties the histogram. */
  takeMedian(): { readonly known: number; readonly median: number | null } {
    const total = this.total;
    let median: number | null = null;
    if (total > 0) {
      const lowerRank = Math.floor((total - 1) * 0.5);
      const upperRank = Math.ceil((total - 1) * 0.5);
      let upTo = 0;
      let lower: number | null = null;
      for (let slot = this.low; slot <= this.high; slot += 1) {
        const count = this.counts[slot]!;
        if (count === 0) continue;
        upTo += count;
        const key = slot + this.minimum;
        if (lower === null && upTo > lowerRank) lower = key;
        if (upTo > upperRank) {
          median = lower === key ? key : lower! + 0.5 * (key - lower!);
          break;
        }
      }
      this.counts.fill(0, this.low, this.high + 1);
    }
    this.low = Number.POSITIVE_INFINITY;
    this.high = Number.NEGATIVE_INFINITY;
    this.total = 0;
    return { known: total, median };
  }
}

/** A dense histogram spanning every key of these packed histograms. */
function denseHistogramFor({ keys }: PackedHistograms): DenseHistogram {
  let minimum = 0;
  let maximum = -1;
  for (let index = 0; index < keys.length; index += 1) {
    const key = keys[index]!;
    if (index === 0 || key < minimum) minimum = key;
    if (index === 0 || key > maximum) maximum = key;
  }
  return new DenseHistogram(minimum, maximum);
}

/** Byte order, as under the C collation (any fixed order would do for storage). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
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
  /** The numbers of the wanted categories some cell has (a category no cell has can match nothing). */
  readonly categoryList: readonly number[];
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

/** Age-sorted cells and the running sum of their encounters: a band's size without visiting it. */
interface CellRun {
  readonly cells: AgeSortedCells;
  /** `encountersBefore[i]`: the encounters of cells[0..i-1]; one longer than `cells`. */
  readonly encountersBefore: Float64Array;
}

function ageSorted(cells: IndexedCell[]): CellRun {
  cells.sort((a, b) => a.ageYears - b.ageYears);
  const encountersBefore = new Float64Array(cells.length + 1);
  cells.forEach((cell, index) => {
    encountersBefore[index + 1] = encountersBefore[index]! + cell.encounters;
  });
  return { cells, encountersBefore };
}

/** Cells by age, all of them and per sex. */
interface SexAndAgeRuns {
  readonly all: CellRun;
  readonly bySex: ReadonlyMap<string, CellRun>;
}

function sexAndAgeRuns(cells: readonly IndexedCell[]): SexAndAgeRuns {
  const bySex = new Map<string, IndexedCell[]>();
  for (const cell of cells) {
    const list = bySex.get(cell.sex);
    if (list) list.push(cell);
    else bySex.set(cell.sex, [cell]);
  }
  return { all: ageSorted([...cells]), bySex: new Map([...bySex].map(([sex, list]) => [sex, ageSorted(list)])) };
}

/** Part of an age-sorted run: positions `from` (inclusive) to `to` (exclusive), and their encounters. */
interface RunSlice {
  readonly cells: AgeSortedCells;
  readonly from: number;
  readonly to: number;
  readonly encounters: number;
}

const emptySlice: RunSlice = { cells: [], from: 0, to: 0, encounters: 0 };

/** The cells of one sex (null: any) within an age band: a binary search and a slice of the age-sorted cells. */
function bandOf(runs: SexAndAgeRuns | undefined, sex: string | null, ageMin: number, ageMax: number): RunSlice {
  const run = runs === undefined ? undefined : sex === null ? runs.all : runs.bySex.get(sex);
  if (!run) return emptySlice;
  const from = Number.isFinite(ageMin) ? firstAtLeast(run.cells, ageMin) : 0;
  const to = Number.isFinite(ageMax) ? firstAtLeast(run.cells, ageMax + 1) : run.cells.length;
  return { cells: run.cells, from, to, encounters: to > from ? run.encountersBefore[to]! - run.encountersBefore[from]! : 0 };
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

/**
 * A cohort's statistics that keep their items as one typed array (item indexes, then their encounters) instead of an
 * object per item: a cache holds thousands of cohorts of a few hundred items each, and the collector would otherwise
 * mark every one of those objects at each major collection. `items` is built when read, and kept only as long as
 * something else holds it (a WeakRef): a hook whose cards come from the card cache never reads it.
 */
function packedStatistics(size: number, table: readonly SnapshotItem[], packedItems: Int32Array, outcomes: OutcomeStatistics): CohortStatistics {
  let built: WeakRef<readonly ItemCount[]> | undefined;
  const unpack = (): readonly ItemCount[] => {
    const count = packedItems.length / 2;
    const items: ItemCount[] = new Array(count);
    for (let at = 0; at < count; at += 1) {
      const item = table[packedItems[at]!]!;
      items[at] = {
        itemCode: item.itemCode,
        category: item.category,
        kind: item.kind,
        display: item.display,
        codeSystem: item.codeSystem,
        code: item.code,
        encounters: packedItems[count + at]!,
      };
    }
    return items;
  };
  return {
    size,
    // An own, enumerable accessor: spreading, JSON and deep equality see the items as if they were a plain field.
    get items(): readonly ItemCount[] {
      let items = built?.deref();
      if (items === undefined) {
        items = unpack();
        built = new WeakRef(items);
      }
      return items;
    },
    outcomes,
  };
}

/** One generation's aggregates in memory, answering the criteria it can answer exactly. */
export class AggregateSnapshot {
  /** Per complaint concept: its cells by age, and per sex its cells by age. */
  private readonly index = new Map<string, SexAndAgeRuns>();
  /** The newest start year with encounters: what a look-back window without a reference year counts back from. */
  private readonly newestStartYear: number | null;
  /** Every ICD-10 category of any cell, numbered. */
  private readonly categoryIds = new Map<string, number>();
  /**
   * Per complaint concept, per category number: the cells having it by age, and per sex by age (what an ICD-10
   * criterion walks): the age band within one is a binary search, so a walk visits only cells of the band.
   */
  private readonly postings = new Map<string, Map<number, SexAndAgeRuns>>();
  /** How many ICD-10 walks went over the age band, and how many over the posting lists (tests, the benchmark). */
  readonly walks = { band: 0, postings: 0 };
  /** Scratch histograms of the lengths of stay, reused by every describe (one call at a time: all of it is synchronous). */
  private readonly edScratch: DenseHistogram;
  private readonly hospitalScratch: DenseHistogram;
  /** Every cell's item counts and stays, packed in storage order. */
  private readonly items: PackedHistograms;
  private readonly edLengthOfStay: PackedHistograms;
  private readonly hospitalLengthOfStay: PackedHistograms;
  /** Per cell serial, the walk that last saw it (`walk`), so a cell on several posting lists is tested once. */
  private readonly seenInWalk: Uint32Array;
  private walk = 0;

  /** The generation's header, items and baseline; its cells live on only as the index and the packed histograms. */
  private readonly data: Omit<AggregateSnapshotData, 'cells'>;

  constructor(data: AggregateSnapshotData) {
    const { cells: _cells, ...header } = data;
    this.data = header;
    let newest: number | null = null;
    const byConcept = new Map<string, IndexedCell[]>();
    const stored = [...data.cells].sort(
      (a, b) => compareText(a.complaintConcept, b.complaintConcept) || compareText(a.sex, b.sex) || a.ageYears - b.ageYears,
    );
    stored.forEach((cell, serial) => {
      const categoryIds = Int32Array.from(new Set(cell.icd10Categories), (category) => {
        let id = this.categoryIds.get(category);
        if (id === undefined) this.categoryIds.set(category, (id = this.categoryIds.size));
        return id;
      });
      const indexed: IndexedCell = {
        complaintConcept: cell.complaintConcept,
        sex: cell.sex,
        ageYears: cell.ageYears,
        acuity: cell.acuity,
        site: cell.site,
        startYear: cell.startYear,
        encounters: cell.encounters,
        admitted: cell.admitted,
        returned72h: cell.returned72h,
        categoryIds,
        serial,
      };
      const list = byConcept.get(cell.complaintConcept);
      if (list) list.push(indexed);
      else byConcept.set(cell.complaintConcept, [indexed]);
      if (cell.encounters > 0 && (newest === null || cell.startYear > newest)) newest = cell.startYear;
    });
    for (const [concept, cells] of byConcept) {
      const byCategory = new Map<number, IndexedCell[]>();
      for (const cell of cells) {
        for (const id of cell.categoryIds) {
          const posting = byCategory.get(id);
          if (posting) posting.push(cell);
          else byCategory.set(id, [cell]);
        }
      }
      this.index.set(concept, sexAndAgeRuns(cells));
      this.postings.set(concept, new Map([...byCategory].map(([id, posting]) => [id, sexAndAgeRuns(posting)])));
    }
    this.newestStartYear = newest;
    this.seenInWalk = new Uint32Array(data.cells.length);
    this.items = packed(stored.map((cell) => cell.items));
    this.edLengthOfStay = packed(stored.map((cell) => cell.edLengthOfStay));
    this.hospitalLengthOfStay = packed(stored.map((cell) => cell.hospitalLengthOfStay));
    this.edScratch = denseHistogramFor(this.edLengthOfStay);
    this.hospitalScratch = denseHistogramFor(this.hospitalLengthOfStay);
  }

  get generation(): number {
    return this.data.generation;
  }

  /** Whether these criteria can be answered from the cells exactly (else: the exact scan). */
  answers(criteria: CohortCriteria): boolean {
    return aggregatesAnswer(criteria, this.data);
  }

  private wantedCategories(criteria: CohortCriteria): Pick<PreparedCriteria, 'categories' | 'categoryCount' | 'categoryList'> {
    if (criteria.icd10 === null) return { categories: null, categoryCount: 0, categoryList: [] };
    const wanted = new Set(criteria.icd10.codes.map((code) => code.slice(0, 3)));
    const flags = new Uint8Array(this.categoryIds.size);
    const list: number[] = [];
    for (const category of wanted) {
      const id = this.categoryIds.get(category);
      if (id === undefined) continue;
      flags[id] = 1;
      list.push(id);
    }
    return { categories: flags, categoryCount: wanted.size, categoryList: list };
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

  /** The cells within the concept, sex and age band given; the caller tests the rest. */
  private candidates(concept: string, sex: string | null, ageMin: number, ageMax: number): RunSlice {
    return bandOf(this.index.get(concept), sex, ageMin, ageMax);
  }

  /**
   * The cells of an ICD-10 criterion: a matching cell shares at least one wanted category (`any`, and `jaccard` > 0)
   * or has them all (`all`), so walking the wanted categories' posting lists within the sex and age band finds every
   * one, each tested once; or the age band itself is walked, whichever is shorter.
   */
  private cellsByCategory(prepared: PreparedCriteria, visit: (cell: IndexedCell) => void): void {
    const postings = this.postings.get(prepared.concept);
    if (!postings) return;
    const all = prepared.overlap.measure === 'all';
    // Every wanted category must be there: a category no cell of the concept has leaves nothing.
    if (all && prepared.categoryList.length < prepared.categoryCount) return;
    let slices: RunSlice[] = [];
    for (const id of prepared.categoryList) {
      const slice = bandOf(postings.get(id), prepared.sex, prepared.ageMin, prepared.ageMax);
      if (slice.to > slice.from) slices.push(slice);
      else if (all) return;
    }
    // With `all`, one list (the shortest) holds every candidate.
    if (all && slices.length > 1) slices = [slices.reduce((shortest, slice) => (slice.to - slice.from < shortest.to - shortest.from ? slice : shortest))];
    // Common categories (hypertension, say) are on most cells of the band: then the band is the shorter walk.
    const band = this.candidates(prepared.concept, prepared.sex, prepared.ageMin, prepared.ageMax);
    const postingLength = slices.reduce((sum, slice) => sum + slice.to - slice.from, 0);
    if (band.to - band.from <= postingLength) {
      this.walks.band += 1;
      for (let position = band.from; position < band.to; position += 1) {
        if (cellMatches(band.cells[position]!, prepared)) visit(band.cells[position]!);
      }
      return;
    }
    this.walks.postings += 1;
    this.walk = (this.walk + 1) >>> 0;
    if (this.walk === 0) {
      this.seenInWalk.fill(0);
      this.walk = 1;
    }
    for (const { cells, from, to } of slices) {
      for (let position = from; position < to; position += 1) {
        const cell = cells[position]!;
        if (this.seenInWalk[cell.serial] === this.walk) continue;
        this.seenInWalk[cell.serial] = this.walk;
        if (cellMatches(cell, prepared)) visit(cell);
      }
    }
  }

  /** The cells of a cohort; the criteria must be answerable. */
  private cellsOf(criteria: CohortCriteria): IndexedCell[] {
    const prepared = this.prepare(criteria);
    if (prepared === null) return [];
    const matching: IndexedCell[] = [];
    if (prepared.categories !== null && prepared.categoryCount > 0) {
      this.cellsByCategory(prepared, (cell) => matching.push(cell));
      return matching;
    }
    const { cells, from, to } = this.candidates(prepared.concept, prepared.sex, prepared.ageMin, prepared.ageMax);
    for (let position = from; position < to; position += 1) {
      if (cellMatches(cells[position]!, prepared)) matching.push(cells[position]!);
    }
    return matching;
  }

  /**
   * The size of each cohort; every criteria must be answerable. Rungs with an ICD-10 criterion walk its categories'
   * cells; the others share their concept and widen step by step, so their widest band is visited once for all.
   */
  countCohorts(criteria: readonly CohortCriteria[]): number[] {
    const sizes = criteria.map(() => 0);
    const byConcept = new Map<string, { readonly index: number; readonly prepared: PreparedCriteria }[]>();
    criteria.forEach((one, index) => {
      const prepared = this.prepare(one);
      if (prepared === null) return;
      if (prepared.categories !== null && prepared.categoryCount > 0) {
        this.cellsByCategory(prepared, (cell) => {
          sizes[index] = sizes[index]! + cell.encounters;
        });
        return;
      }
      if (prepared.categories === null && prepared.acuity === null && prepared.sites === null && prepared.oldestExcluded === null) {
        // Only concept, sex and age: the band's running sums give its size at once.
        sizes[index] = this.candidates(prepared.concept, prepared.sex, prepared.ageMin, prepared.ageMax).encounters;
        return;
      }
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
    for (const cell of this.cellsOf(criteria)) {
      size += cell.encounters;
      admitted += cell.admitted;
      returned72h += cell.returned72h;
      const { start, keys, counts } = this.items;
      for (let index = start[cell.serial]!, end = start[cell.serial + 1]!; index < end; index += 1) {
        const count = counts[index]!;
        if (count <= 0) continue;
        const key = keys[index]!;
        if (itemTotals[key] === 0) touched.push(key);
        itemTotals[key] = itemTotals[key]! + count;
      }
      this.edScratch.add(this.edLengthOfStay, cell.serial);
      this.hospitalScratch.add(this.hospitalLengthOfStay, cell.serial);
    }
    // Taken (and the scratch emptied) before anything can return.
    const ed = this.edScratch.takeMedian();
    const hospital = this.hospitalScratch.takeMedian();
    for (const index of touched) if (!this.data.items[index]!.uniform) return null;
    // The SQL's order: most encounters first, then the item code (byte order, as under the C collation).
    const table = this.data.items;
    touched.sort((a, b) => itemTotals[b]! - itemTotals[a]! || compareText(table[a]!.itemCode, table[b]!.itemCode));
    const packedItems = new Int32Array(touched.length * 2);
    touched.forEach((index, at) => {
      packedItems[at] = index;
      packedItems[touched.length + at] = itemTotals[index]!;
    });
    return packedStatistics(size, table, packedItems, {
      admitted,
      returned72h,
      edLosMedianMinutes: ed.median,
      edLosKnown: ed.known,
      hospitalLosMedianMinutes: hospital.median,
      hospitalLosKnown: hospital.known,
    });
  }

  describeBaseline(): BaselineStatistics {
    return { size: this.data.encounters, items: this.data.baseline };
  }
}
