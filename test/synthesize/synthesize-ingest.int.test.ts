import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths, type IngestReport } from '../../src/ingest/ingest.js';
import { synthesizeCohort } from '../../src/synthesize/synthesize.js';
import { loadTemplates } from '../../src/synthesize/templates.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import type { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

describe('a synthesized cohort through the ingest', () => {
  let directory: string;
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let report: IngestReport;
  const encounters = 250;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-synthesize-ingest-'));
    await synthesizeCohort({ templates: await loadTemplates([mimicDemoDirectory]), encounters, seed: 21, outDirectory: directory, gzipLevel: 1 });
    database = await openReferenceDatabase();
    report = await ingestPaths(database.db, [directory], {
      hasher: createKeyHasher('synthesize-secret-synthesize-secret-0123'),
      stagingDirectory: path.join(directory, 'staging'),
      ...(database.url ? { databaseUrl: database.url } : {}),
    });
  }, 180_000);
  afterAll(async () => {
    await database?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it('loads every synthesized encounter and skips nothing', () => {
    expect(report.read.files).toBeGreaterThanOrEqual(6);
    expect(report.skipped.lines).toBe(0);
    expect(report.malformed).toEqual([]);
    expect(report.skipped.encounters).toBe(0);
    expect(report.loaded.encounters).toBe(encounters);
    expect(report.loaded.items).toBeGreaterThan(5 * encounters);
    expect(report.loaded.draws).toBeGreaterThan(encounters);
  });

  it('stores what the cards count: complaints, returns within 72 hours, admissions, clinicians', async () => {
    const { rows } = await sql<{ encounters: number; mapped: number; returns: number; admitted: number; patients: number; icd10: number }>`
      select count(*)::int as encounters,
             count(*) filter (where cardinality(complaint_concepts) > 0)::int as mapped,
             count(*) filter (where returned_72h)::int as returns,
             count(*) filter (where admitted)::int as admitted,
             count(distinct patient_key)::int as patients,
             count(*) filter (where cardinality(icd10_codes) > 0)::int as icd10
      from cohort_encounter`.execute(database.db);
    const row = rows[0]!;
    expect(row.encounters).toBe(encounters);
    expect(row.mapped / encounters).toBeGreaterThan(0.8);
    expect(row.returns).toBeGreaterThan(0);
    expect(row.admitted / encounters).toBeGreaterThan(0.2);
    expect(row.patients).toBeLessThan(encounters);
    expect(row.icd10 / encounters).toBeGreaterThan(0.9);
    const clinicians = await sql<{ clinicians: number }>`
      select count(distinct clinician_key)::int as clinicians from encounter_item where clinician_key is not null`.execute(database.db);
    expect(clinicians.rows[0]!.clinicians).toBeGreaterThan(30);
  });
});
