/**
 * A worker thread of the ingest (see ingest-processor.ts): stages chunks of lines and converts staged batches,
 * the same functions the main thread runs when there are no workers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { formatCopyBatch } from '../db/cohort-encounter.repository.js';
import { convertStagedBatch, stageBytes } from './batch-work.js';
import { createKeyHasher } from './deidentify.js';
import type { WorkerRequest, WorkerResponse, WorkerSetup } from './ingest-processor.js';
import { readStagedMedicationNames } from './staging.js';

const setup = workerData as WorkerSetup;
const hasher = createKeyHasher(setup.secret);
let medicationNames: Map<string, string> | undefined;
/** The main thread's shared slots (ingest-processor.ts SharedSlot), by id. */
const slots = new Map<number, SharedArrayBuffer>();
const port = parentPort!;
const send = (message: WorkerResponse) => port.postMessage(message);

port.on('message', (request: WorkerRequest) => {
  void (async () => {
    try {
      if (request.kind === 'stage') {
        if ('bytes' in request) {
          const chunk = stageBytes(request.bytes, request.firstLine, request.fileIndex, setup.batchCount);
          port.postMessage({ id: request.id, kind: 'staged', chunk } satisfies WorkerResponse, [chunk.data.buffer as ArrayBuffer]);
          return;
        }
        if (request.memory) slots.set(request.slot, request.memory);
        const memory = slots.get(request.slot);
        if (!memory) throw new Error(`slot ${request.slot} was never sent`);
        const input = new Uint8Array(memory, 0, request.length);
        const output = new Uint8Array(memory, request.inputBytes);
        const { data, ...chunk } = stageBytes(input, request.firstLine, request.fileIndex, setup.batchCount, output);
        if (data.buffer === memory) {
          send({ id: request.id, kind: 'staged-in-slot', chunk, size: data.length });
        } else {
          port.postMessage({ id: request.id, kind: 'staged', chunk: { ...chunk, data } } satisfies WorkerResponse, [data.buffer as ArrayBuffer]);
        }
        return;
      }
      medicationNames ??= readStagedMedicationNames(setup.directory);
      const converted = await convertStagedBatch(setup.directory, request.batch, hasher, { ...setup.settings, medicationNames }, {
        log: (message) => send({ id: request.id, kind: 'log', message }),
      });
      send(
        setup.output === 'copy'
          ? { id: request.id, kind: 'converted', counts: converted.counts, consentRefusalKeys: converted.consentRefusalKeys, malformed: converted.malformed, copy: formatCopyBatch(converted.records) }
          : { id: request.id, kind: 'converted', counts: converted.counts, consentRefusalKeys: converted.consentRefusalKeys, malformed: converted.malformed, records: converted.records },
      );
    } catch (error) {
      send({ id: request.id, kind: 'failed', message: (error as Error).stack ?? String(error) });
    }
  })();
});
send({ id: 0, kind: 'ready' });
