/**
 * Incremental loads on the real MIMIC demo: the demo split in two by patient, ingested one part after the other
 * (a later day's export), ends with the cohort one ingest of the whole demo gives, without reloading the first
 * part; a re-sent patient record replaces the earlier version of its encounters; and a running service sees the
 * new encounters within its cache's refresh (the reference TTL), without a restart.
 */
import { readdir, readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { buildApp } from '../../src/app.js';
import { buildConfig } from '../../src/config.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import type { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';
import { cohortContent, duplicatedRows } from './cohort-content.js';
import { patientIdOfResource } from '../../src/ingest/batch-work.js';

const hasher = createKeyHasher('incremental-test-secret-0123456789abcdef');
type Json = Record<string, any>;


/** Writes the demo's lines for which `keep(resource)` holds into `directory`, file by file. */
async function writeDemoPart(directory: string, keep: (resource: Json) => boolean): Promise<void> {
  await mkdir(directory, { recursive: true });
  for (const file of await readdir(mimicDemoDirectory)) {
    if (!file.endsWith('.ndjson.gz')) continue;
    const lines = gunzipSync(await readFile(path.join(mimicDemoDirectory, file))).toString('utf8').split('\n').filter((line) => line.trim());
    await writeFile(path.join(directory, file), gzipSync(lines.filter((line) => keep(JSON.parse(line) as Json)).join('\n')));
  }
}

describe('incremental ingest', () => {
  let scratch: string;
  let whole: Awaited<ReturnType<typeof openTestDatabase>>;
  let daily: Awaited<ReturnType<typeof openTestDatabase>>;
  let firstPatients: Set<string>;
  let firstFolder: string;
  let secondFolder: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'cohort-incremental-'));
    const patientIds = gunzipSync(await readFile(path.join(mimicDemoDirectory, 'MimicPatient.ndjson.gz')))
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => (JSON.parse(line) as Json).id as string)
      .sort();
    firstPatients = new Set(patientIds.slice(0, Math.floor(patientIds.length / 2)));
    firstFolder = path.join(scratch, 'day-1');
    secondFolder = path.join(scratch, 'day-2');
    // Resources of no patient (locations, organizations) come in both exports, as a daily export repeats them.
    await writeDemoPart(firstFolder, (resource) => patientIdOfResource(resource) === null || firstPatients.has(patientIdOfResource(resource)!));
    await writeDemoPart(secondFolder, (resource) => patientIdOfResource(resource) === null || !firstPatients.has(patientIdOfResource(resource)!));
    whole = await openReferenceDatabase();
    await ingestPaths(whole.db, [mimicDemoDirectory], { hasher });
    daily = await openReferenceDatabase();
    await seedDefaultRuleSet(daily.db);
  }, 600_000);

  afterAll(async () => {
    await whole?.close();
    await daily?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('adds a later export to the cohort without reloading the earlier one, and the cards follow', async () => {
    const first = await ingestPaths(daily.db, [firstFolder], { hasher });
    expect(first.loaded.encounters).toBeGreaterThan(50);
    const loadedAt = await sql<{ key: string; at: string }>`select encounter_key as key, ingested_at::text as at from cohort_encounter`.execute(daily.db);

    // A service over the same database, its caches kept for 300 ms; it must see day 2 without a restart.
    const referenceTtlMs = 300;
    const config = buildConfig({ loadDemoCohort: false });
    const app = await buildApp(config, { database: daily, referenceTtlMs, now: () => new Date('2026-11-23T12:00:00Z') });
    try {
      await app.ready();
      const before = await app.cohortSource.describeBaseline();

      const second = await ingestPaths(daily.db, [secondFolder], { hasher });
      expect(second.loaded.encounters).toBeGreaterThan(50);
      expect(first.loaded.encounters + second.loaded.encounters).toBe((await cohortContent(whole.db)).cohort_encounter.length);
      // Day 1's rows were not written again: their load time is what it was.
      const after = await sql<{ key: string; at: string }>`select encounter_key as key, ingested_at::text as at from cohort_encounter`.execute(daily.db);
      const afterByKey = new Map(after.rows.map((row) => [row.key, row.at]));
      expect(loadedAt.rows.filter((row) => afterByKey.get(row.key) !== row.at)).toEqual([]);

      const [expected, actual] = await Promise.all([cohortContent(whole.db), cohortContent(daily.db)]);
      for (const table of Object.keys(expected) as Array<keyof typeof expected>) {
        expect(duplicatedRows(actual[table])).toEqual([]);
        expect({ table, rows: actual[table] }).toEqual({ table, rows: expected[table] });
      }

      // What the service promises: nothing older than its reference TTL, nor than one poll of the aggregates' data
      // version (an ingest by another process is seen at the next poll; waiting the TTL alone raced the poll).
      await new Promise((resolve) => setTimeout(resolve, Math.max(referenceTtlMs, config.aggregatePollMs) + 200));
      const refreshed = await app.cohortSource.describeBaseline();
      expect(refreshed).not.toEqual(before);
      expect(refreshed).toEqual(await app.cohortSource.describeBaseline());
      expect(before.size).toBe(first.loaded.encounters);
      expect(refreshed.size).toBe(first.loaded.encounters + second.loaded.encounters);
    } finally {
      await app.close();
    }
  }, 600_000);

  it('replaces the earlier version of a re-sent patient record instead of adding to it', async () => {
    // Day 3 re-sends one patient of day 1 with every resource of theirs, one visit's disposition corrected.
    const patientId = [...firstPatients].sort()[0]!;
    const stays = gunzipSync(await readFile(path.join(mimicDemoDirectory, 'MimicEncounterED.ndjson.gz')))
      .toString('utf8')
      .split('\n')
      .filter((line) => line.includes(patientId))
      .map((line) => JSON.parse(line) as Json);
    expect(stays.length).toBeGreaterThan(0);
    const corrected = stays[0]!;
    const thirdFolder = path.join(scratch, 'day-3');
    await writeDemoPart(thirdFolder, (resource) => patientIdOfResource(resource) === patientId);
    const encounterFile = path.join(thirdFolder, 'MimicEncounterED.ndjson.gz');
    const rewritten = gunzipSync(await readFile(encounterFile))
      .toString('utf8')
      .split('\n')
      .map((line) => {
        const resource = JSON.parse(line) as Json;
        if (resource.id !== corrected.id) return line;
        return JSON.stringify({ ...resource, hospitalization: { ...resource.hospitalization, dischargeDisposition: { coding: [{ code: 'TRANSFER', display: 'Transfer' }] } } });
      });
    await writeFile(encounterFile, gzipSync(rewritten.join('\n')));

    const before = await cohortContent(daily.db);
    const report = await ingestPaths(daily.db, [thirdFolder], { hasher });
    expect(report.loaded.encounters).toBe(stays.length);
    const after = await cohortContent(daily.db);
    expect(after.cohort_encounter).toHaveLength(before.cohort_encounter.length);
    expect(duplicatedRows(after.encounter_item)).toEqual([]);
    expect(after.encounter_item).toEqual(before.encounter_item);
    expect(after.lab_draw).toEqual(before.lab_draw);
    // Exactly one encounter row differs, and it now carries the corrected disposition.
    const removed = before.cohort_encounter.filter((row) => !after.cohort_encounter.includes(row));
    const added = after.cohort_encounter.filter((row) => !before.cohort_encounter.includes(row));
    expect(removed).toHaveLength(1);
    expect(added).toHaveLength(1);
    expect(added[0]).toContain('TRANSFER');
    expect(added[0]!.split(',')[0]).toBe(removed[0]!.split(',')[0]);
  }, 600_000);
});
