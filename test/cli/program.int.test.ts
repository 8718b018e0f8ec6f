import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { runCli } from '../../src/cli/program.js';
import { buildConfig, loadConfig } from '../../src/config.js';

describe('cohort-cds CLI', () => {
  let directory: string;
  let output: string[];
  let errors: string[];

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-cli-'));
    const exportFolder = path.join(directory, 'export');
    await mkdir(exportFolder);
    const subject = { reference: 'Patient/p1' };
    await writeFile(path.join(exportFolder, 'Patient.ndjson'), `${JSON.stringify({ resourceType: 'Patient', id: 'p1', gender: 'male', birthDate: '2080-01-01' })}\n`);
    await writeFile(
      path.join(exportFolder, 'Encounter.ndjson'),
      [
        JSON.stringify({ resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'EMER' }, subject, period: { start: '2150-01-01T10:00:00Z', end: '2150-01-01T12:00:00Z' } }),
        'not json',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  const capture = () => {
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
  };
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const config = () => buildConfig({ dataDirectory: path.join(directory, 'data'), databaseUrl: undefined, patientHashSecret: undefined });

  it('ingests a folder and prints what it read, loaded and skipped', async () => {
    capture();
    const exitCode = await runCli(['node', 'cohort-cds', 'ingest', path.join(directory, 'export')], config);
    jest.restoreAllMocks();
    expect(errors.join('')).not.toContain('error:');
    expect(exitCode).toBe(0);
    const printed = output.join('');
    expect(printed).toContain('loaded:  1 encounters');
    expect(printed).toContain('skipped: 1 malformed lines, 0 encounters');
    expect(printed).toContain(`${path.join(directory, 'export', 'Encounter.ndjson')}:2: invalid JSON`);
    expect(errors.join('')).toMatch(/reading \[1\/2\] Encounter\.ndjson/);
    expect((await stat(path.join(directory, 'data', 'patient-hash.secret'))).mode & 0o777).toBe(0o600);
  });

  it('migrates an up-to-date database without applying anything', async () => {
    capture();
    const exitCode = await runCli(['node', 'cohort-cds', 'migrate'], config);
    jest.restoreAllMocks();
    expect(exitCode).toBe(0);
    expect(output.join('')).toContain('schema is up to date');
  });

  it('exits non-zero with a readable message on a missing path or bad configuration', async () => {
    capture();
    const missing = await runCli(['node', 'cohort-cds', 'ingest', path.join(directory, 'nowhere')], config);
    const badConfig = await runCli(['node', 'cohort-cds', 'migrate'], () => loadConfig({ DATABASE_URL: 'mysql://somewhere' }));
    jest.restoreAllMocks();
    expect(missing).toBe(1);
    expect(errors.join('')).toContain(`error: no such file or folder: ${path.join(directory, 'nowhere')}`);
    expect(badConfig).toBe(1);
    expect(errors.join('')).toContain('DATABASE_URL: must be a postgres');
    expect(errors.join('')).not.toMatch(/\n\s+at /);
  });
});
