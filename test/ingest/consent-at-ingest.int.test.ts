/**
 * Issue 6 at ingest, on the real MIMIC demo: a FHIR R4 Consent refusing research use keeps its patient out of the
 * cohort (in the same export, or in a later one that comes after their visits were loaded), and a patient opted
 * out through the API stays out when an export holding them is ingested again. "Out" is checked row for row
 * against an ingest of the demo with every line of that patient removed (test/helpers/demo-without-patient.ts).
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { optOutPatient, patientKeyFor } from '../../src/privacy/opt-out.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import type { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';
import { writeDemoWithoutPatient } from '../helpers/demo-without-patient.js';
import { cohortContent } from './cohort-content.js';

const hasher = createKeyHasher('consent-ingest-test-secret-0123456789abc');
type Json = Record<string, any>;

function readDemo(name: string): Json[] {
  return gunzipSync(readFileSync(path.join(mimicDemoDirectory, `${name}.ndjson.gz`)))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Json);
}

/** The demo patient with the most ED stays: the one whose absence changes the most. */
function busiestPatient(): { readonly id: string; readonly stays: number } {
  const stays = new Map<string, number>();
  for (const stay of readDemo('MimicEncounterED')) {
    const id = (stay.subject.reference as string).split('/')[1]!;
    stays.set(id, (stays.get(id) ?? 0) + 1);
  }
  const [id, count] = [...stays.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
  return { id, stays: count };
}

/** An R4 Consent (https://hl7.org/fhir/R4/consent.html): the patient denies research use of their record. */
function researchRefusal(patientId: string): Json {
  return {
    resourceType: 'Consent',
    id: 'consent-research-refusal',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] }],
    patient: { reference: `Patient/${patientId}` },
    dateTime: '2026-11-01T09:00:00Z',
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
    provision: { type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HRESCH' }] },
  };
}

/** A Consent that permits research use: it must exclude nobody. */
function researchPermit(patientId: string): Json {
  return { ...researchRefusal(patientId), id: 'consent-research-permit', policyRule: undefined, provision: { type: 'permit' } };
}

describe('consent and opt-outs at ingest', () => {
  const patient = busiestPatient();
  const otherPatientId = readDemo('MimicPatient')
    .map((resource) => resource.id as string)
    .filter((id) => id !== patient.id)
    .sort()[0]!;
  let scratch: string;
  let consentFolder: string;
  let withoutPatient: Awaited<ReturnType<typeof openTestDatabase>>;
  let expected: Awaited<ReturnType<typeof cohortContent>>;
  const opened: Array<Awaited<ReturnType<typeof openTestDatabase>>> = [];

  const freshDatabase = async () => {
    const database = await openReferenceDatabase();
    opened.push(database);
    return database;
  };
  const rowsOfPatient = async (db: Kysely<Database>) =>
    (await db.selectFrom('cohort_encounter').select('encounter_key').where('patient_key', '=', patientKeyFor(hasher, patient.id)).execute()).length;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'cohort-consent-'));
    const withoutFolder = path.join(scratch, 'without');
    consentFolder = path.join(scratch, 'consent');
    await mkdir(withoutFolder);
    await mkdir(consentFolder);
    await writeDemoWithoutPatient(withoutFolder, patient.id);
    await writeFile(path.join(consentFolder, 'Consent.ndjson'), `${JSON.stringify(researchRefusal(patient.id))}\n${JSON.stringify(researchPermit(otherPatientId))}\n`);
    withoutPatient = await freshDatabase();
    await ingestPaths(withoutPatient.db, [withoutFolder], { hasher });
    expected = await cohortContent(withoutPatient.db);
  }, 600_000);

  afterAll(async () => {
    for (const database of opened) await database.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('leaves out every row of a patient whose Consent in the export refuses research use', async () => {
    expect(patient.stays).toBeGreaterThan(3);
    const { db } = await freshDatabase();
    const report = await ingestPaths(db, [mimicDemoDirectory, consentFolder], { hasher });
    expect(report.read.byResourceType.Consent).toBe(2);
    expect(report.optOuts).toEqual({ consentRefusals: 1, newlyOptedOut: 1, unresolvedConsents: 0, encountersRemoved: 0 });
    expect(report.skipped.reasons['patient-opted-out']).toBe(1);
    expect(report.loaded.encounters).toBe(expected.cohort_encounter.length);
    expect(await rowsOfPatient(db)).toBe(0);
    expect(await cohortContent(db)).toEqual(expected);
    const optOuts = await db.selectFrom('patient_opt_out').select(['patient_key', 'source', 'recorded_by']).execute();
    expect(optOuts).toEqual([{ patient_key: patientKeyFor(hasher, patient.id), source: 'consent', recorded_by: 'ingest' }]);
    const audit = await db.selectFrom('audit_event').select(['actor', 'action', 'details']).where('action', '=', 'patient.opt-out.consent').execute();
    expect(audit).toEqual([{ actor: 'ingest', action: 'patient.opt-out.consent', details: expect.objectContaining({ patients: 1, newlyOptedOut: 1 }) }]);
    expect(JSON.stringify(audit)).not.toContain(patient.id);
  }, 600_000);

  it('removes what earlier ingests loaded when the Consent comes in a later export, and keeps the patient out after', async () => {
    const { db } = await freshDatabase();
    await ingestPaths(db, [mimicDemoDirectory], { hasher });
    expect(await rowsOfPatient(db)).toBe(patient.stays);
    const later = await ingestPaths(db, [consentFolder], { hasher });
    expect(later.optOuts).toMatchObject({ consentRefusals: 1, newlyOptedOut: 1, encountersRemoved: patient.stays });
    expect(await cohortContent(db)).toEqual(expected);
    // The same export again: the patient is on record as opted out and is not loaded back.
    const again = await ingestPaths(db, [mimicDemoDirectory], { hasher });
    expect(again.skipped.reasons['patient-opted-out']).toBe(1);
    expect(await cohortContent(db)).toEqual(expected);
  }, 600_000);

  it('keeps a patient opted out through the API out when their data is ingested again', async () => {
    const { db } = await freshDatabase();
    await ingestPaths(db, [mimicDemoDirectory], { hasher });
    const optOut = await optOutPatient(db, { hasher, patientId: patient.id, source: 'api', actor: 'test' });
    expect(optOut.removed.encounters).toBe(patient.stays);
    const again = await ingestPaths(db, [mimicDemoDirectory], { hasher });
    expect(again.skipped.reasons['patient-opted-out']).toBe(1);
    expect(again.loaded.encounters).toBe(expected.cohort_encounter.length);
    expect(await rowsOfPatient(db)).toBe(0);
    expect(await cohortContent(db)).toEqual(expected);
  }, 600_000);
});
