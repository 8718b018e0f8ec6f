/**
 * The Safe Harbor claim (docs/privacy.md), tested: hand-made FHIR R4 resources full of the 18 identifiers' kinds
 * (names, addresses, phone, e-mail, record numbers, SSN, exact dates, URLs, IP addresses, free-text notes) are
 * ingested with the real demo, then every column of every table is searched for each of them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { countMatchesInColumn, listStoredColumns, type StoredColumn } from '../../src/db/privacy-scan.repository.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { buildPrivacyReport, formatPrivacyReport, identifierPatterns } from '../../src/privacy/privacy-report.js';
import { recomputeClinicianReputation } from '../../src/reputation/recompute.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

/** Every identifying string planted below; none may be found anywhere in the database. */
const planted = {
  patientId: 'sh-patient-zq4127',
  encounterId: 'sh-encounter-zq4127',
  givenName: 'Zebedee',
  familyName: 'Quackenbush',
  relativeName: 'Philomena',
  clinicianName: 'Brightwater',
  clinicianGiven: 'Ophelia',
  street: 'Wisteria Lane',
  city: 'Quahogville',
  zip: '01103-2242',
  phone: '413-555-0142',
  phone2: '(413) 555-0199',
  fax: '413.555.0177',
  email: 'zebedee.quackenbush@example.org',
  email2: 'cp-family@example.net',
  mrn: 'MRN-99417723',
  ssn: '078-05-1120',
  visitNumber: 'VN-55501234',
  npi: '1234567893',
  licence: 'MA-LIC-44821',
  birthDate: '1961-07-04',
  visitDate: '2151-03-14',
  earlierDate: '2151-03-13',
  deathDate: '2153-11-02',
  url: 'portal.example.org/patients/zq-4127',
  ip: '192.168.14.77',
  ip2: '10.20.30.40',
  device: 'SN-PUMP-884213',
  plate: 'PLATE-7XQ-221',
  bed: 'Bed 14, Room 3B',
  note: 'lives alone with cat',
  healthPlan: 'XJH4417729',
  healthPlanGroup: 'GRP-00813-QB',
  account: 'ACCT-5521-9087',
  accountDigits: '55219087',
  complaintName: 'Thaddeus',
} as const;

