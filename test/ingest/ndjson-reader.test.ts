import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { listNdjsonFiles, readNdjson, scanNdjsonFile, type MalformedLine } from '../../src/ingest/ndjson-reader.js';

const patient = (id: string) => JSON.stringify({ resourceType: 'Patient', id });

describe('NDJSON reader', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-ndjson-'));
    const exportFolder = path.join(directory, 'export');
    await mkdir(exportFolder);
    await writeFile(path.join(exportFolder, 'Patient.ndjson'), `${patient('a')}\n\n${patient('b')}\r\n`);
    await writeFile(path.join(exportFolder, 'Patient.001.ndjson'), `\uFEFF${patient('c')}\n`);
    await writeFile(path.join(exportFolder, 'MimicPatient.ndjson.gz'), gzipSync(`${patient('d')}\n${patient('e')}`));
    await writeFile(path.join(exportFolder, 'notes.txt'), 'not NDJSON');
    await writeFile(
      path.join(directory, 'broken.ndjson'),
      [patient('f'), '{"resourceType": "Patient", "id": ', '[1, 2]', '{"id": "no-type"}', '"text"', patient('g')].join('\n'),
    );
    // A gzip file cut off half way: the lines before the cut are read, the rest is reported.
    const whole = gzipSync(Array.from({ length: 2000 }, (_, index) => patient(`t${index}`)).join('\n'));
    await writeFile(path.join(directory, 'truncated.ndjson.gz'), whole.subarray(0, Math.floor(whole.length / 2)));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function readAll(paths: string[]) {
    const malformed: MalformedLine[] = [];
    const records = [];
    for await (const record of readNdjson(paths, { onMalformed: (line) => malformed.push(line) })) records.push(record);
    return { records, malformed };
  }

  it('lists the NDJSON files of a Bulk Data export folder, plain and gzip', async () => {
    const files = await listNdjsonFiles([path.join(directory, 'export')]);
    expect(files.map((file) => path.basename(file))).toEqual(['MimicPatient.ndjson.gz', 'Patient.001.ndjson', 'Patient.ndjson']);
  });

  it('reads every resource with its file and line, skipping blank lines and a byte-order mark', async () => {
    const { records, malformed } = await readAll([path.join(directory, 'export')]);
    expect(malformed).toEqual([]);
    expect(records.map((record) => record.resource.id)).toEqual(['d', 'e', 'c', 'a', 'b']);
    const b = records.find((record) => record.resource.id === 'b');
    expect(b?.line).toBe(3);
    expect(path.basename(b?.file ?? '')).toBe('Patient.ndjson');
  });

  it('reports malformed lines with file and line number and goes on', async () => {
    const file = path.join(directory, 'broken.ndjson');
    const { records, malformed } = await readAll([file]);
    expect(records.map((record) => record.resource.id)).toEqual(['f', 'g']);
    expect(malformed.map(({ file: name, line, message }) => ({ name, line, message: message.split(':')[0] }))).toEqual([
      { name: file, line: 2, message: 'invalid JSON' },
      { name: file, line: 3, message: 'not a JSON object' },
      { name: file, line: 4, message: 'no resourceType' },
      { name: file, line: 5, message: 'not a JSON object' },
    ]);
  });

  it('reports a truncated gzip file and still reads the files after it', async () => {
    const { records, malformed } = await readAll([path.join(directory, 'truncated.ndjson.gz'), path.join(directory, 'broken.ndjson')]);
    expect(malformed[0]?.file).toBe(path.join(directory, 'truncated.ndjson.gz'));
    expect(malformed[0]?.message).toMatch(/cannot read further|invalid JSON/);
    expect(records.filter((record) => String(record.resource.id).startsWith('t')).length).toBeGreaterThan(100);
    expect(records.at(-1)?.resource.id).toBe('g');
  });

  /** Every line the scanner hands over, numbered as it numbers them. */
  async function scanLines(file: string, skipLines = 0) {
    const lines: Array<[number, string]> = [];
    const scan = await scanNdjsonFile(
      file,
      (bytes, firstLine, count) => {
        const text = bytes.toString('utf8').split('\n');
        if (text.at(-1) === '') text.pop();
        expect(text).toHaveLength(count);
        text.forEach((line, index) => lines.push([firstLine + index, line]));
      },
      { skipLines },
    );
    return { lines, scan };
  }

  it('scans whole lines in order, with lines longer than a chunk, a byte-order mark and resumed line numbers', async () => {
    // Lines of 1.5 MiB span the scanner's 1 MiB chunks; a BOM starts the file; the last line lacks its newline.
    const long = (id: string) => JSON.stringify({ resourceType: 'Patient', id, text: 'x'.repeat(1.5 * (1 << 20)) });
    const want = [patient('s1'), long('s2'), '', patient('s3'), long('s4'), long('s5'), patient('s6')];
    for (const gzip of [false, true]) {
      const file = path.join(directory, gzip ? 'scan.ndjson.gz' : 'scan.ndjson');
      const text = `\uFEFF${want.join('\n')}`;
      await writeFile(file, gzip ? gzipSync(text) : text);
      const { lines, scan } = await scanLines(file);
      expect(scan).toEqual({ lines: want.length });
      expect(lines).toEqual(want.map((line, index) => [index + 1, line]));
      const resumed = await scanLines(file, 4);
      expect(resumed.lines).toEqual(want.slice(4).map((line, index) => [index + 5, line]));
      expect(resumed.scan).toEqual({ lines: want.length });
    }
  });

  it('fails on a path that does not exist', async () => {
    await expect(readAll([path.join(directory, 'missing')])).rejects.toThrow('ENOENT');
  });
});
