/**
 * Run by worker-staging.int.test.ts in a child `node` with the project's TypeScript hooks, which worker threads need
 * (jest's own process cannot start them). Stages the chunks of the files named on the command line on two worker
 * threads, several at once, and prints for each whether it matched what stageBytes gives on this thread and how it
 * travelled (a shared slot, released after use, or a message).
 */
import { readFileSync } from 'node:fs';
import { stageBytes, type StagedChunk } from '../../src/ingest/batch-work.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { openIngestProcessor } from '../../src/ingest/ingest-processor.js';

const batchCount = 8;
/** Everything of a staged chunk but its bytes, in one order. */
const countsOf = (chunk: StagedChunk) => [chunk.spans, chunk.medications, chunk.resources, chunk.byResourceType, chunk.withoutPatient, chunk.unresolvedConsents, chunk.malformed];
const [directory, ...files] = process.argv.slice(2);
const processor = await openIngestProcessor({
  threads: 2,
  batchCount,
  stagingDirectory: directory!,
  hasher: createKeyHasher('worker-staging-test-secret-0123456789abcdef'),
  settings: { vocabulary: new Map(), icd9Map: new Map(), site: 'default', optedOutPatientKeys: [] },
  output: 'copy',
});
try {
  const chunks = files.map((file) => readFileSync(file));
  // All at once: more chunks in flight than workers, so slots are made, sent to both workers and reused.
  const results = [];
  for (let round = 0; round < 2; round += 1) {
    results.push(
      ...(await Promise.all(
        chunks.map(async (bytes, index) => {
          const leased = await processor.stage(bytes, 1, index);
          const expected = stageBytes(bytes, 1, index, batchCount);
          const same = Buffer.from(leased.data).equals(Buffer.from(expected.data)) && JSON.stringify(countsOf(leased)) === JSON.stringify(countsOf(expected));
          const viaSlot = typeof leased.release === 'function';
          leased.release?.();
          return { file: index, bytes: bytes.length, same, viaSlot };
        }),
      )),
    );
  }
  process.stdout.write(JSON.stringify({ threads: processor.threads, results }));
} finally {
  await processor.close();
}
