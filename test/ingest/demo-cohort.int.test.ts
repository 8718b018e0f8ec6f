import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { countCohortEncounters } from '../../src/db/cohort-encounter.repository.js';
import { seedComplaintVocabulary } from '../../src/db/complaint.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ensureDemoCohort } from '../../src/ingest/demo-cohort.js';
import { openTestDatabase } from '../helpers/database.js';

describe('ensureDemoCohort', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
    await seedComplaintVocabulary(database.db);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('loads the bundled demo into an empty cohort, once', async () => {
    const hasher = createKeyHasher('demo-cohort-test-secret-0123456789abcdef');
    // No code tables here: ICD-9 diagnoses stay unmapped, which this test does not look at.
    const report = await ensureDemoCohort(database.db, { hasher, icd9Map: new Map() });
    expect(report?.loaded.encounters).toBe(222);
    expect(report?.read.byResourceType).toMatchObject({ Patient: 100, MedicationDispense: 1082, ServiceRequest: 310 });
    expect(report?.read.byResourceType.MedicationStatement).toBeUndefined();
    expect(await countCohortEncounters(database.db)).toBe(222);
    await expect(ensureDemoCohort(database.db, { hasher })).resolves.toBeNull();
    const run = await database.db.selectFrom('ingest_run').select('source').executeTakeFirstOrThrow();
    expect(run.source).toBe('bundled MIMIC-IV-ED demo');
  });
});
