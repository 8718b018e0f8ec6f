/**
 * Staging: the step between reading a Bulk Data export and converting it. The files are split by resource type
 * while the conversion needs all resources of one patient together, so each resource is reduced to what the
 * conversion reads (reduceForConversion) and appended to one of N batch files chosen by a hash of its
 * patient's id. A batch file then holds every resource of its patients and is converted on its own, in
 * bounded memory whatever the size of the export.
 *
 * Staging survives being killed: a manifest records, at checkpoints, how far the input was read and how
 * long each batch file was; a later run cuts the files back to those lengths and reads on from there.
 * The staging folder holds source identifiers and dates: it is removed when the ingest finishes.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync, writevSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { gunzipSync, constants as zlibConstants } from 'node:zlib';
import path from 'node:path';
import type {
  Condition,
  Encounter,
  MedicationAdministration,
  MedicationDispense,
  MedicationRequest,
  Observation,
  Patient,
  Procedure,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type { StagedChunk } from './batch-work.js';
import { isReadByConversion, type PatientResources, type ResourceLike } from './fhir-to-cohort.js';
import { isGzip, newline, parseResourceLine, scanNdjsonFile, type MalformedLine } from './ndjson-reader.js';

/** One input file as it was when the ingest started; a changed file makes a new ingest, not a resumed one. */
export interface InputFile {
  readonly path: string;
  readonly bytes: number;
  readonly modifiedMs: number;
  readonly gzip: boolean;
  /** Bytes once uncompressed, estimated from the start of a gzip file (the size itself for a plain one). */
  readonly estimatedBytes: number;
}

export interface StagingCounts {
  files: number;
  lines: number;
  resources: number;
  byResourceType: Record<string, number>;
  malformedCount: number;
  /** The first `maximumMalformedListed` malformed lines. */
  malformed: MalformedLine[];
  /** Resources the conversion would read but that name no patient. */
  withoutPatient: number;
  /** Consents refusing research use whose patient cannot be told. */
  unresolvedConsents: number;
}

export interface StagingProgress {
  readonly file: string;
  /** Index of the file being read in the input list. */
  readonly fileIndex: number;
  /** Bytes of the input files (as stored) read so far, including those read by an interrupted run. */
  readonly bytesRead: number;
  readonly bytesTotal: number;
  readonly resourcesRead: number;
}

/** A staged chunk, and what to call once its data has been copied out (it may be a worker's reused memory). */
export type LeasedChunk = StagedChunk & { readonly release?: () => void };

export interface StagingOptions {
  /**
   * Turns a chunk of whole lines of input file `fileIndex` into staged lines (batch-work.ts stageBytes, on this thread
   * or a worker). `bytes` may be reused once the promise settles; the chunk's data until its `release`.
   */
  readonly stage: (bytes: Uint8Array, firstLine: number, fileIndex: number) => Promise<LeasedChunk>;
  /** Chunks being staged at once; their results are written in input order. */
  readonly concurrency?: number;
  onProgress?(progress: StagingProgress): void;
  /** Lines between two checkpoints; each checkpoint writes the buffered batches and the manifest. */
  readonly checkpointLines?: number;
  /** Batches an interrupted run stored already: their files may be gone (removeStagedBatch). */
  readonly storedBatches?: ReadonlySet<number>;
  /** Bytes of staged lines held before they are written (flushBytes by default; smaller in tests). */
  readonly bufferBytes?: number;
}

export interface StagedInput {
  readonly directory: string;
  readonly batchCount: number;
  /** Size of each batch file, for progress while converting. */
  readonly batchBytes: readonly number[];
  readonly counts: StagingCounts;
  /** Whether an earlier, interrupted run had staged part of the input already. */
  readonly resumed: boolean;
}

interface Manifest {
  readonly format: typeof manifestFormat;
  readonly inputs: readonly InputFile[];
  readonly batchCount: number;
  /** The next line to stage: lines before `line` of file `file` (and all earlier files) are staged. */
  readonly next: { readonly file: number; readonly line: number };
  readonly batchBytes: readonly number[];
  readonly medicationBytes: number;
  readonly counts: StagingCounts;
  readonly complete: boolean;
}

