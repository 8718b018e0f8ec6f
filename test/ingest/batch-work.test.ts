import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from '@jest/globals';
import { batchOfPatient, patientIdOfResource, stageBytes, type StagedChunk } from '../../src/ingest/batch-work.js';
import { readStagedLine } from '../../src/ingest/staging.js';
import { reduceForConversion, type ResourceLike } from '../../src/ingest/fhir-to-cohort.js';
import { mimicDemoDirectory } from '../helpers/app.js';

type Json = Record<string, any>;

const refusal = (patient: Record<string, unknown>) => ({
  resourceType: 'Consent',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  provision: { type: 'deny' },
  ...patient,
});

/** The staged lines of a chunk, by batch, read back. */
function stagedLines(chunk: StagedChunk): Array<{ batch: number; text: string }> {
  const out: Array<{ batch: number; text: string }> = [];
  let offset = 0;
  for (let span = 0; span < chunk.spans.length; span += 2) {
    const batch = chunk.spans[span]!;
    const length = chunk.spans[span + 1]!;
    const text = Buffer.from(chunk.data.subarray(offset, offset + length)).toString('utf8');
    offset += length;
    for (const line of text.split('\n')) if (line) out.push({ batch, text: line });
  }
  return out;
}

const bytesOf = (lines: readonly string[]) => Buffer.from(lines.map((line) => `${line}\n`).join(''));

describe('stageBytes and Consent', () => {
  it('stages a research refusal with its patient, counts one it cannot place, and drops other consents', () => {
    const batchCount = 8;
    const lines = [
      refusal({ patient: { reference: 'Patient/p-1' } }),
      refusal({ patient: { reference: 'urn:uuid:0b6c1f1e-1111-4c2e-9a55-2d1e3f4a5b6c' } }),
      { ...refusal({ patient: { reference: 'Patient/p-2' } }), provision: { type: 'permit' } },
      { ...refusal({ patient: { reference: 'Patient/p-3' } }), status: 'inactive' },
    ].map((resource) => JSON.stringify(resource));
    const chunk = stageBytes(bytesOf(lines), 1, 0, batchCount);
    expect(chunk.resources).toBe(4);
    expect(chunk.byResourceType).toEqual({ Consent: 4 });
    expect(chunk.unresolvedConsents).toBe(1);
    expect(chunk.withoutPatient).toBe(0);
    // Only the refusal of p-1 is staged, as a bare marker in p-1's batch: no text of the Consent is kept.
    const staged = stagedLines(chunk);
    expect(staged.map(({ batch }) => batch)).toEqual([batchOfPatient('p-1', batchCount)]);
    expect(readStagedLine(staged[0]!.text)).toEqual({ fileIndex: 0, line: 1, patientId: 'p-1', resource: { resourceType: 'Consent' }, declaredType: null });
  });
});

