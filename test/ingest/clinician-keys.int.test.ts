/**
 * The ordering clinician of every source the conversion reads (docs/reputation.md, "Who is rated"), stored: the
 * keyed hash and never the reference; and the reputations an ingest leaves behind are those `cli reputation` computes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { listClinicianReputations } from '../../src/db/reputation.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { recomputeClinicianReputation } from '../../src/reputation/recompute.js';
import { openTestDatabase } from '../helpers/database.js';
import { openDemoDatabase } from '../helpers/test-templates.js';

const hasher = createKeyHasher('test-secret-test-secret-test-secret-0123');
const provider = 'http://hospital.example.org/provider';
const patientRef = { reference: 'Patient/ck-patient-1' };
const encounter = { reference: 'Encounter/ck-ed-1' };
const day = '2151-06-02';
/** One clinician per source, each named the way that source names its party; none may be stored as given. */
const clinicians = {
  labPerformer: { reference: 'Practitioner/ck-lab-performer-71', display: 'Dr. Labworth' },
  medicationRequester: { identifier: { system: provider, value: 'CKMEDREQ81' }, display: 'Dr. Orderly' },
  dispenser: { reference: 'Practitioner/ck-dispenser-91' },
  administrator: { reference: 'PractitionerRole/ck-nurse-role-61' },
  procedurePerformer: { identifier: { system: provider, value: 'CKPROC51' } },
  serviceRequester: { identifier: { system: provider, value: 'CKSRVREQ41' } },
};
const keyOf = (reference: { reference?: string; identifier?: { system: string; value: string } }) =>
  hasher('clinician', reference.identifier ? `${reference.identifier.system}|${reference.identifier.value}` : reference.reference!);

function resources(): Record<string, object[]> {
  const at = (time: string) => `${day}T${time}:00-04:00`;
  return {
    Patient: [{ resourceType: 'Patient', id: 'ck-patient-1', gender: 'female', birthDate: '2100-03-01' }],
    Encounter: [
      {
        resourceType: 'Encounter',
        id: 'ck-ed-1',
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER' },
        subject: patientRef,
        period: { start: at('09:00'), end: at('15:00') },
        hospitalization: { dischargeDisposition: { coding: [{ code: 'HOME' }] } },
      },
    ],
    Observation: [
      {
        resourceType: 'Observation',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8661-1' }] },
        subject: patientRef,
        encounter,
        effectiveDateTime: at('09:00'),
        valueString: 'abd pain',
      },
      {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
        code: { coding: [{ system: 'http://mimic.mit.edu/fhir/mimic/CodeSystem/mimic-d-labitems', code: '50956', display: 'Lipase' }], text: 'Lipase' },
        subject: patientRef,
        encounter,
        effectiveDateTime: at('09:30'),
        // The laboratory first: an organization is no clinician, the practitioner after it is.
        performer: [{ reference: 'Organization/ck-central-lab' }, clinicians.labPerformer],
      },
    ],
    MedicationRequest: [
      {
        resourceType: 'MedicationRequest',
        status: 'completed',
        intent: 'order',
        subject: patientRef,
        encounter,
        authoredOn: at('09:40'),
        medicationCodeableConcept: { text: 'Ondansetron 4 mg' },
        requester: clinicians.medicationRequester,
      },
    ],
    MedicationDispense: [
      {
        resourceType: 'MedicationDispense',
        status: 'completed',
        subject: patientRef,
        context: encounter,
        whenHandedOver: at('09:50'),
        medicationCodeableConcept: { text: 'Morphine Sulfate 4 mg' },
        performer: [{ actor: clinicians.dispenser }],
      },
    ],
    MedicationAdministration: [
      {
        resourceType: 'MedicationAdministration',
        status: 'completed',
        subject: patientRef,
        context: encounter,
        effectiveDateTime: at('10:00'),
        medicationCodeableConcept: { text: 'Ketorolac 15 mg' },
        performer: [{ actor: clinicians.administrator }],
      },
    ],
    Procedure: [
      {
        resourceType: 'Procedure',
        status: 'completed',
        subject: patientRef,
        encounter,
        code: { coding: [{ system: 'http://snomed.info/sct', code: '29303009' }], text: 'ECG' },
        performedDateTime: at('10:10'),
        performer: [{ actor: clinicians.procedurePerformer }],
      },
    ],
    ServiceRequest: [
      {
        resourceType: 'ServiceRequest',
        status: 'completed',
        intent: 'order',
        subject: patientRef,
        encounter,
        category: [{ text: 'Radiology' }],
        code: { text: 'Radiology: CT Scan' },
        authoredOn: at('10:20'),
        requester: clinicians.serviceRequester,
      },
    ],
  };
}

