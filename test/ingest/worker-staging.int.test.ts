/**
 * Staging on the worker threads gives what it gives on the main thread: the chunks travel in shared slots that are
 * reused (ingest-processor.ts SharedSlot), and a chunk too large for a slot in its message. Worker threads need the
 * TypeScript hooks, so the pool runs in a child `node` (worker-staging.child.ts) on chunks of the MIMIC demo and on
 * one chunk of 3 MiB (a single line, as the reader hands over a line longer than its reads).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { projectRoot } from '../../src/paths.js';
import { mimicDemoDirectory } from '../helpers/app.js';

interface ChildResult {
  readonly threads: number;
  readonly results: Array<{ readonly file: number; readonly bytes: number; readonly same: boolean; readonly viaSlot: boolean }>;
}

describe('staging on worker threads', () => {
  let scratch: string;
  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'cohort-cds-worker-staging-'));
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('stages every chunk as the main thread does, through reused slots, and a chunk larger than a slot in its message', async () => {
    const files: string[] = [];
    for (const name of readdirSync(mimicDemoDirectory).filter((file) => file.endsWith('.ndjson.gz')).sort()) {
      const bytes = gunzipSync(readFileSync(path.join(mimicDemoDirectory, name)));
      // Whole lines, at most 1 MiB a chunk (as the reader hands them over).
      for (let start = 0; start < bytes.length; ) {
        let end = bytes.lastIndexOf(0x0a, Math.min(bytes.length, start + (1 << 20)) - 1) + 1;
        if (end <= start) end = bytes.length;
        const file = path.join(scratch, `chunk-${files.length}.ndjson`);
        writeFileSync(file, bytes.subarray(start, end));
        files.push(file);
        start = end;
      }
    }
    const long = {
      resourceType: 'Encounter',
      id: 'long-encounter',
      status: 'finished',
      class: { code: 'EMER' },
      subject: { reference: 'Patient/long-patient' },
      text: { status: 'generated', div: `<div>${'x'.repeat(3 << 20)}</div>` },
    };
    const longFile = path.join(scratch, 'long.ndjson');
    writeFileSync(longFile, `${JSON.stringify(long)}\n`);
    files.push(longFile);

    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', pathToFileURL(path.join(projectRoot, 'test/helpers/run-typescript.mjs')).href, path.join(projectRoot, 'test/ingest/worker-staging.child.ts'), scratch, ...files],
      { cwd: projectRoot, maxBuffer: 16 << 20 },
    );
    const { threads, results } = JSON.parse(stdout) as ChildResult;

    expect(threads).toBe(2);
    expect(results).toHaveLength(files.length * 2);
    expect(results.filter((result) => !result.same)).toEqual([]);
    const longIndex = files.length - 1;
    expect(results.filter((result) => result.file === longIndex).map((result) => result.viaSlot)).toEqual([false, false]);
    expect(results.filter((result) => result.file !== longIndex && !result.viaSlot)).toEqual([]);
    expect(files.length).toBeGreaterThan(10);
  }, 120_000);
});
