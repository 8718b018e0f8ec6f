import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

/** One FHIR resource as parsed; its shape is checked by whoever uses it. */
export interface FhirResource {
  readonly resourceType: string;
  readonly [field: string]: unknown;
}

/** A line that could not be read as a resource; the run goes on without it. */
export interface MalformedLine {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface NdjsonRecord {
  readonly resource: FhirResource;
  readonly file: string;
  readonly line: number;
}

export interface NdjsonReadOptions {
  onMalformed?(malformed: MalformedLine): void;
  onFileStart?(file: string): void;
  onFileEnd?(file: string, lines: number): void;
}

// Bulk Data exports name files after the resource type (`Patient.ndjson`, `Patient.000.ndjson`); MIMIC adds
// a prefix (`MimicPatient.ndjson.gz`). The type is taken from each line, so any such name is accepted.
const ndjsonName = /\.(?:ndjson|jsonl)(?:\.gz)?$/i;

/** The NDJSON files named by `paths`: files as given, folders by their *.ndjson[.gz] entries, sorted. */
export async function listNdjsonFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const given of paths) {
    const resolved = path.resolve(given);
    const info = await stat(resolved);
    if (info.isDirectory()) {
      const entries = await readdir(resolved, { withFileTypes: true });
      files.push(
        ...entries
          .filter((entry) => entry.isFile() && ndjsonName.test(entry.name))
          .map((entry) => path.join(resolved, entry.name))
          .sort(),
      );
    } else {
      files.push(resolved);
    }
  }
  return [...new Set(files)];
}

/** Whether a file starts with the gzip magic bytes. */
export async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Parses one line; a string says why it is not a resource. */
export function parseResourceLine(text: string): FhirResource | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `invalid JSON: ${(error as Error).message}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const resourceType = (value as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string' || resourceType.length === 0) return 'no resourceType';
  return value as FhirResource;
}

/**
 * Streams the resources of one NDJSON file (plain or gzip, told by its first bytes), line by line.
 * A bad line, or a file that breaks off (truncated gzip), is reported and skipped.
 */
export async function* readNdjsonFile(file: string, options: NdjsonReadOptions = {}): AsyncGenerator<NdjsonRecord> {
  const source = createReadStream(file);
  const input = (await isGzip(file)) ? source.pipe(createGunzip()) : source;
  // A pipe does not forward errors: pass the file's own (EACCES, EIO) on to what readline reads.
  if (input !== source) source.on('error', (error) => input.destroy(error));
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  options.onFileStart?.(file);
  try {
    for await (const raw of lines) {
      line += 1;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (text.trim().length === 0) continue;
      const parsed = parseResourceLine(text);
      if (typeof parsed === 'string') options.onMalformed?.({ file, line, message: parsed });
      else yield { resource: parsed, file, line };
    }
  } catch (error) {
    options.onMalformed?.({ file, line: line + 1, message: `cannot read further: ${(error as Error).message}` });
  } finally {
    lines.close();
    source.destroy();
  }
  options.onFileEnd?.(file, line);
}

/** Streams every resource of every NDJSON file under `paths`, each file read once. */
export async function* readNdjson(paths: readonly string[], options: NdjsonReadOptions = {}): AsyncGenerator<NdjsonRecord> {
  for (const file of await listNdjsonFiles(paths)) yield* readNdjsonFile(file, options);
}

export interface NdjsonScanOptions {
  /** Lines handled by an earlier run: read past without being decoded or handed over. */
  readonly skipLines?: number;
  /** Bytes of the file (as stored, compressed or not) read so far; called as they are read. */
  onBytesRead?(bytes: number): void;
}

export interface NdjsonScan {
  /** Lines in the file, or up to where it could not be read further. */
  readonly lines: number;
  /** What stopped the reading before the end (a truncated gzip, EIO), if anything did. */
  readonly error?: Error;
}

const newline = 0x0a;

/**
 * Hands the lines of a plain or gzip NDJSON file to `onLines`, a chunk at a time and in order: `firstLine` is
 * the number (from 1) of the chunk's first line; a byte-order mark and trailing CRs are removed, blank lines
 * are kept. Lines are cut from the raw chunks with no promise per line: this is the reader for large exports.
 * The next chunk is read when the promise `onLines` returns (if any) settles.
 */
export async function scanNdjsonFile(
  file: string,
  onLines: (lines: string[], firstLine: number) => void | Promise<void>,
  options: NdjsonScanOptions = {},
): Promise<NdjsonScan> {
  const skipLines = options.skipLines ?? 0;
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const input = (await isGzip(file)) ? source.pipe(createGunzip({ chunkSize: 1 << 20 })) : source;
  if (input !== source) source.on('error', (error) => input.destroy(error));
  let line = 0;
  // The start of a line that continues in the next chunk.
  let carried: Buffer[] = [];
  let lines: string[] = [];
  let firstLine = 0;
  const take = (buffer: Buffer, start: number, end: number) => {
    line += 1;
    if (line <= skipLines) return;
    let stop = end;
    if (stop > start && buffer[stop - 1] === 0x0d) stop -= 1;
    let text = buffer.toString('utf8', start, stop);
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (lines.length === 0) firstLine = line;
    lines.push(text);
  };
  const handOver = async () => {
    if (lines.length === 0) return;
    const chunk = lines;
    lines = [];
    try {
      await onLines(chunk, firstLine);
    } catch (error) {
      throw new LineHandlerFailure(error);
    }
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      options.onBytesRead?.(source.bytesRead);
      let start = 0;
      let end = chunk.indexOf(newline, start);
      if (end !== -1 && carried.length > 0) {
        const joined = Buffer.concat([...carried, chunk.subarray(0, end)]);
        carried = [];
        take(joined, 0, joined.length);
        start = end + 1;
        end = chunk.indexOf(newline, start);
      }
      while (end !== -1) {
        take(chunk, start, end);
        start = end + 1;
        end = chunk.indexOf(newline, start);
      }
      if (start < chunk.length) carried.push(chunk.subarray(start));
      await handOver();
    }
    if (carried.length > 0) {
      const joined = Buffer.concat(carried);
      carried = [];
      take(joined, 0, joined.length);
    }
    await handOver();
    options.onBytesRead?.(source.bytesRead);
    return { lines: line };
  } catch (error) {
    // A failure of the caller's handler is the caller's; only reading errors end the file quietly.
    if (error instanceof LineHandlerFailure) throw error.cause;
    // Lines complete before the error are still handed over.
    try {
      await handOver();
    } catch (failure) {
      throw failure instanceof LineHandlerFailure ? failure.cause : failure;
    }
    return { lines: line, error: error as Error };
  } finally {
    source.destroy();
  }
}

class LineHandlerFailure extends Error {
  constructor(override readonly cause: unknown) {
    super('line handler failed');
  }
}
