import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ageAtVisit, createKeyHasher } from '../../src/ingest/deidentify.js';
import { patientHashSecretFile, resolvePatientHashSecret } from '../../src/ingest/secret.js';

const secret = 'a-test-secret-that-is-long-enough-for-hmac';

describe('createKeyHasher', () => {
  it('is stable, keyed and separates identifier kinds', () => {
    const hash = createKeyHasher(secret);
    expect(hash('patient', '10007795')).toBe(hash('patient', '10007795'));
    expect(hash('patient', '10007795')).toMatch(/^[0-9a-f]{32}$/);
    expect(hash('patient', '10007795')).not.toBe(hash('encounter', '10007795'));
    expect(createKeyHasher(`${secret}-other`)('patient', '10007795')).not.toBe(hash('patient', '10007795'));
  });

  it('refuses a short secret', () => {
    expect(() => createKeyHasher('short')).toThrow('32 characters');
  });
});

describe('ageAtVisit', () => {
  it('counts whole years on the calendar dates as written', () => {
    expect(ageAtVisit('2083-04-10', '2150-04-09T23:30:00-04:00')).toBe(66);
    expect(ageAtVisit('2083-04-10', '2150-04-10T00:10:00-04:00')).toBe(67);
  });

  it('reports ages above 89 as 90', () => {
    expect(ageAtVisit('2050-01-01', '2139-12-31T10:00:00Z')).toBe(89);
    expect(ageAtVisit('2050-01-01', '2140-01-01T10:00:00Z')).toBe(90);
    expect(ageAtVisit('2030-06-01', '2140-01-01T10:00:00Z')).toBe(90);
  });

  it('refuses a visit before birth or an unreadable date', () => {
    expect(ageAtVisit('2100-01-01', '2090-01-01')).toBeNull();
    expect(ageAtVisit('unknown', '2090-01-01')).toBeNull();
  });
});

describe('resolvePatientHashSecret', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-secret-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('uses the configured secret and writes nothing', async () => {
    await expect(resolvePatientHashSecret({ patientHashSecret: secret, dataDirectory: directory })).resolves.toBe(secret);
    await expect(stat(path.join(directory, patientHashSecretFile))).rejects.toThrow();
  });

  it('creates a private secret file on first use and reuses it', async () => {
    const dataDirectory = path.join(directory, 'nested');
    const first = await resolvePatientHashSecret({ patientHashSecret: undefined, dataDirectory });
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    const file = path.join(dataDirectory, patientHashSecretFile);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(resolvePatientHashSecret({ patientHashSecret: undefined, dataDirectory })).resolves.toBe(first);
    expect((await readFile(file, 'utf8')).trim()).toBe(first);
  });

  it('agrees on one secret when two callers create it at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => resolvePatientHashSecret({ patientHashSecret: undefined, dataDirectory: directory })),
    );
    expect(new Set(results).size).toBe(1);
  });

  it('refuses a file that holds too short a secret', async () => {
    await writeFile(path.join(directory, patientHashSecretFile), 'short\n');
    await expect(resolvePatientHashSecret({ patientHashSecret: undefined, dataDirectory: directory })).rejects.toThrow('fewer than 32');
  });
});