// 2: Consent refusals are staged with their patient. 3: lines staged with file and line, most of them unparsed.
const manifestFormat = 3;
const manifestName = 'manifest.json';
export const medicationFileName = 'medications.ndjson';
export const maximumMalformedListed = 1000;
const defaultCheckpointLines = 250_000;
const progressEveryResources = 5000;
/**
 * Bytes of staged lines buffered across all batches before they are written out, in one buffer reused from flush to
 * flush. Holding each chunk's own buffer until the flush, with a fresh one for every chunk, made the main thread's
 * collector run a full mark-compact about every 10 MB of input (measured at 100,000 encounters: 515 while staging 4.9 GB).
 */
const flushBytes = 8 << 20;
/**
 * Input bytes (uncompressed) per batch: each worker thread holds a batch's staged bytes whole while it converts it
 * (readStagedBatch), besides one patient's parsed resources at a time.
 */
const targetBatchInputBytes = 16 << 20;
/** Compressed bytes sampled from the start of a gzip file to estimate its uncompressed size. */
const gzipSampleBytes = 1 << 20;
const maximumBatchCount = 4096;

/** The uncompressed size of a gzip file, estimated from the compression ratio of its first MiB. */
async function estimateGunzippedBytes(file: string, bytes: number): Promise<number> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(Math.min(bytes, gzipSampleBytes)), 0, Math.min(bytes, gzipSampleBytes), 0);
    // A sample cut mid-stream: inflate what there is without asking for the end.
    const inflated = gunzipSync(buffer.subarray(0, bytesRead), { finishFlush: zlibConstants.Z_SYNC_FLUSH }).length;
    return Math.round((bytes * inflated) / Math.max(1, bytesRead));
  } catch {
    // Not readable as gzip after all: reading it will say so; size the batches as for a plain file.
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Writes the pieces at `position` with as few system calls as it can (writev); returns the bytes written. */
function writeAll(descriptor: number, pieces: readonly Uint8Array[], position: number): number {
  const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
  const written = pieces.length === 1 ? writeSync(descriptor, pieces[0]!, 0, total, position) : writevSync(descriptor, pieces as Uint8Array[], position);
  if (written === total) return total;
  // A short write (more pieces than the system takes at once, a full disk): the rest in one piece.
  const rest = Buffer.concat(pieces as Uint8Array[]).subarray(written);
  return written + writeSync(descriptor, rest, 0, rest.length, position + written);
}

/** Size, time and compression of each input file. */
export async function describeInputFiles(files: readonly string[]): Promise<InputFile[]> {
  return Promise.all(
    files.map(async (file) => {
      const info = await stat(file);
      const gzip = await isGzip(file);
      const estimatedBytes = gzip ? await estimateGunzippedBytes(file, info.size) : info.size;
      return { path: file, bytes: info.size, modifiedMs: Math.trunc(info.mtimeMs), gzip, estimatedBytes };
    }),
  );
}

/** A power of two that gives batches of about 16 MB of uncompressed input; 1 for the demo. */
export function chooseBatchCount(inputs: readonly InputFile[]): number {
  const estimated = inputs.reduce((sum, input) => sum + input.estimatedBytes, 0);
  let count = 1;
  while (count < maximumBatchCount && estimated / count > targetBatchInputBytes) count *= 2;
  return count;
}

export const batchFileName = (batch: number) => `batch-${String(batch).padStart(5, '0')}.ndjson`;

function emptyCounts(files: number): StagingCounts {
  return { files, lines: 0, resources: 0, byResourceType: {}, malformedCount: 0, malformed: [], withoutPatient: 0, unresolvedConsents: 0 };
}

function sameInputs(a: readonly InputFile[], b: readonly InputFile[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function readManifest(directory: string): Manifest | null {
  try {
    const manifest = JSON.parse(readFileSync(path.join(directory, manifestName), 'utf8')) as Manifest;
    return manifest.format === manifestFormat ? manifest : null;
  } catch {
    return null;
  }
}

function writeManifest(directory: string, manifest: Manifest): void {
  // Written beside and renamed over: a run killed while writing leaves the previous manifest whole.
  const temporary = path.join(directory, `${manifestName}.tmp`);
  writeFileSync(temporary, JSON.stringify(manifest));
  renameSync(temporary, path.join(directory, manifestName));
}

/**
 * Whether every staged file is at least as long as the manifest says (a crash of the machine could lose writes);
 * the files of batches stored already are not needed.
 */
function filesMatch(directory: string, manifest: Manifest, stored: ReadonlySet<number>): boolean {
  const sizeOf = (name: string) => (existsSync(path.join(directory, name)) ? statSync(path.join(directory, name)).size : -1);
  return (
    manifest.batchBytes.every((bytes, batch) => stored.has(batch) || sizeOf(batchFileName(batch)) >= bytes) &&
    sizeOf(medicationFileName) >= manifest.medicationBytes
  );
}

/**
 * Removes the file of a batch once it is stored: a large export's staging is as large as the export itself
 * uncompressed, and the database grows as it shrinks. A resumed run skips stored batches, so never reads it.
 */
export function removeStagedBatch(directory: string, batch: number): void {
  rmSync(path.join(directory, batchFileName(batch)), { force: true });
}

/** An identifier for a set of inputs and a batch count, for the ingest run's fingerprint. */
export function describeStagingKey(inputs: readonly InputFile[], batchCount: number): string {
  return createHash('sha256').update(JSON.stringify({ format: manifestFormat, inputs, batchCount })).digest('hex');
}

/**
 * Stages the input files into `directory` (made if missing), or finishes staging them after an interrupted
 * run; returns at once when they are staged already.
 */
export async function stageInput(directory: string, inputs: readonly InputFile[], batchCount: number, options: StagingOptions): Promise<StagedInput> {
  const previous = readManifest(directory);
  const usable =
    previous !== null &&
    sameInputs(previous.inputs, inputs) &&
    previous.batchCount === batchCount &&
    // Batches are stored only once staging is complete: before that, every file must be there.
    filesMatch(directory, previous, previous.complete ? (options.storedBatches ?? new Set()) : new Set());
  if (usable && previous.complete) {
    return { directory, batchCount, batchBytes: previous.batchBytes, counts: previous.counts, resumed: true };
  }
  // Whatever is there and cannot be resumed (other inputs, lost writes) is started over.
  if (!usable) removeStaging(directory);
  mkdirSync(directory, { recursive: true, mode: 0o700 });

  const batchBytes = usable ? [...previous.batchBytes] : new Array<number>(batchCount).fill(0);
  let medicationBytes = usable ? previous.medicationBytes : 0;
  const counts: StagingCounts = usable ? previous.counts : emptyCounts(inputs.length);
  const start = usable ? previous.next : { file: 0, line: 0 };
  const resumed = usable && (start.file > 0 || start.line > 0);

  // Cut every file back to what the manifest vouches for; lines after it are read again.
  const openFile = (name: string, bytes: number) => {
    const descriptor = openSync(path.join(directory, name), usable ? 'r+' : 'w');
    if (usable) ftruncateSync(descriptor, bytes);
    return descriptor;
  };
  const descriptors = batchBytes.map((bytes, batch) => openFile(batchFileName(batch), bytes));
  const medicationDescriptor = openFile(medicationFileName, medicationBytes);
  const pending: Uint8Array[][] = Array.from({ length: batchCount }, () => []);
  const pendingMedications: string[] = [];
  let pendingMedicationCharacters = 0;
  // Staged lines waiting to be written are copied here (the chunk's memory may be reused once released); `pending`
  // holds views of it. Written out when full.
  const bufferBytes = options.bufferBytes ?? flushBytes;
  const buffer = Buffer.allocUnsafeSlow(bufferBytes);
  let buffered = 0;
  const keep = (batch: number, bytes: Uint8Array) => {
    if (buffered + bytes.length > buffer.length) flush();
    if (bytes.length > buffer.length) {
      // Longer than the buffer: written at once from the chunk, before it is released.
      pending[batch]!.push(bytes);
      flush();
      return;
    }
    buffer.set(bytes, buffered);
    pending[batch]!.push(buffer.subarray(buffered, buffered + bytes.length));
    buffered += bytes.length;
  };

  const flush = () => {
    for (let batch = 0; batch < batchCount; batch += 1) {
      const lines = pending[batch]!;
      if (lines.length === 0) continue;
      batchBytes[batch]! += writeAll(descriptors[batch]!, lines, batchBytes[batch]!);
      pending[batch] = [];
    }
    if (pendingMedications.length > 0) {
      medicationBytes += writeSync(medicationDescriptor, pendingMedications.join(''), medicationBytes);
      pendingMedications.length = 0;
    }
    pendingMedicationCharacters = 0;
    buffered = 0;
  };
  const checkpoint = (next: Manifest['next'], complete = false) => {
    flush();
    writeManifest(directory, { format: manifestFormat, inputs, batchCount, next, batchBytes, medicationBytes, counts, complete });
  };

  const bytesBefore = (file: number) => inputs.slice(0, file).reduce((sum, input) => sum + input.bytes, 0);
  const bytesTotal = bytesBefore(inputs.length);
  const checkpointLines = options.checkpointLines ?? defaultCheckpointLines;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  try {
    if (!usable) checkpoint(start);
    for (let fileIndex = start.file; fileIndex < inputs.length; fileIndex += 1) {
      const file = inputs[fileIndex]!.path;
      const offset = bytesBefore(fileIndex);
      let fileBytes = 0;
      let lastProgressAt = -1;
      const progress = () =>
        options.onProgress?.({ file, fileIndex, bytesRead: offset + fileBytes, bytesTotal, resourcesRead: counts.resources });
      progress();
      const malformedLine = (line: number, message: string) => {
        counts.malformedCount += 1;
        if (counts.malformed.length < maximumMalformedListed) counts.malformed.push({ file, line, message });
      };

      // Chunks in input order; each is written when it and all before it are staged.
      const inFlight: Array<{ readonly staged: Promise<LeasedChunk>; readonly lastLine: number; readonly lines: number }> = [];
      let sinceCheckpoint = 0;
      const writeOldest = async () => {
        const oldest = inFlight.shift()!;
        const chunk = await oldest.staged;
        counts.lines += oldest.lines;
        counts.resources += chunk.resources;
        counts.withoutPatient += chunk.withoutPatient;
        counts.unresolvedConsents += chunk.unresolvedConsents;
        for (const [type, count] of Object.entries(chunk.byResourceType)) counts.byResourceType[type] = (counts.byResourceType[type] ?? 0) + count;
        for (const { line, message } of chunk.malformed) malformedLine(line, message);
        let offset = 0;
        for (let span = 0; span < chunk.spans.length; span += 2) {
          const batch = chunk.spans[span]!;
          const length = chunk.spans[span + 1]!;
          keep(batch, chunk.data.subarray(offset, offset + length));
          offset += length;
        }
        chunk.release?.();
        if (chunk.medications) {
          pendingMedications.push(chunk.medications);
          pendingMedicationCharacters += chunk.medications.length;
        }
        sinceCheckpoint += oldest.lines;
        if (sinceCheckpoint >= checkpointLines) {
          checkpoint({ file: fileIndex, line: oldest.lastLine });
          sinceCheckpoint = 0;
        } else if (pendingMedicationCharacters >= bufferBytes) {
          flush();
        }
        if (counts.resources - lastProgressAt >= progressEveryResources) {
          lastProgressAt = counts.resources;
          progress();
        }
      };

      const scan = await scanNdjsonFile(
        file,
        async (bytes, firstLine, lines) => {
          const staged = options.stage(bytes, firstLine, fileIndex);
          // Settled later, in order; until then a rejection must not count as unhandled.
          staged.catch(() => undefined);
          inFlight.push({ staged, lastLine: firstLine + lines - 1, lines });
          while (inFlight.length > concurrency) await writeOldest();
        },
        {
          skipLines: fileIndex === start.file ? start.line : 0,
          onBytesRead: (bytes) => {
            fileBytes = bytes;
          },
        },
      );
      while (inFlight.length > 0) await writeOldest();
      if (scan.error) malformedLine(scan.lines + 1, `cannot read further: ${scan.error.message}`);
      fileBytes = inputs[fileIndex]!.bytes;
      progress();
      checkpoint({ file: fileIndex + 1, line: 0 }, fileIndex + 1 === inputs.length);
    }
    if (start.file >= inputs.length) checkpoint({ file: inputs.length, line: 0 }, true);
  } finally {
    for (const descriptor of [...descriptors, medicationDescriptor]) closeSync(descriptor);
  }
  return { directory, batchCount, batchBytes, counts, resumed };
}

interface MutablePatientResources {
  patient: Patient | undefined;
  encounters: Encounter[];
  conditions: Condition[];
  observations: Observation[];
  serviceRequests: ServiceRequest[];
  medications: Array<MedicationDispense | MedicationAdministration | MedicationRequest>;
  procedures: Procedure[];
  /** A Consent refusing research use was staged for the patient (batch-work.ts stageLines). */
  refusesResearch: boolean;
}

function addResource(resources: MutablePatientResources, resource: ResourceLike): void {
  switch (resource.resourceType) {
    case 'Patient':
      resources.patient = resource as unknown as Patient;
      return;
    case 'Encounter':
      resources.encounters.push(resource as unknown as Encounter);
      return;
    case 'Condition':
      resources.conditions.push(resource as unknown as Condition);
      return;
    case 'Observation':
      resources.observations.push(resource as unknown as Observation);
      return;
    case 'ServiceRequest':
      resources.serviceRequests.push(resource as unknown as ServiceRequest);
      return;
    case 'Procedure':
      resources.procedures.push(resource as unknown as Procedure);
      return;
    case 'Consent':
      resources.refusesResearch = true;
      return;
    default:
      resources.medications.push(resource as unknown as MedicationDispense | MedicationAdministration | MedicationRequest);
  }
}

/** Bytes read from a staged file at a time; a line longer than this grows the buffer. */
const stagedReadBytes = 1 << 20;

/**
 * Calls `each` for every line of a staged file, reading it through one buffer: neither the file nor a string of
 * it is ever held whole. Each line is decoded on its own, so its string is small and dies young. Synchronous, as
 * a worker's conversion is; staged files are plain UTF-8 without a byte-order mark (scanNdjsonFile reads input).
 */
function forEachStagedLine(file: string, each: (line: string) => void): void {
  if (!existsSync(file)) return;
  const descriptor = openSync(file, 'r');
  try {
    let buffer = Buffer.allocUnsafe(stagedReadBytes);
    // Bytes [0, kept) of the buffer are the start of a line that goes on in the next read.
    let kept = 0;
    for (;;) {
      if (kept === buffer.length) buffer = Buffer.concat([buffer, Buffer.allocUnsafe(buffer.length)]);
      const read = readSync(descriptor, buffer, kept, buffer.length - kept, null);
      const end = kept + read;
      const filled = buffer.subarray(0, end);
      let start = 0;
      for (let at = filled.indexOf(newline, kept); at !== -1; at = filled.indexOf(newline, start)) {
        if (at > start) each(filled.toString('utf8', start, at));
        start = at + 1;
      }
      if (read === 0) {
        // A last line without its newline.
        if (end > start) each(filled.toString('utf8', start, end));
        return;
      }
      buffer.copy(buffer, 0, start, end);
      kept = end - start;
    }
  } finally {
    closeSync(descriptor);
  }
}

/**
 * A staged line: `<file index> TAB <line number> TAB <patient id as JSON> TAB <resource JSON>`. The file and line
 * let the conversion report a line that turns out not to be JSON; the resource is the input line as it was
 * (fast path) or reduced to the fields the conversion reads (reduceForConversion).
 */
export function stagedLinePrefix(fileIndex: number, line: number, patientId: string): string {
  return `${fileIndex}\t${line}\t${JSON.stringify(patientId)}\t`;
}

/** One staged line read back: the resource parsed, or why it could not be. */
export interface StagedResource {
  readonly fileIndex: number;
  readonly line: number;
  readonly patientId: string;
  /** The parsed resource; a string says why the line is not a resource (as parseResourceLine). */
  readonly resource: ResourceLike | string;
  /** The resource type named at the start of the line (for a line that is not a resource). */
  readonly declaredType: string | null;
}

/** The patient id of a staged line's prefix from its JSON string (stagedLinePrefix), parsed only when it has escapes. */
function unquotePatientId(quoted: string): string {
  return quoted.includes('\\') ? (JSON.parse(quoted) as string) : quoted.slice(1, -1);
}

/** Reads a staged line back (stagedLinePrefix); the resource is parsed here, once. */
export function readStagedLine(text: string): StagedResource {
  const first = text.indexOf('\t');
  const second = text.indexOf('\t', first + 1);
  const third = text.indexOf('\t', second + 1);
  const patientId = unquotePatientId(text.slice(second + 1, third));
  const json = text.slice(third + 1);
  const parsed = parseResourceLine(json);
  const declared = typeof parsed === 'string' ? /"resourceType"\s*:\s*"([^"\\]+)"/.exec(json)?.[1] ?? null : null;
  return {
    fileIndex: Number(text.slice(0, first)),
    line: Number(text.slice(first + 1, second)),
    patientId,
    resource: typeof parsed === 'string' ? parsed : (parsed as unknown as ResourceLike),
    declaredType: declared,
  };
}

/** A staged line that turned out not to be a resource (found when its batch is converted). */
export interface StagedMalformedLine {
  /** Index of the input file in the run's list. */
  readonly fileIndex: number;
  readonly line: number;
  readonly message: string;
  /** The resource type the line began with (staging counted it as a resource of that type). */
  readonly declaredType: string | null;
}

export interface StagedBatch {
  /**
   * The resources of each patient, by patient id in sorted order, parsed when the patient is reached (and whether a
   * Consent of theirs refuses research use): one patient's resources are in memory at a time. Patients none of whose
   * staged lines is a resource the conversion reads are left out.
   */
  patients(): Generator<[string, PatientResources, boolean]>;
  /** The staged lines that are not resources, in file order; complete once `patients()` has been read to the end. */
  readonly malformed: StagedMalformedLine[];
}

const tab = 0x09;

/**
 * Reads one staged batch back, parsing each resource once (readStagedLine) and one patient at a time. The file's
 * bytes are read whole (about targetBatchInputBytes, kept outside the JavaScript heap) and its lines grouped by the
 * patient id of their prefix without being parsed; a patient's lines are then parsed, converted by the caller and
 * dropped before the next one's. The parsed resources thus die young instead of living as long as the batch (measured
 * at 100,000 encounters: the workers' collector took 23% of their conversion time when the whole batch was parsed
 * first).
 */
export function readStagedBatch(directory: string, batch: number): StagedBatch {
  const file = path.join(directory, batchFileName(batch));
  const bytes = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
  // [start, end) of each patient's lines, in file order.
  const linesOf = new Map<string, number[]>();
  for (let start = 0; start < bytes.length; ) {
    let end = bytes.indexOf(newline, start);
    if (end === -1) end = bytes.length;
    if (end > start) {
      const first = bytes.indexOf(tab, start);
      const second = first === -1 || first >= end ? -1 : bytes.indexOf(tab, first + 1);
      const third = second === -1 || second >= end ? -1 : bytes.indexOf(tab, second + 1);
      if (third === -1 || third >= end) throw new Error(`staged batch ${batch} holds a line without its prefix at byte ${start}`);
      const patientId = unquotePatientId(bytes.toString('utf8', second + 1, third));
      let lines = linesOf.get(patientId);
      if (!lines) {
        lines = [];
        linesOf.set(patientId, lines);
      }
      lines.push(start, end);
    }
    start = end + 1;
  }
  const patientIds = [...linesOf.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const malformed: Array<{ readonly at: number; readonly line: StagedMalformedLine }> = [];
  const found: StagedMalformedLine[] = [];
  function* patients(): Generator<[string, PatientResources, boolean]> {
    for (const patientId of patientIds) {
      const lines = linesOf.get(patientId)!;
      const resources: MutablePatientResources = {
        patient: undefined,
        encounters: [],
        conditions: [],
        observations: [],
        serviceRequests: [],
        medications: [],
        procedures: [],
        refusesResearch: false,
      };
      // As when the lines were not grouped first: a patient none of whose lines is a resource the conversion reads is none.
      let kept = false;
      for (let index = 0; index < lines.length; index += 2) {
        const at = lines[index]!;
        const staged = readStagedLine(bytes.toString('utf8', at, lines[index + 1]));
        if (typeof staged.resource === 'string') {
          malformed.push({ at, line: { fileIndex: staged.fileIndex, line: staged.line, message: staged.resource, declaredType: staged.declaredType } });
          continue;
        }
        // Lines staged unparsed are whole resources: kept when the conversion reads them, as the others were when
        // staged (reduced, which converts the same; measured at 100,000 encounters: the copy took 2% of the workers).
        const resource = staged.resource;
        if (resource.resourceType !== 'Consent' && !isReadByConversion(resource)) continue;
        addResource(resources, resource);
        kept = true;
      }
      if (!kept) continue;
      const { refusesResearch, ...rest } = resources;
      yield [patientId, rest, refusesResearch];
    }
    malformed.sort((a, b) => a.at - b.at);
    for (const { line } of malformed) found.push(line);
  }
  return { patients, malformed: found };
}

/** Medication resource id → product name, from every Medication resource of the input. */
export function readStagedMedicationNames(directory: string): Map<string, string> {
  const names = new Map<string, string>();
  forEachStagedLine(path.join(directory, medicationFileName), (line) => {
    const [id, name] = JSON.parse(line) as [string, string];
    names.set(id, name);
  });
  return names;
}

/** Removes a staging folder (it holds source identifiers and dates). */
export function removeStaging(directory: string): void {
  rmSync(directory, { recursive: true, force: true });
}
