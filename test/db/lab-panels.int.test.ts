/**
 * Lab panels from pair counts made in one pass over the draws (countAnalytePairs) instead of a self-join of lab_draw,
 * and from a sample of the encounters with the smallest keys when the cohort is larger than the sample: on the
 * MIMIC-IV ED demo, the same counts and panels as the self-join over the same encounters.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { countAnalytePairs, derivePanels, rebuildLabPanels } from '../../src/db/cohort-encounter.repository.js';
import type { Database } from '../../src/db/database.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { openTestDatabase } from '../helpers/database.js';

/**
 * What rebuildLabPanels counted before: a self-join of the draws' analytes (one row per analyte of each draw, as
 * lab_draw once held them), over the encounters with a key up to `bound`.
 */
async function selfJoinCounts(db: Kysely<Database>, bound: string | null) {
  const within = bound === null ? sql`true` : sql`draw.encounter_key <= ${bound}`;
  const perAnalyte = sql`(select encounter_key, draw_key, unnest(analyte_codes) as analyte_code from lab_draw)`;
  const analytes = await sql<{ code: string; display: string | null; draws: number }>`
    select draw.analyte_code as code, min(item.display) as display, cast(count(*) as integer) as draws
    from ${perAnalyte} as draw
    left join (
      select item_code, min(display) as display from encounter_item
      where kind = 'lab' and ${bound === null ? sql`true` : sql`encounter_key <= ${bound}`} group by item_code
    ) as item on item.item_code = draw.analyte_code
    where ${within}
    group by draw.analyte_code`.execute(db);
  const pairs = await sql<{ a: string; b: string; shared: number }>`
    select draw.analyte_code as a, second.analyte_code as b, cast(count(*) as integer) as shared
    from ${perAnalyte} as draw
    join ${perAnalyte} as second
      on second.encounter_key = draw.encounter_key and second.draw_key = draw.draw_key and second.analyte_code > draw.analyte_code
    where ${within}
    group by draw.analyte_code, second.analyte_code`.execute(db);
  return {
    analytes: analytes.rows.map((row) => ({ code: row.code, display: row.display ?? row.code, draws: Number(row.draws) })),
    pairs: pairs.rows.map((row) => ({ a: row.a, b: row.b, shared: Number(row.shared) })),
  };
}

const byPair = (pairs: readonly { a: string; b: string; shared: number }[]) =>
  new Map(pairs.map(({ a, b, shared }) => [a < b ? `${a} ${b}` : `${b} ${a}`, shared]));

describe('lab panels on the MIMIC-IV ED demo', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;

  beforeAll(async () => {
    database = await openTestDatabase();
    await seedDefaultRuleSet(database.db);
    await ensureReferenceData(database.db);
    await ingestPaths(database.db, [mimicDemoDirectory], { hasher: createKeyHasher('test-secret-test-secret-test-secret-0123') });
  }, 180_000);

  afterAll(async () => {
    await database?.close();
  });

  it('counts draws and pairs in one pass exactly as the self-join does', async () => {
    const reference = await selfJoinCounts(database.db, null);
    expect(reference.pairs.length).toBeGreaterThan(100);
    const draws = await sql<{ analytes: string[] }>`select array_to_json(analyte_codes) as analytes from lab_draw`.execute(database.db);
    const counted = countAnalytePairs(draws.rows.map((row) => row.analytes));
    expect(byPair(counted.pairs)).toEqual(byPair(reference.pairs));
    expect(new Map(counted.draws)).toEqual(new Map(reference.analytes.map((analyte) => [analyte.code, analyte.draws])));
  });

  it('derives the panels of the whole cohort when it is no larger than the sample', async () => {
    const reference = await selfJoinCounts(database.db, null);
    const expected = derivePanels(reference.analytes, reference.pairs);
    expect(expected.length).toBeGreaterThan(5);
    expect(await rebuildLabPanels(database.db)).toEqual(expected);
    const stored = await database.db.selectFrom('lab_panel').select(['panel_code', 'analyte_codes']).orderBy('panel_code').execute();
    expect(stored).toEqual([...expected].sort((x, y) => (x.panelCode < y.panelCode ? -1 : 1)).map((panel) => ({ panel_code: panel.panelCode, analyte_codes: panel.analyteCodes })));
  });

  it('derives them from the encounters with the smallest keys when the cohort is larger than the sample', async () => {
    const keys = await database.db.selectFrom('cohort_encounter').select('encounter_key').orderBy('encounter_key').execute();
    const bound = keys[59]!.encounter_key;
    const reference = await selfJoinCounts(database.db, bound);
    const expected = derivePanels(reference.analytes, reference.pairs);
    const whole = await selfJoinCounts(database.db, null);
    // The sample sees other panels than the whole cohort: it is no copy of the first test.
    expect(expected).not.toEqual(derivePanels(whole.analytes, whole.pairs));
    expect(await rebuildLabPanels(database.db, { sampleEncounters: 60 })).toEqual(expected);
    // Back to the whole cohort for whatever runs next.
    await rebuildLabPanels(database.db);
  });
});
