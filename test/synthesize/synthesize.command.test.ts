import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { runCli } from '../../src/cli/program.js';
import { buildConfig } from '../../src/config.js';
import { mimicDemoDirectory } from '../helpers/app.js';

describe('cohort-cds synthesize', () => {
  let directory: string;
  let output: string[];
  let errors: string[];

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-synthesize-cli-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const config = () => buildConfig({ dataDirectory: path.join(directory, 'data'), databaseUrl: undefined, patientHashSecret: undefined });

  /** Runs one command line, capturing what it prints. */
  async function synthesize(...args: string[]): Promise<number> {
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
      return await runCli(['node', 'cohort-cds', 'synthesize', '--from', mimicDemoDirectory, ...args], config);
    } finally {
      jest.restoreAllMocks();
    }
  }

  it.each([
    [['--encounters', 'abc'], "--encounters must be a whole number from 1 to 100,000,000, not 'abc'"],
    [['--encounters', '0'], '--encounters must be a whole number'],
    [['--encounters', '2.5'], '--encounters must be a whole number'],
    [['--encounters', '100000001'], '--encounters must be a whole number'],
    [[], '--encounters must be a whole number from 1 to 100,000,000'],
    [['--encounters', '10', '--seed', 'x'], '--seed must be a whole number'],
    [['--encounters', '10', '--gzip', '--gzip-level', '12'], '--gzip-level must be a whole number from 1 to 9'],
  ])('refuses %j with a usage error, exit code 2, writing nothing', async (args, message) => {
    const out = path.join(directory, 'refused');
    expect(await synthesize(...args, '--out', out)).toBe(2);
    expect(errors.join('')).toContain(`error: ${message}`);
    expect(output.join('')).toBe('');
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the encounters asked for (2_00 is read as 200), refuses a folder that holds NDJSON, and writes it again the same with --overwrite', async () => {
    const out = path.join(directory, 'cohort');
    expect(await synthesize('--encounters', '2_00', '--seed', '4', '--out', out)).toBe(0);
    expect(output.join('')).toContain(`wrote 200 ED encounters of `);
    expect(output.join('')).toContain('(seed 4)');
    expect(errors.join('')).toContain('learnt from');
    const files = (await readdir(out)).sort();
    expect(files).toEqual(expect.arrayContaining(['Encounter.ndjson', 'Patient.ndjson', 'Observation.ndjson', 'synthesis.json']));
    const encounters = await readFile(path.join(out, 'Encounter.ndjson'), 'utf8');
    const description = JSON.parse(await readFile(path.join(out, 'synthesis.json'), 'utf8')) as { encounters: number; seed: number; purpose: string };
    expect(description).toMatchObject({ encounters: 200, seed: 4 });
    expect(description.purpose).toContain('never a source of quality claims');

    expect(await synthesize('--encounters', '200', '--seed', '4', '--out', out)).toBe(2);
    expect(errors.join('')).toContain('already holds NDJSON files');
    expect(await synthesize('--encounters', '200', '--seed', '4', '--out', out, '--overwrite')).toBe(0);
    expect(await readFile(path.join(out, 'Encounter.ndjson'), 'utf8')).toBe(encounters);
  });

  it('writes gzip with --gzip, by default into the data folder', async () => {
    expect(await synthesize('--encounters', '40', '--seed', '2', '--gzip')).toBe(0);
    const out = path.join(directory, 'data', 'synthetic', '40-seed-2');
    expect(output.join('')).toContain(`to ${out} in`);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['Encounter.ndjson.gz', 'Patient.ndjson.gz', 'synthesis.json']));
    expect(files.filter((file) => file.endsWith('.ndjson') || file.endsWith('.part'))).toEqual([]);
  });
});
