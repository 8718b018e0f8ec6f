/**
 * The reputation recompute reads the cohort in chunks, in two passes, so that an ingest runs in bounded memory: on
 * the MIMIC-IV ED demo, with a chunk of 7 encounters (dozens of chunks), it equals `computeReputation` over the
 * whole cohort loaded at once, to the last bit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { loadEvaluationEncounters, readEvaluationEncounterChunks, type EvaluationEncounter } from '../../src/db/evaluation-data.repository.js';
import { listClinicianReputations } from '../../src/db/reputation.repository.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { ensureReferenceData } from '../../src/ingest/reference-data.js';
import { recomputeClinicianReputation } from '../../src/reputation/recompute.js';
import { computeReputation, ReputationAccumulator } from '../../src/reputation/reputation.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { openTestDatabase } from '../helpers/database.js';

async function collect(chunks: AsyncIterable<EvaluationEncounter[]>): Promise<{ encounters: EvaluationEncounter[]; sizes: number[] }> {
  const encounters: EvaluationEncounter[] = [];
  const sizes: number[] = [];
  for await (const chunk of chunks) {
    sizes.push(chunk.length);
    encounters.push(...chunk);
  }
  return { encounters, sizes };
}

describe('chunked reputation recompute on the MIMIC-IV ED demo', () => {
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

  it('reads in chunks of 7 exactly the encounters loadEvaluationEncounters loads, folded the same way', async () => {
    const whole = await loadEvaluationEncounters(database.db, { foldLabPanels: true });
    const { encounters, sizes } = await collect(readEvaluationEncounterChunks(database.db, { foldLabPanels: true, chunkSize: 7 }));
    expect(sizes.length).toBeGreaterThan(20);
    expect(sizes.slice(0, -1).every((size) => size === 7)).toBe(true);
    expect(encounters).toEqual(whole);
    // Unfolded too: every analyte an item of its own.
    const analytes = await collect(readEvaluationEncounterChunks(database.db, { foldLabPanels: false, chunkSize: 7 }));
    expect(analytes.encounters).toEqual(await loadEvaluationEncounters(database.db, { foldLabPanels: false }));
  });

  it('reads for the second pass only the encounters with a clinician, with only the items that name one', async () => {
    const whole = await loadEvaluationEncounters(database.db, { foldLabPanels: true });
    const named = whole
      .filter((encounter) => (encounter.clinicianByItem?.size ?? 0) > 0)
      .map((encounter) => ({ ...encounter, items: encounter.items.filter((item) => encounter.clinicianByItem!.has(item.itemCode)) }));
    expect(named.length).toBeGreaterThan(7);
    expect(named.length).toBeLessThan(whole.length);
    const { encounters } = await collect(readEvaluationEncounterChunks(database.db, { foldLabPanels: true, chunkSize: 7, clinicianItemsOnly: true }));
    expect(encounters).toEqual(named);
  });

  it('gives exactly the summary computeReputation gives over the whole cohort, and stores it', async () => {
    const reference = computeReputation(await loadEvaluationEncounters(database.db, { foldLabPanels: true }));
    expect(reference.clinicians.length).toBeGreaterThan(0);
    const chunked = await recomputeClinicianReputation(database.db, { chunkSize: 7 });
    expect(chunked).toEqual(reference);
    expect(await listClinicianReputations(database.db)).toEqual(reference.clinicians);
    // The default chunk (the whole demo in one) agrees as well.
    expect(await recomputeClinicianReputation(database.db)).toEqual(reference);
  });

  it('gives the same reputations to the bit whatever order the encounters come in', async () => {
    const encounters = await loadEvaluationEncounters(database.db, { foldLabPanels: true });
    const reference = computeReputation(encounters);
    expect(reference.clinicians.length).toBeGreaterThan(10);
    expect(computeReputation([...encounters].reverse())).toEqual(reference);
    // A fixed shuffle (no randomness in a test): every 7th first, then the rest.
    const shuffled = [...encounters.filter((_, index) => index % 7 === 3), ...encounters.filter((_, index) => index % 7 !== 3)];
    expect(computeReputation(shuffled)).toEqual(reference);
  });

  it('tallies in SQL exactly what the chunked passes tally, also when lab analytes of one panel name different clinicians', async () => {
    // The demo names no clinician on a lab: name some, differently per analyte, so that a panel's clinician is the
    // one of its first analyte (by code) that names one, some analytes of a panel staying unnamed.
    const panel = await sql<{ panel_code: string; analyte_codes: string[] }>`
      select panel_code, analyte_codes from lab_panel order by cardinality(analyte_codes) desc, panel_code limit 1`.execute(database.db);
    const analytes = panel.rows[0]!.analyte_codes;
    expect(analytes.length).toBeGreaterThan(2);
    await sql`
      update encounter_item set clinician_key = 'lab-clinician-' || (ascii(right(encounter_key, 1)) % 5) || '-' || item_code
      where item_code = any(${sql.val(analytes.slice(1))}) and ascii(right(encounter_key, 1)) % 3 <> 0`.execute(database.db);
    const reference = computeReputation(await loadEvaluationEncounters(database.db, { foldLabPanels: true }));
    expect(reference.clinicians.some((one) => one.clinicianKey.startsWith('lab-clinician-'))).toBe(true);
    expect(await recomputeClinicianReputation(database.db, { method: 'sql' })).toEqual(reference);
    expect(await recomputeClinicianReputation(database.db, { chunkSize: 7 })).toEqual(reference);
    expect(await listClinicianReputations(database.db)).toEqual(reference.clinicians);
    // Without the item count (what the ingest asks): the same reputations, items left at 0.
    expect(await recomputeClinicianReputation(database.db, { countItems: false })).toEqual({ ...reference, items: 0 });
    await sql`update encounter_item set clinician_key = null where clinician_key like 'lab-clinician-%'`.execute(database.db);
  });

  it('without any clinician on an item, rates no one, stores none, and counts the cohort as before', async () => {
    await sql`update encounter_item set clinician_key = null`.execute(database.db);
    const reference = computeReputation(await loadEvaluationEncounters(database.db, { foldLabPanels: true }));
    expect(reference.clinicians).toEqual([]);
    expect(reference.items).toBeGreaterThan(0);
    expect(await recomputeClinicianReputation(database.db, { chunkSize: 7 })).toEqual(reference);
    expect(await recomputeClinicianReputation(database.db, { method: 'sql' })).toEqual(reference);
    expect(await listClinicianReputations(database.db)).toEqual([]);
  });
});

describe('ReputationAccumulator', () => {

  it('refuses consensus once the tallies have begun', () => {
    const accumulator = new ReputationAccumulator();
    const encounter = { complaintConcepts: ['abdominal-pain'], returned72h: false, items: [{ itemCode: 'a' }], clinicianByItem: new Map([['a', 'c1']]) };
    accumulator.addToConsensus(encounter);
    accumulator.addToTallies(encounter);
    expect(() => accumulator.addToConsensus(encounter)).toThrow(/consensus/);
  });
});
