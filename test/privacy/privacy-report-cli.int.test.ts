import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { runCli } from '../../src/cli/program.js';
import { buildConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { seedPgliteDataDirectory } from '../helpers/database.js';

describe('cli privacy-report and reputation', () => {
  let directory: string;
  let output: string[];
  let errors: string[];
  const config = () =>
    buildConfig({ dataDirectory: path.join(directory, 'data'), databaseUrl: undefined, patientHashSecret: 'cli-secret-cli-secret-cli-secret-cli-0001' });

  const run = async (...args: string[]) => {
    output = [];
    errors = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
    try {
      return await runCli(['node', 'cohort-cds', ...args], config);
    } finally {
      jest.restoreAllMocks();
    }
  };

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'privacy-cli-'));
    // Migrated with the code tables loaded, as a first ingest would leave it (initdb and the migrations skipped).
    await seedPgliteDataDirectory(path.join(directory, 'data'), 'reference');
    const exportFolder = path.join(directory, 'export');
    await mkdir(exportFolder);
    const lines = (resources: object[]) => `${resources.map((resource) => JSON.stringify(resource)).join('\n')}\n`;
    const patients = [1, 2, 3].map((index) => ({ resourceType: 'Patient', id: `p${index}`, gender: 'female', birthDate: '2100-01-01' }));
    const encounters = patients.map((patient, index) => ({
      resourceType: 'Encounter',
      id: `e${index}`,
      status: 'finished',
      class: { code: 'EMER' },
      subject: { reference: `Patient/${patient.id}` },
      period: { start: '2150-06-01T10:00:00Z', end: '2150-06-01T12:00:00Z' },
      reasonCode: [{ text: 'abd pain' }],
    }));
    const requests = encounters.map((encounter, index) => ({
      resourceType: 'ServiceRequest',
      status: 'completed',
      intent: 'order',
      code: { text: 'CT abdomen' },
      subject: encounter.subject,
      encounter: { reference: `Encounter/${encounter.id}` },
      authoredOn: '2150-06-01T10:30:00Z',
      requester: { reference: `Practitioner/dr-${index % 2}` },
    }));
    await writeFile(path.join(exportFolder, 'Patient.ndjson'), lines(patients));
    await writeFile(path.join(exportFolder, 'Encounter.ndjson'), lines(encounters));
    await writeFile(path.join(exportFolder, 'ServiceRequest.ndjson'), lines(requests));
    expect(await run('ingest', exportFolder)).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('recomputes the reputations and says how much the cohort knows about its clinicians', async () => {
    expect(await run('reputation')).toBe(0);
    const printed = output.join('');
    expect(printed).toContain('clinician reputation recomputed from 3 encounters');
    expect(printed).toContain('items naming the ordering clinician: 3 of 3 (100.0%)');
    expect(printed).toContain('clinicians: 2;');
    expect(printed).not.toMatch(/dr-[01]/);
  });

  it('reports the groups under k and what the scan found, never the value', async () => {
    expect(await run('privacy-report', '--k', '5')).toBe(0);
    let printed = output.join('');
    expect(printed).toContain('De-identification report: 3 encounters, k = 5');
    expect(printed).toContain('1 groups under k = 5, holding 3 encounters');
    expect(printed).toContain('50, female, abdominal-pain, default → 3 / 3');
    expect(printed).toContain('none found in cohort or reference data.');

    // An identifier that got into the cohort some other way (an older ingest, a manual edit) is found.
    const handle = await openDatabase({ dataDirectory: path.join(directory, 'data') });
    await handle.db.updateTable('cohort_encounter').set({ chief_complaint_text: 'abd pain, SSN 078-05-1120' }).where('encounter_key', 'is not', null).execute();
    await handle.close();
    expect(await run('privacy-report', '--k', '2', '--json')).toBe(0);
    printed = output.join('');
    const report = JSON.parse(printed);
    expect(report.groups).toMatchObject({ total: 1, underK: 0 });
    expect(report.scan.findings).toContainEqual(
      expect.objectContaining({ table: 'cohort_encounter', column: 'chief_complaint_text', kind: 'ssn', rows: 3, maskedExample: 'xxx xxxx, xxx ###-##-####' }),
    );
    expect(printed).not.toContain('078-05-1120');
  });

  it('refuses a k that is not a whole number of at least 1', async () => {
    expect(await run('privacy-report', '--k', '0')).not.toBe(0);
    expect(errors.join('')).toContain('--k must be a whole number from 1 to 100000');
  });
});
