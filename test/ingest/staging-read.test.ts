import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { batchFileName, medicationFileName, readStagedBatch, readStagedMedicationNames, stagedLinePrefix } from '../../src/ingest/staging.js';

// The medication names file is read through a buffer of 1 MiB (staging.ts stagedReadBytes): these files put lines
// across its reads, a line longer than it, a multi-byte character on a read's boundary and a last line without newline.
// A batch file is read whole and its lines grouped by patient before any is parsed.
const mebibyte = 1 << 20;

describe('reading staged files back', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'cohort-cds-staging-read-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it('reads every line of a batch: one of several MiB, blank ones skipped, the last without its newline', () => {
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

    const staged = readStagedBatch(directory, 3);
    const patients = [...staged.patients()];

    expect(staged.malformed).toEqual([]);
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

  it('lists the lines that are not resources in file order, whichever patient they belong to', () => {
    const encounter = (id: string, patient: string) => JSON.stringify({ resourceType: 'Encounter', id, subject: { reference: `Patient/${patient}` } });
    const lines = [
      `${stagedLinePrefix(1, 10, 'b')}${encounter('e-1', 'b')}`,
      `${stagedLinePrefix(1, 11, 'b')}{"resourceType":"Observation","id":`,
      `${stagedLinePrefix(1, 12, 'a')}{"resourceType":"Condition"`,
      `${stagedLinePrefix(2, 3, 'a')}${encounter('e-2', 'a')}`,
      // A patient whose only line is not a resource is no patient of the batch.
      `${stagedLinePrefix(2, 4, 'c')}not json`,
    ];
    writeFileSync(path.join(directory, batchFileName(1)), `${lines.join('\n')}\n`);

    const staged = readStagedBatch(directory, 1);
    const patients = [...staged.patients()];

    expect(patients.map(([patient, resources]) => [patient, resources.encounters.map((stay) => stay.id)])).toEqual([
      ['a', ['e-2']],
      ['b', ['e-1']],
    ]);
    expect(staged.malformed.map(({ fileIndex, line, declaredType }) => [fileIndex, line, declaredType])).toEqual([
      [1, 11, 'Observation'],
      [1, 12, 'Condition'],
      [2, 4, null],
    ]);
    expect(staged.malformed.every(({ message }) => message.length > 0)).toBe(true);
  });

  it('reads a missing batch file as an empty batch', () => {
    const staged = readStagedBatch(directory, 0);
    expect([...staged.patients()]).toEqual([]);
    expect(staged.malformed).toEqual([]);
  });
});
