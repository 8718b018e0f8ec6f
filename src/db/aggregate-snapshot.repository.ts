import { sql, type Kysely } from 'kysely';
import type { AggregateSnapshotData, Histogram, SnapshotCell, SnapshotItem } from '../cohort/aggregate-snapshot.js';
import type { ItemCategory } from '../cohort/types.js';
import { aggregateDataVersion, findUsableGeneration } from './cohort-aggregate.repository.js';
import type { Database } from './database.js';

/** What a process holds of the aggregates: their data version, and the usable generation's contents (null: none). */
export interface LoadedAggregates {
  readonly version: string;
  readonly data: AggregateSnapshotData | null;
}

interface CellRow {
  cell_id: string;
  complaint_concept: string;
  sex: string;
  age_years: number;
  acuity: number | null;
  site: string;
  start_year: number;
  icd10_categories: string[];
  encounters: number;
  admitted: number;
  returned_72h: number;
}

/** Builds the histogram of each cell from (cell, key, count) rows, in key order. */
function histograms(rows: readonly { cell: string; key: number; count: number }[]): Map<string, Histogram> {
  const byCell = new Map<string, { keys: number[]; counts: number[] }>();
  for (const row of rows) {
    let entry = byCell.get(row.cell);
    if (!entry) byCell.set(row.cell, (entry = { keys: [], counts: [] }));
    entry.keys.push(row.key);
    entry.counts.push(row.count);
  }
  const result = new Map<string, Histogram>();
  for (const [cell, { keys, counts }] of byCell) {
    const order = keys.map((_, index) => index).sort((a, b) => keys[a]! - keys[b]!);
    result.set(cell, { keys: Int32Array.from(order, (index) => keys[index]!), counts: Int32Array.from(order, (index) => counts[index]!) });
  }
  return result;
}

/**
 * Cells whose items and stays are read by one query. Small enough that one range's rows (as objects) die young: with
 * 2,000 cells a range of the 1M cohort was about 330,000 rows (its 2.2M counts over 7 ranges), which outlived the
 * young generation and left ~220 MB of garbage in the old one after the load (heap used 294 MB, 74 MB of it live,
 * resident 404 MB with the service idle; measured 2026-12-02). 250 cells are about 40,000 rows and 54 ranges at 1M.
 */
const cellsPerRead = 250;

const emptyHistogram: Histogram = { keys: new Int32Array(0), counts: new Int32Array(0) };

/**
 * Reads the usable aggregate generation whole, in one repeatable-read transaction so that the cells, items and
 * histograms agree with each other and with the version read beside them (an opt-out may be subtracting meanwhile).
 */
