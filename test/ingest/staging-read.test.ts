import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { batchFileName, medicationFileName, readStagedBatch, readStagedMedicationNames, stagedLinePrefix } from '../../src/ingest/staging.js';

// The staged files are read through a buffer of 1 MiB (staging.ts stagedReadBytes): these files put lines across
// its reads, a line longer than it, a multi-byte character on a read's boundary and a last line without newline.
const mebibyte = 1 << 20;

describe('reading staged files back', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'cohort-cds-staging-read-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('reads every line of a batch whatever its length and wherever the reads fall', () => {
    const lines: string[] = [];
    const expected = new Map<string, string[]>();
    for (let index = 0; index < 6000; index += 1) {
      const patient = `patient-${index % 37}`;
      const id = `encounter-${index}`;
      const encounter = { resourceType: 'Encounter', id, status: 'finished', subject: { reference: `Patient/${patient}` } };
      lines.push(`${stagedLinePrefix(0, index + 1, patient)}${JSON.stringify(encounter)}`);
      expected.set(patient, [...(expected.get(patient) ?? []), id]);
    }
    // A Consent (staged whole) longer than a read, full of two- and three-byte characters.
    const consent = { resourceType: 'Consent', id: 'consent-1', status: 'active', note: 'é€'.repeat(mebibyte) };
    lines.splice(3000, 0, `${stagedLinePrefix(0, 99_999, 'patient-5')}${JSON.stringify(consent)}`);
    // The last line has no newline; blank lines are skipped.
    writeFileSync(path.join(directory, batchFileName(3)), `${lines.slice(0, 10).join('\n')}\n\n${lines.slice(10).join('\n')}`);

    const { patients, malformed } = readStagedBatch(directory, 3);

    expect(malformed).toEqual([]);
    expect(patients.map(([patient]) => patient)).toEqual([...expected.keys()].sort());
    for (const [patient, resources, refusesResearch] of patients) {
      expect(resources.encounters.map((encounter) => encounter.id)).toEqual(expected.get(patient));
      expect(refusesResearch).toBe(patient === 'patient-5');
    }
  });

  it('decodes a multi-byte character split between two reads', () => {
    // The name starts after `["m-1","`; its € (3 bytes in UTF-8) takes the last byte of the first read and two of the next.
    const name = `${'a'.repeat(mebibyte - '["m-1","'.length - 1)}€ tablet`;
    const second = `Ünïcödé ${'x'.repeat(100)}`;
    writeFileSync(path.join(directory, medicationFileName), `${JSON.stringify(['m-1', name])}\n${JSON.stringify(['m-2', second])}\n`);

    const names = readStagedMedicationNames(directory);

    expect(names.get('m-1')).toBe(name);
    expect(names.get('m-2')).toBe(second);
    expect(names.size).toBe(2);
  });

  it('reads a missing batch file as an empty batch', () => {
    expect(readStagedBatch(directory, 0)).toEqual({ patients: [], malformed: [] });
  });
});