const ed = (id: string) => ({ reference: `Encounter/${id}` });
const subject = { reference: `Patient/${planted.patientId}`, display: `${planted.givenName} ${planted.familyName}` };
const clinician = {
  reference: `Practitioner/npi-${planted.npi}`,
  identifier: { system: 'http://hl7.org/fhir/sid/us-npi', value: planted.npi },
  display: `Dr. ${planted.clinicianGiven} ${planted.clinicianName}`,
};
const narrative = (text: string) => ({ status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${text}</div>` });
const visitStart = `${planted.visitDate}T08:17:00-05:00`;
const noteText = `${planted.givenName} ${planted.familyName}, ${planted.note}; call ${planted.phone} or ${planted.email}; SSN ${planted.ssn}; see https://${planted.url} from ${planted.ip}`;

/** FHIR R4 resources of one patient with one ED visit, identifiers in every field a real export fills. */
function resources(): Record<string, object[]> {
  return {
    Patient: [
      {
        resourceType: 'Patient',
        id: planted.patientId,
        text: narrative(`${planted.givenName} ${planted.familyName}, MRN ${planted.mrn}`),
        identifier: [
          { system: 'http://hospital.example.org/mrn', value: planted.mrn, type: { text: 'Medical record number' } },
          { system: 'http://hl7.org/fhir/sid/us-ssn', value: planted.ssn },
          { system: 'http://example.org/plates', value: planted.plate },
          { system: 'http://payer.example.org/member-id', value: planted.healthPlan, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MB' }] } },
          { system: 'http://hospital.example.org/account', value: planted.account, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'AN' }] } },
        ],
        name: [{ use: 'official', family: planted.familyName, given: [planted.givenName], text: `${planted.givenName} ${planted.familyName}` }],
        telecom: [
          { system: 'phone', value: planted.phone, use: 'home' },
          { system: 'fax', value: planted.fax },
          { system: 'email', value: planted.email },
          { system: 'url', value: `https://${planted.url}` },
        ],
        gender: 'male',
        birthDate: planted.birthDate,
        deceasedDateTime: `${planted.deathDate}T04:00:00Z`,
        address: [{ line: [`4127 ${planted.street}`], city: planted.city, state: 'MA', postalCode: planted.zip, country: 'US' }],
        contact: [{ name: { text: `${planted.relativeName} ${planted.familyName}` }, telecom: [{ system: 'phone', value: planted.phone2 }] }],
        generalPractitioner: [clinician],
        photo: [{ url: `https://${planted.url}/photo.jpg`, title: `${planted.givenName} at ${planted.ip2}` }],
      },
    ],
    Encounter: [
      {
        resourceType: 'Encounter',
        id: planted.encounterId,
        text: narrative(noteText),
        identifier: [{ system: 'http://hospital.example.org/visit', value: planted.visitNumber }],
        account: [{ reference: `Account/${planted.account}`, identifier: { value: planted.accountDigits } }],
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER', display: 'emergency' },
        subject,
        participant: [{ individual: clinician }],
        period: { start: visitStart, end: `${planted.visitDate}T14:02:00-05:00` },
        reasonCode: [{ text: 'chest pain' }],
        hospitalization: { dischargeDisposition: { coding: [{ code: 'HOME' }], text: `home with ${planted.relativeName}` } },
        location: [{ location: { display: planted.bed } }],
        serviceProvider: { display: `Quahogville General, ${planted.street}` },
      },
    ],
    Observation: [
      {
        resourceType: 'Observation',
        id: 'sh-complaint',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '8661-1', display: 'Chief complaint - Reported' }] },
        subject,
        encounter: ed(planted.encounterId),
        effectiveDateTime: visitStart,
        // Triage free text with identifier shapes, names, a health-plan and an account number in it.
        valueString:
          `chest pain, since ${planted.earlierDate}, callback ${planted.phone2} or ${planted.email2}, ssn ${planted.ssn}, portal https://${planted.url} ${planted.ip2}, ` +
          `wife ${planted.relativeName} ${planted.familyName} at bedside, pt ${planted.complaintName} ${planted.givenName}, ` +
          `ins ${planted.healthPlan} grp ${planted.healthPlanGroup}, acct ${planted.account}, ${planted.city}`,
        performer: [clinician],
      },
      {
        resourceType: 'Observation',
        id: 'sh-acuity',
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: '56839-4' }] },
        subject,
        encounter: ed(planted.encounterId),
        effectiveDateTime: visitStart,
        valueInteger: 2,
      },
      {
        resourceType: 'Observation',
        id: 'sh-nursing-note',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'exam' }] }],
        code: { text: 'Nursing note' },
        subject,
        encounter: ed(planted.encounterId),
        effectiveDateTime: visitStart,
        valueString: noteText,
        note: [{ text: `${planted.bed}; ${planted.device}`, authorString: planted.clinicianName }],
        performer: [clinician],
      },
      {
        resourceType: 'Observation',
        id: 'sh-troponin',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
        code: { coding: [{ system: 'http://loinc.org', code: '6598-7', display: 'Troponin T' }] },
        subject,
        encounter: ed(planted.encounterId),
        effectiveDateTime: `${planted.visitDate}T08:40:00-05:00`,
        issued: `${planted.visitDate}T09:05:00-05:00`,
        valueQuantity: { value: 0.01, unit: 'ng/mL' },
        specimen: { reference: `Specimen/${planted.visitNumber}`, display: `tube of ${planted.familyName}` },
        performer: [clinician],
        note: [{ text: noteText }],
        device: { display: planted.device },
      },
    ],
    Condition: [
      {
        resourceType: 'Condition',
        id: 'sh-condition',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'R07.9', display: 'Chest pain, unspecified' }] },
        subject,
        encounter: ed(planted.encounterId),
        recordedDate: visitStart,
        onsetDateTime: `${planted.earlierDate}T22:00:00-05:00`,
        asserter: clinician,
        note: [{ text: `${planted.note}, ${planted.street}, ${planted.city}` }],
      },
    ],
    MedicationRequest: [
      {
        resourceType: 'MedicationRequest',
        id: 'sh-aspirin',
        status: 'completed',
        intent: 'order',
        medicationCodeableConcept: { text: 'Aspirin 325 mg tablet' },
        subject,
        encounter: ed(planted.encounterId),
        authoredOn: `${planted.visitDate}T08:30:00-05:00`,
        requester: clinician,
        dosageInstruction: [{ text: `325 mg now; questions to ${planted.phone} (${planted.clinicianGiven} ${planted.clinicianName})` }],
        note: [{ text: noteText }],
      },
    ],
    ServiceRequest: [
      {
        resourceType: 'ServiceRequest',
        id: 'sh-ct',
        status: 'completed',
        intent: 'order',
        category: [{ text: 'Radiology' }],
        code: { text: 'CT chest with contrast' },
        subject,
        encounter: ed(planted.encounterId),
        authoredOn: `${planted.visitDate}T09:00:00-05:00`,
        requester: { ...clinician, identifier: { system: 'http://example.org/licence', value: planted.licence } },
        note: [{ text: noteText }],
        patientInstruction: `Call ${planted.fax} on arrival`,
      },
    ],
    Coverage: [
      {
        resourceType: 'Coverage',
        id: 'sh-coverage',
        status: 'active',
        identifier: [{ system: 'http://payer.example.org/member-id', value: planted.healthPlan }],
        subscriberId: planted.healthPlan,
        beneficiary: subject,
        payor: [{ display: 'Quahogville Health Plan' }],
        class: [{ type: { text: 'group' }, value: planted.healthPlanGroup }],
      },
    ],
    Account: [
      {
        resourceType: 'Account',
        id: planted.account,
        status: 'active',
        identifier: [{ system: 'http://hospital.example.org/account', value: planted.accountDigits }],
        subject: [subject],
        name: `${planted.givenName} ${planted.familyName} ED account`,
      },
    ],
    Procedure: [
      {
        resourceType: 'Procedure',
        id: 'sh-ecg',
        status: 'completed',
        code: { coding: [{ system: 'http://snomed.info/sct', code: '29303009', display: 'Electrocardiographic procedure' }] },
        subject,
        encounter: ed(planted.encounterId),
        performedDateTime: `${planted.visitDate}T08:25:00-05:00`,
        performer: [{ actor: clinician }],
        note: [{ text: noteText }],
      },
    ],
  };
}