export async function loadAggregateSnapshot(db: Kysely<Database>): Promise<LoadedAggregates> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const version = await aggregateDataVersion(trx);
      const generation = await findUsableGeneration(trx);
      if (generation === null) return { version, data: null };
      const id = generation.generation;
      const [header, cells, details, baseline] = await Promise.all([
        sql<{ encounters: number }>`select encounters from cohort_aggregate_generation where generation = ${id}`.execute(trx),
        sql<CellRow>`
          select cast(cell_id as text) as cell_id, complaint_concept, sex, age_years, acuity, site, start_year, icd10_categories,
            encounters, admitted, returned_72h
          from cohort_aggregate_cell as cell where generation = ${id} order by cell.cell_id`.execute(trx),
        sql<{ item_code: string; category: ItemCategory; kind: string; display: string; code_system: string | null; code: string | null; uniform: boolean }>`
          select item_code, category, kind, display, code_system, code, uniform
          from cohort_aggregate_item_detail where generation = ${id} order by item_code`.execute(trx),
        sql<{ item_code: string; encounters: number }>`
          select item_code, encounters from cohort_aggregate_baseline_item
          where generation = ${id} and encounters > 0 order by encounters desc, item_code`.execute(trx),
      ]);
      // Ordered by the bigint column (the text alias would sort '1000' before '999'), so each range below is contiguous.
      // Items and stays are the bulk (hundreds of thousands of rows at a million encounters): read by ranges of cells
      // along their primary keys, so that no single query outlasts the pool's query timeout however large the cohort.
      const itemList: SnapshotItem[] = details.rows.map((row) => ({
        itemCode: row.item_code,
        category: row.category,
        kind: row.kind,
        display: row.display,
        codeSystem: row.code_system,
        code: row.code,
        uniform: row.uniform,
      }));
      const itemIndex = new Map(itemList.map((item, index) => [item.itemCode, index]));
      // Each range's rows become the typed histograms of its cells at once, so the rows of one range at most are
      // held as objects (the resident peak of a reload stays small however large the cohort).
      const itemHistograms = new Map<string, Histogram>();
      const edHistograms = new Map<string, Histogram>();
      const hospitalHistograms = new Map<string, Histogram>();
      for (let start = 0; start < cells.rows.length; start += cellsPerRead) {
        const first = cells.rows[start]!.cell_id;
        const last = cells.rows[Math.min(start + cellsPerRead, cells.rows.length) - 1]!.cell_id;
        const [itemRange, stayRange] = await Promise.all([
          sql<{ cell_id: string; item_code: string; encounters: number }>`
            select cast(cell_id as text) as cell_id, item_code, encounters from cohort_aggregate_item
            where cell_id between cast(${first} as bigint) and cast(${last} as bigint) and generation = ${id} and encounters > 0`.execute(trx),
          sql<{ cell_id: string; kind: 'ed' | 'hospital'; minutes: number; encounters: number }>`
            select cast(cell_id as text) as cell_id, kind, minutes, encounters from cohort_aggregate_length_of_stay
            where cell_id between cast(${first} as bigint) and cast(${last} as bigint) and generation = ${id} and encounters > 0`.execute(trx),
        ]);
        // An item without a detail row cannot be shown (the SQL path's join drops it too).
        const itemRows = itemRange.rows.flatMap((row) => {
          const key = itemIndex.get(row.item_code);
          return key === undefined ? [] : [{ cell: row.cell_id, key, count: Number(row.encounters) }];
        });
        const stayRows = (kind: 'ed' | 'hospital') =>
          stayRange.rows.filter((row) => row.kind === kind).map((row) => ({ cell: row.cell_id, key: Number(row.minutes), count: Number(row.encounters) }));
        for (const [cell, histogram] of histograms(itemRows)) itemHistograms.set(cell, histogram);
        for (const [cell, histogram] of histograms(stayRows('ed'))) edHistograms.set(cell, histogram);
        for (const [cell, histogram] of histograms(stayRows('hospital'))) hospitalHistograms.set(cell, histogram);
      }
      const snapshotCells: SnapshotCell[] = cells.rows.map((row) => ({
        complaintConcept: row.complaint_concept,
        sex: row.sex,
        ageYears: Number(row.age_years),
        acuity: row.acuity === null ? null : Number(row.acuity),
        site: row.site,
        startYear: Number(row.start_year),
        icd10Categories: row.icd10_categories,
        encounters: Number(row.encounters),
        admitted: Number(row.admitted),
        returned72h: Number(row.returned_72h),
        items: itemHistograms.get(row.cell_id) ?? emptyHistogram,
        edLengthOfStay: edHistograms.get(row.cell_id) ?? emptyHistogram,
        hospitalLengthOfStay: hospitalHistograms.get(row.cell_id) ?? emptyHistogram,
      }));
      return {
        version,
        data: {
          generation: id,
          bySite: generation.bySite,
          byStartYear: generation.byStartYear,
          encounters: Number(header.rows[0]?.encounters ?? 0),
          cells: snapshotCells,
          items: itemList,
          baseline: new Map(baseline.rows.map((row) => [row.item_code, Number(row.encounters)])),
        },
      };
    });
}
