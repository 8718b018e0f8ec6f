/**
 * Where the CPU-heavy work of an ingest runs: on worker threads when they can be started (the built
 * JavaScript, or TypeScript run with the project's module hooks), else on the main thread. Both run the same
 * functions (batch-work.ts), so the rows do not depend on which.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { formatCopyBatch, type CohortBatch, type PreparedCopyBatch } from '../db/cohort-encounter.repository.js';
import { convertStagedBatch, stageBytes, type ConversionSettings, type StagedChunk } from './batch-work.js';
import { keyHasherSecret, type KeyHasher } from './deidentify.js';
import type { CohortEncounterRecord } from './fhir-to-cohort.js';
import { readStagedMedicationNames, type LeasedChunk, type StagedMalformedLine } from './staging.js';

/** A converted batch, ready for the writer, with its counts. */
export interface ProcessedBatch {
  readonly batch: CohortBatch;
  readonly counts: Record<string, number>;
  /** Patient keys whose Consent refuses research use: recorded as opted out with the batch. */
  readonly consentRefusalKeys: readonly string[];
  /** Staged lines that turned out not to be resources. */
  readonly malformed: readonly StagedMalformedLine[];
}

export interface IngestProcessor {
  /** Worker threads in use; 0 when everything runs on the main thread. */
  readonly threads: number;
  /** See StagingOptions.stage. */
  stage(bytes: Uint8Array, firstLine: number, fileIndex: number): Promise<LeasedChunk>;
  convert(batch: number): Promise<ProcessedBatch>;
  close(): Promise<void>;
}

export interface IngestProcessorOptions {
  /** Worker threads wanted; 0 runs on the main thread. */
  readonly threads: number;
  readonly batchCount: number;
  readonly stagingDirectory: string;
  readonly hasher: KeyHasher;
  readonly settings: Omit<ConversionSettings, 'medicationNames'>;
  /** `copy`: batches come back in COPY's text format (made on the workers); `records`: as records. */
  readonly output: 'copy' | 'records';
  readonly log?: (message: string) => void;
}

/** Sent to each worker at its start. */
export interface WorkerSetup {
  readonly batchCount: number;
  readonly directory: string;
  readonly secret: string;
  readonly settings: Omit<ConversionSettings, 'medicationNames'>;
  readonly output: 'copy' | 'records';
}

/**
 * Where a chunk to stage is: in the request itself (`bytes`, copied), or in the first `length` bytes of a shared slot
 * (SharedSlot), whose memory after `inputBytes` takes the staged lines. The slot's memory is sent once per worker.
 */
export type StageInput =
  | { readonly bytes: Uint8Array }
  | { readonly slot: number; readonly memory?: SharedArrayBuffer; readonly inputBytes: number; readonly length: number };

export type WorkerRequest =
  | ({ readonly id: number; readonly kind: 'stage'; readonly firstLine: number; readonly fileIndex: number } & StageInput)
  | { readonly id: number; readonly kind: 'convert'; readonly batch: number };

export type WorkerResponse =
  | { readonly id: number; readonly kind: 'ready' }
  | { readonly id: number; readonly kind: 'staged'; readonly chunk: StagedChunk }
  /** Staged into the request's slot: `data` is the `size` bytes after its input. */
  | { readonly id: number; readonly kind: 'staged-in-slot'; readonly chunk: Omit<StagedChunk, 'data'>; readonly size: number }
  | {
      readonly id: number;
      readonly kind: 'converted';
      readonly counts: Record<string, number>;
      readonly consentRefusalKeys: string[];
      readonly malformed: StagedMalformedLine[];
      readonly copy: PreparedCopyBatch;
    }
  | {
      readonly id: number;
      readonly kind: 'converted';
      readonly counts: Record<string, number>;
      readonly consentRefusalKeys: string[];
      readonly malformed: StagedMalformedLine[];
      readonly records: CohortEncounterRecord[];
    }
  | { readonly id: number; readonly kind: 'log'; readonly message: string }
  | { readonly id: number; readonly kind: 'failed'; readonly message: string };

/** Worker threads for this machine: one per core, at most 4 (the database wants a core too). */
export function defaultIngestThreads(): number {
  return Math.min(4, availableParallelism());
}