describe('Safe Harbor: no identifier survives the ingest', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let folder: string;
  let columns: StoredColumn[];

  beforeAll(async () => {
    database = await openReferenceDatabase();
    await seedDefaultRuleSet(database.db);
    folder = await mkdtemp(path.join(tmpdir(), 'safe-harbor-'));
    for (const [type, list] of Object.entries(resources())) {
      await writeFile(path.join(folder, `${type}.ndjson`), `${list.map((resource) => JSON.stringify(resource)).join('\n')}\n`);
    }
    await ingestPaths(database.db, [mimicDemoDirectory, folder], { hasher: createKeyHasher('test-secret-test-secret-test-secret-0123') });
    await recomputeClinicianReputation(database.db);
    columns = await listStoredColumns(database.db);
  }, 180_000);

  afterAll(async () => {
    await database?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('ingested the hand-made visit with what the cohort needs of it (aged 189 at the shifted visit: stored as 90)', async () => {
    const visit = await database.db
      .selectFrom('cohort_encounter')
      .selectAll()
      .where(sql<boolean>`icd10_codes @> array['R079']::text[] and age_years = 90 and start_year = 2151 and acuity = 2`)
      .executeTakeFirst();
    expect(visit).toMatchObject({ sex: 'male', complaint_concepts: expect.arrayContaining(['chest-pain']), admitted: false });
    // The complaint is kept, scrubbed: its clinical words stay, names and numbers go (docs/privacy.md).
    expect(visit!.chief_complaint_text).toMatch(/^chest pain, /);
    expect(visit!.chief_complaint_text).toContain('wife [removed] at bedside');
    const items = await database.db.selectFrom('encounter_item').select(['item_code', 'clinician_key']).where('encounter_key', '=', visit!.encounter_key).execute();
    expect(items.map((item) => item.item_code).sort()).toEqual(expect.arrayContaining(['lab:6598-7', 'order:ct-chest-with-contrast']));
    expect(items.some((item) => item.clinician_key !== null)).toBe(true);
  });

  it('finds none of the planted strings in any column of any table', async () => {
    expect(columns.map((column) => column.table)).toEqual(expect.arrayContaining(['cohort_encounter', 'encounter_item', 'lab_draw', 'clinician_reputation', 'ingest_run']));
    const matchers = Object.entries(planted).map(([name, literal]) => ({ name, literal }));
    // One regular expression of all of them first (fast on the large code tables), each one where it matched.
    const any = { name: 'any', pattern: Object.values(planted).map((text) => text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')).join('|') };
    const found: string[] = [];
    for (const column of columns) {
      if ((await countMatchesInColumn(database.db, column, [any])).get('any') === 0) continue;
      for (const [name, rows] of await countMatchesInColumn(database.db, column, matchers)) {
        if (rows > 0) found.push(`${name} in ${column.table}.${column.column} (${rows} rows)`);
      }
    }
    expect(found).toEqual([]);
  });

  it('the search finds a planted string where one is', async () => {
    const any = { name: 'any', pattern: Object.values(planted).map((text) => text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')).join('|') };
    await database.db.insertInto('audit_event').values({ actor: 'test', action: 'probe', details: JSON.stringify({ note: `(413) 555-0199 ${planted.url}` }) }).execute();
    const counts = await countMatchesInColumn(database.db, { table: 'audit_event', column: 'details' }, [any, { name: 'phone2', literal: planted.phone2 }]);
    expect(counts).toEqual(new Map([['any', 1], ['phone2', 1]]));
    await database.db.deleteFrom('audit_event').where('action', '=', 'probe').execute();
  });

  it('keeps no date finer than a year and no identifier shape in the cohort tables', async () => {
    const cohortTables = new Set(['cohort_encounter', 'encounter_item', 'lab_draw', 'lab_panel', 'lab_panel_member', 'clinician_reputation', 'patient_opt_out']);
    const matchers = identifierPatterns.map(({ name, pattern }) => ({ name, pattern }));
    const found: string[] = [];
    for (const column of columns.filter((one) => cohortTables.has(one.table))) {
      // Timestamps there are the service's own (when a row was written), never a patient's: they must be today's.
      if (column.dataType.startsWith('timestamp') || column.dataType === 'date') {
        const row = await database.db
          .selectFrom(sql.table(column.table).as('t'))
          .select(sql<number>`cast(count(*) filter (where ${sql.ref(`t.${column.column}`)} < now() - interval '1 day') as integer)`.as('old'))
          .executeTakeFirstOrThrow();
        if (Number((row as { old: number }).old) > 0) found.push(`old timestamp in ${column.table}.${column.column}`);
        continue;
      }
      for (const [name, rows] of await countMatchesInColumn(database.db, column, matchers)) {
        if (rows > 0) found.push(`${name} in ${column.table}.${column.column} (${rows} rows)`);
      }
    }
    expect(found).toEqual([]);
  });

  it('the privacy report says so, and lists the groups under k', async () => {
    const report = await buildPrivacyReport(database.db, { k: 11, listLimit: 5 });
    expect(report.scan.findings.filter((finding) => !finding.serviceColumn)).toEqual([]);
    expect(report.scan.columnsScanned).toBe(columns.filter((column) => ['text', 'ARRAY', 'jsonb', 'json', 'character varying'].includes(column.dataType)).length);
    // Independent count of the (age, sex, primary concept, site) groups.
    const rows = await database.db.selectFrom('cohort_encounter').select(['age_years', 'sex', 'complaint_concepts', 'site']).execute();
    const sizes = new Map<string, number>();
    for (const row of rows) {
      const key = JSON.stringify([Number(row.age_years), row.sex, row.complaint_concepts[0] ?? null, row.site]);
      sizes.set(key, (sizes.get(key) ?? 0) + 1);
    }
    expect(report.encounters).toBe(rows.length);
    expect(report.groups.total).toBe(sizes.size);
    expect(report.groups.underK).toBe([...sizes.values()].filter((size) => size < 11).length);
    expect(report.groups.smallest).toHaveLength(5);
    expect(report.groups.smallest[0]!.encounters).toBe(Math.min(...sizes.values()));
    const text = formatPrivacyReport(report);
    expect(text).toContain(`${report.groups.underK} groups under k = 11`);
    expect(text).toContain('none found in cohort or reference data.');
  });

  it('the report finds identifier shapes when they are there, and prints them masked', async () => {
    await database.db
      .updateTable('cohort_encounter')
      .set({ chief_complaint_text: `fever, call ${planted.phone}` })
      .where('encounter_key', '=', (await database.db.selectFrom('cohort_encounter').select('encounter_key').limit(1).executeTakeFirstOrThrow()).encounter_key)
      .execute();
    const report = await buildPrivacyReport(database.db, { k: 11 });
    expect(report.scan.findings).toContainEqual(
      expect.objectContaining({ table: 'cohort_encounter', column: 'chief_complaint_text', kind: 'phone', rows: 1, maskedExample: 'xxxxx, xxxx ###-###-####', serviceColumn: false }),
    );
    const text = formatPrivacyReport(report);
    expect(text).toContain('FOUND phone in cohort_encounter.chief_complaint_text: 1 rows');
    expect(text).not.toContain(planted.phone);
  });
});