describe('stageBytes routes lines to their patient', () => {
  it('routes every resource of the MIMIC demo as parsing it would, most of them without parsing', () => {
    const batchCount = 16;
    let fastPath = 0;
    let staged = 0;
    const mismatches: string[] = [];
    for (const [fileIndex, name] of readdirSync(mimicDemoDirectory).filter((file) => file.endsWith('.ndjson.gz')).sort().entries()) {
      const bytes = gunzipSync(readFileSync(path.join(mimicDemoDirectory, name)));
      const lines = bytes.toString('utf8').split('\n');
      // What parsing gives: the patient and the reduced resource of each line the conversion reads.
      const expected = new Map<number, { patientId: string; reduced: ResourceLike }>();
      lines.forEach((line, index) => {
        if (!line.trim()) return;
        const resource = JSON.parse(line) as Json;
        const reduced = reduceForConversion(resource as ResourceLike);
        const patientId = patientIdOfResource(resource);
        if (reduced !== null && patientId !== null && resource.resourceType !== 'Consent') expected.set(index + 1, { patientId, reduced });
      });
      const chunk = stageBytes(bytes, 1, fileIndex, batchCount);
      expect(chunk.malformed).toEqual([]);
      const seen = new Set<number>();
      for (const { batch, text } of stagedLines(chunk)) {
        const read = readStagedLine(text);
        expect(read.fileIndex).toBe(fileIndex);
        const want = expected.get(read.line);
        // Lines staged unparsed are whole resources that reduceForConversion may still drop (vital signs).
        const reduced = typeof read.resource === 'string' ? null : reduceForConversion(read.resource);
        if (want === undefined) {
          expect(reduced).toBeNull();
          continue;
        }
        seen.add(read.line);
        if (read.patientId !== want.patientId || batch !== batchOfPatient(want.patientId, batchCount) || JSON.stringify(reduced) !== JSON.stringify(want.reduced)) {
          mismatches.push(`${name}:${read.line}`);
        }
        if (text.endsWith(lines[read.line - 1]!)) fastPath += 1;
        staged += 1;
      }
      expect([...expected.keys()].filter((line) => !seen.has(line))).toEqual([]);
    }
    expect(mismatches).toEqual([]);
    expect(staged).toBeGreaterThan(10_000);
    // The demo's lines have the compact shape: nearly all go the fast way.
    expect(fastPath / staged).toBeGreaterThan(0.95);
  });

  it('parses the lines whose shape leaves any doubt, and routes them as parsing says', () => {
    const batchCount = 64;
    const observation = (fields: Json) => ({ resourceType: 'Observation', status: 'final', category: [{ coding: [{ code: 'laboratory' }] }], code: { coding: [{ system: 'http://loinc.org', code: '2345-7' }] }, ...fields });
    const cases: Array<{ line: string; patientId: string | null }> = [
      // A contained resource with a subject of its own, before the resource's own subject.
      { line: JSON.stringify(observation({ contained: [{ resourceType: 'Observation', subject: { reference: 'Patient/other' } }], subject: { reference: 'Patient/own' } })), patientId: 'own' },
      // Whitespace after the key, and a subject that is not first.
      { line: JSON.stringify(observation({ subject: { reference: 'Patient/spaced' } }), null, 1).replace(/\n/g, ''), patientId: 'spaced' },
      // An escaped character in the reference.
      { line: JSON.stringify(observation({ subject: { reference: 'Patient/a\u00e9b' } })).replace('é', '\\u00e9'), patientId: 'aéb' },
      // A subject that is no Patient: no patient (not staged, counted).
      { line: JSON.stringify(observation({ subject: { reference: 'Group/g-1' } })), patientId: null },
      // resourceType not first.
      { line: JSON.stringify({ id: 'o-1', ...observation({ subject: { reference: 'Patient/late-type' } }) }), patientId: 'late-type' },
      // A versioned absolute reference.
      { line: JSON.stringify(observation({ subject: { reference: 'https://ehr.example/fhir/Patient/abs/_history/3' } })), patientId: 'abs' },
      // A Windows line end.
      { line: `${JSON.stringify(observation({ subject: { reference: 'Patient/crlf' } }))}\r`, patientId: 'crlf' },
    ];
    const chunk = stageBytes(bytesOf(cases.map(({ line }) => line)), 10, 3, batchCount);
    const staged = stagedLines(chunk).map(({ batch, text }) => ({ batch, ...readStagedLine(text) }));
    const wanted = cases.flatMap(({ patientId }, index) => (patientId === null ? [] : [{ line: 10 + index, patientId }]));
    expect(staged.map(({ line, patientId }) => ({ line, patientId })).sort((a, b) => a.line - b.line)).toEqual(wanted);
    for (const { batch, patientId, fileIndex } of staged) {
      expect(batch).toBe(batchOfPatient(patientId, batchCount));
      expect(fileIndex).toBe(3);
    }
    expect(chunk.withoutPatient).toBe(1);
    expect(chunk.resources).toBe(cases.length);
  });

  it('leaves a line of the compact shape that is not JSON to the conversion, which reports its file and line', () => {
    const broken = '{"resourceType":"Observation","subject":{"reference":"Patient/p-9"},"code":';
    const chunk = stageBytes(bytesOf(['', broken]), 41, 2, 4);
    expect(chunk.resources).toBe(1);
    expect(chunk.byResourceType).toEqual({ Observation: 1 });
    const [staged] = stagedLines(chunk);
    const read = readStagedLine(staged!.text);
    expect(read).toMatchObject({ fileIndex: 2, line: 42, patientId: 'p-9', declaredType: 'Observation' });
    expect(read.resource).toMatch(/^invalid JSON/);
  });
});