function mainThreadProcessor(options: IngestProcessorOptions): IngestProcessor {
  let medicationNames: Map<string, string> | undefined;
  return {
    threads: 0,
    stage: async (bytes, firstLine, fileIndex) => stageBytes(bytes, firstLine, fileIndex, options.batchCount),
    convert: async (batch) => {
      medicationNames ??= readStagedMedicationNames(options.stagingDirectory);
      const converted = await convertStagedBatch(options.stagingDirectory, batch, options.hasher, { ...options.settings, medicationNames }, {
        ...(options.log ? { log: options.log } : {}),
        // Lets a COPY in flight (the previous batch) go on between slices of this conversion.
        pause: () => nextTurn(),
      });
      return {
        counts: converted.counts,
        consentRefusalKeys: converted.consentRefusalKeys,
        malformed: converted.malformed,
        batch: options.output === 'copy' ? { copy: formatCopyBatch(converted.records) } : { records: converted.records },
      };
    },
    close: async () => undefined,
  };
}

/** The worker's script: the built .js beside this module, else the .ts source (needs the module hooks). */
function workerScript(): URL | null {
  for (const name of ['./ingest-worker.js', './ingest-worker.ts']) {
    const url = new URL(name, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return null;
}

interface Pending {
  readonly resolve: (response: WorkerResponse) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Memory shared with the workers that carries a chunk to stage and the staged lines back: one per chunk in flight,
 * reused. Before, each chunk went in a message and its staged lines came back in a fresh buffer, about as large as
 * the chunk, transferred to the main thread, whose collector then ran a full mark-compact about every 10 MB of input
 * (measured at 100,000 encounters: 515 while staging, 114 with the slots; staging-write.test.ts, worker-staging.int.test.ts).
 */
interface SharedSlot {
  readonly id: number;
  readonly memory: SharedArrayBuffer;
  readonly input: Buffer;
  readonly output: Buffer;
  /** Workers that have been sent `memory` already. */
  readonly sentTo: Set<Worker>;
}

/** Input bytes a slot takes (the reader's chunks are 1 MiB of whole lines); larger chunks travel in their message. */
const slotInputBytes = 2 << 20;
/** Room for the staged lines: the input with a prefix per line, with margin; larger results come back in a buffer of their own. */
const slotOutputBytes = 2 * slotInputBytes;

class WorkerPool implements IngestProcessor {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly load = new Map<Worker, number>();
  private failure: Error | undefined;
  private readonly freeSlots: SharedSlot[] = [];
  private slotCount = 0;

  constructor(
    private readonly workers: readonly Worker[],
    private readonly log: ((message: string) => void) | undefined,
  ) {
    for (const worker of workers) {
      this.load.set(worker, 0);
      worker.on('message', (response: WorkerResponse) => this.receive(worker, response));
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`an ingest worker thread stopped (exit code ${code})`));
      });
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  private receive(worker: Worker, response: WorkerResponse): void {
    if (response.kind === 'log') {
      this.log?.(response.message);
      return;
    }
    const pending = this.pending.get(response.id);
    if (!pending) return;
    this.pending.delete(response.id);
    this.load.set(worker, (this.load.get(worker) ?? 1) - 1);
    if (response.kind === 'failed') pending.reject(new Error(`ingest worker: ${response.message}`));
    else pending.resolve(response);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  private request(make: (id: number, worker: Worker) => WorkerRequest): Promise<WorkerResponse> {
    if (this.failure) return Promise.reject(this.failure);
    // The least busy worker: conversions take longer than chunks, so round robin would queue behind them.
    let chosen = this.workers[0]!;
    for (const worker of this.workers) if ((this.load.get(worker) ?? 0) < (this.load.get(chosen) ?? 0)) chosen = worker;
    const id = this.nextId++;
    this.load.set(chosen, (this.load.get(chosen) ?? 0) + 1);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      chosen.postMessage(make(id, chosen));
    });
  }

  private takeSlot(): SharedSlot {
    const free = this.freeSlots.pop();
    if (free) return free;
    const memory = new SharedArrayBuffer(slotInputBytes + slotOutputBytes);
    const id = this.slotCount++;
    return { id, memory, input: Buffer.from(memory, 0, slotInputBytes), output: Buffer.from(memory, slotInputBytes, slotOutputBytes), sentTo: new Set() };
  }

  async stage(bytes: Uint8Array, firstLine: number, fileIndex: number): Promise<LeasedChunk> {
    if (bytes.length > slotInputBytes) {
      const response = await this.request((id) => ({ id, kind: 'stage', bytes, firstLine, fileIndex }));
      if (response.kind !== 'staged') throw new Error(`ingest worker answered ${response.kind} to stage`);
      return response.chunk;
    }
    const slot = this.takeSlot();
    slot.input.set(bytes);
    let response: WorkerResponse;
    try {
      response = await this.request((id, worker) => {
        const first = !slot.sentTo.has(worker);
        slot.sentTo.add(worker);
        return { id, kind: 'stage', slot: slot.id, ...(first ? { memory: slot.memory } : {}), inputBytes: slotInputBytes, length: bytes.length, firstLine, fileIndex };
      });
    } catch (error) {
      this.freeSlots.push(slot);
      throw error;
    }
    if (response.kind === 'staged') {
      this.freeSlots.push(slot);
      return response.chunk;
    }
    if (response.kind !== 'staged-in-slot') throw new Error(`ingest worker answered ${response.kind} to stage`);
    let released = false;
    return {
      ...response.chunk,
      data: slot.output.subarray(0, response.size),
      release: () => {
        if (released) return;
        released = true;
        this.freeSlots.push(slot);
      },
    };
  }

  async convert(batch: number): Promise<ProcessedBatch> {
    const response = await this.request((id) => ({ id, kind: 'convert', batch }));
    if (response.kind !== 'converted') throw new Error(`ingest worker answered ${response.kind} to convert`);
    return {
      counts: response.counts,
      consentRefusalKeys: response.consentRefusalKeys,
      malformed: response.malformed,
      batch: 'copy' in response ? { copy: response.copy } : { records: response.records },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

/**
 * The young generation of a worker's heap. A batch's parsed resources die while it is converted, but with the
 * V8 default most of them outlived two scavenges and were promoted, then mark-compacted. Measured on the
 * 10k synthetic ingest (docs/benchmarks.md, 2026-12-02 night): 96 MB took 8–9% less CPU than the default (29.4 -> 26.9 s) and
 * less resident memory; 192 MB was no faster and used more. Measured while a batch was still parsed whole before its
 * conversion (before cfde989); not measured again since patients are parsed one at a time.
 */
const workerYoungGenerationMb = 96;

/** Starts a worker and waits for it to say it is ready; rejects when it cannot load. */
function startWorker(script: URL, setup: WorkerSetup): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: workerYoungGenerationMb } });
    const onError = (error: Error) => {
      void worker.terminate();
      reject(error);
    };
    worker.once('error', onError);
    worker.once('exit', (code) => reject(new Error(`exit code ${code}`)));
    worker.once('message', (message: WorkerResponse) => {
      worker.off('error', onError);
      worker.removeAllListeners('exit');
      if (message.kind === 'ready') resolve(worker);
      else reject(new Error(`unexpected first message ${message.kind}`));
    });
  });
}

/**
 * Worker threads when asked for, possible (the hasher's secret is known, the script loads) and useful;
 * otherwise the main thread. A worker that cannot start is no error: the ingest is only slower.
 */
export async function openIngestProcessor(options: IngestProcessorOptions): Promise<IngestProcessor> {
  const secret = keyHasherSecret(options.hasher);
  const script = workerScript();
  if (options.threads <= 0 || secret === undefined || script === null) return mainThreadProcessor(options);
  const setup: WorkerSetup = {
    batchCount: options.batchCount,
    directory: options.stagingDirectory,
    secret,
    settings: options.settings,
    output: options.output,
  };
  const started = await Promise.allSettled(Array.from({ length: options.threads }, () => startWorker(script, setup)));
  const workers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (workers.length < started.length) {
    await Promise.all(workers.map((worker) => worker.terminate()));
    const reason = started.find((result): result is PromiseRejectedResult => result.status === 'rejected')?.reason as Error | undefined;
    options.log?.(`converting on the main thread: worker threads cannot start here (${reason?.message.split('\n')[0] ?? 'unknown'})`);
    return mainThreadProcessor(options);
  }
  return new WorkerPool(workers, options.log);
}