/** Every text, array and JSON value of every table: what a scan for an identifier reads. */
async function dumpAllText(db: Kysely<Database>): Promise<string> {
  const columns = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY')
      and table_name not in ('icd10_code', 'icd9_to_icd10')
    order by table_name, ordinal_position`.execute(db);
  const parts: string[] = [];
  for (const { table_name: table, column_name: column } of columns.rows) {
    const rows = await sql<{ value: string | null }>`select ${sql.ref(column)}::text as value from ${sql.table(table)}`.execute(db);
    for (const row of rows.rows) if (row.value !== null) parts.push(row.value);
  }
  return parts.join('\n');
}

describe('clinician keys of every source, stored, and the reputations an ingest leaves', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let folder: string;
  let afterDemo: Awaited<ReturnType<typeof listClinicianReputations>>;

  beforeAll(async () => {
    // The demo ingested with `hasher`'s secret, as ingestPaths(db, [mimicDemoDirectory], { hasher }) leaves it.
    ({ database } = await openDemoDatabase());
    folder = await mkdtemp(path.join(tmpdir(), 'clinician-keys-'));
    for (const [type, list] of Object.entries(resources())) {
      await writeFile(path.join(folder, `${type}.ndjson`), `${list.map((resource) => JSON.stringify(resource)).join('\n')}\n`);
    }
    afterDemo = await listClinicianReputations(database.db);
    await ingestPaths(database.db, [folder], { hasher });
  }, 180_000);

  afterAll(async () => {
    await database?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('stores the keyed hash of each source clinician on its item', async () => {
    const items = await database.db
      .selectFrom('encounter_item')
      .select(['item_code', 'clinician_key'])
      .where('encounter_key', '=', hasher('encounter', 'ck-ed-1'))
      .orderBy('item_code')
      .execute();
    expect(Object.fromEntries(items.map((item) => [item.item_code, item.clinician_key]))).toEqual({
      'lab:50956': keyOf(clinicians.labPerformer),
      'med:ondansetron': keyOf(clinicians.medicationRequester),
      'med:morphine': keyOf(clinicians.dispenser),
      'med:ketorolac': keyOf(clinicians.administrator),
      'procedure:29303009': keyOf(clinicians.procedurePerformer),
      'order:radiology-ct-scan': keyOf(clinicians.serviceRequester),
    });
  });

  it('keeps no clinician reference, identifier or name in any table', async () => {
    const text = await dumpAllText(database.db);
    for (const raw of ['ck-lab-performer-71', 'CKMEDREQ81', 'ck-dispenser-91', 'ck-nurse-role-61', 'CKPROC51', 'CKSRVREQ41', 'ck-central-lab', 'Labworth', 'Orderly', provider]) {
      expect(text).not.toContain(raw);
    }
  });

  it('leaves the reputations cli reputation computes, without running it, new clinicians included', async () => {
    const afterIngest = await listClinicianReputations(database.db);
    const keys = new Set(afterIngest.map((reputation) => reputation.clinicianKey));
    // Each new clinician is rated by the ingest itself; none of them was before it.
    for (const clinician of Object.values(clinicians)) {
      expect(keys.has(keyOf(clinician))).toBe(true);
      expect(afterDemo.some((reputation) => reputation.clinicianKey === keyOf(clinician))).toBe(false);
    }
    expect(afterDemo.length).toBeGreaterThan(0);
    const summary = await recomputeClinicianReputation(database.db);
    expect(summary.clinicians.length).toBe(afterIngest.length);
    expect(await listClinicianReputations(database.db)).toEqual(afterIngest);
  });
});
