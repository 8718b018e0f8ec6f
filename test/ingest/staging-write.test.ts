/**
 * Staging writes what it is handed, not where it was handed: a staged chunk may live in a worker's reused memory
 * (ingest-processor.ts SharedSlot) that is overwritten once the chunk is released, and staged lines wait in one
 * buffer reused from flush to flush. Staging the MIMIC demo through such memory, with a buffer smaller than a line,
 * must give the same batch files as staging it into fresh buffers.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { stageBytes, type StagedChunk } from '../../src/ingest/batch-work.js';
import { describeInputFiles, stageInput, type LeasedChunk } from '../../src/ingest/staging.js';
import { listNdjsonFiles } from '../../src/ingest/ndjson-reader.js';
import { mimicDemoDirectory } from '../helpers/app.js';

const batchCount = 8;

function filesOf(directory: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(directory).filter((file) => file !== 'manifest.json').sort()) {
    files.set(name, readFileSync(path.join(directory, name), 'utf8'));
  }
  return files;
}

describe("stageBytes into the caller's memory", () => {
  it('writes into the memory given when the lines fit and into a buffer of its own when not, with the same bytes', () => {
    const bytes = Buffer.from(readFileSync(path.join(mimicDemoDirectory, readdirSync(mimicDemoDirectory).find((file) => file.startsWith('MimicEncounterED'))!)));
    const plain = gunzipSync(bytes);
    const fresh = stageBytes(plain, 1, 0, batchCount);
    const roomy = new Uint8Array(fresh.data.length + 100);
    const into = stageBytes(plain, 1, 0, batchCount, roomy);
    expect(into.data.buffer).toBe(roomy.buffer);
    expect(Buffer.from(into.data).equals(Buffer.from(fresh.data))).toBe(true);
    expect(into.spans).toEqual(fresh.spans);

    const tight = new Uint8Array(fresh.data.length - 1);
    const apart = stageBytes(plain, 1, 0, batchCount, tight);
    expect(apart.data.buffer).not.toBe(tight.buffer);
    expect(Buffer.from(apart.data).equals(Buffer.from(fresh.data))).toBe(true);
  });
});

describe('stageInput with reused memory', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'cohort-cds-staging-write-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('copies each chunk before releasing it, and writes lines longer than its buffer whole', async () => {
    const inputs = await describeInputFiles(await listNdjsonFiles([mimicDemoDirectory]));

    const expectedDirectory = path.join(scratch, 'fresh');
    const expected = await stageInput(expectedDirectory, inputs, batchCount, {
      stage: async (bytes, firstLine, fileIndex) => stageBytes(bytes, firstLine, fileIndex, batchCount),
    });

    // Two slots, as a worker pool's: a released slot is filled with garbage before it is used again.
    const free: Uint8Array[] = [new Uint8Array(4 << 20), new Uint8Array(4 << 20)];
    let released = 0;
    let handedOut = 0;
    const stage = async (bytes: Uint8Array, firstLine: number, fileIndex: number): Promise<LeasedChunk> => {
      const slot = free.pop();
      if (!slot) throw new Error('more chunks in flight than slots');
      handedOut += 1;
      const chunk: StagedChunk = stageBytes(bytes, firstLine, fileIndex, batchCount, slot);
      return {
        ...chunk,
        release: () => {
          released += 1;
          slot.fill(0x7b);
          free.push(slot);
        },
      };
    };
    const reusedDirectory = path.join(scratch, 'reused');
    // A buffer of 200 bytes: most staged lines (an Observation is ~600) are longer than it.
    const reused = await stageInput(reusedDirectory, inputs, batchCount, { stage, concurrency: 1, bufferBytes: 200 });

    expect(handedOut).toBeGreaterThan(inputs.length - 1);
    expect(released).toBe(handedOut);
    expect(reused.batchBytes).toEqual(expected.batchBytes);
    expect(reused.counts).toEqual(expected.counts);
    const files = filesOf(reusedDirectory);
    expect(files).toEqual(filesOf(expectedDirectory));
    expect([...files.values()].join('').length).toBeGreaterThan(1_000_000);
  });
});
