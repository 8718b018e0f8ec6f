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

/** The byte that ends an NDJSON line. */
export const newline = 0x0a;

/**
 * Hands the bytes of a plain or gzip NDJSON file to `onChunk`, a chunk of whole lines at a time and in order,
 * undecoded: `firstLine` is the number (from 1) of the chunk's first line and `lines` how many it holds (the
 * last line of a file may lack its newline). A byte-order mark at the start of the file is removed; blank
 * lines and trailing CRs are left to the reader of the chunk. Nothing is decoded or parsed here, and there is
 * no promise per line: this is the reader for large exports. The next chunk is read when the promise
 * `onChunk` returns (if any) settles.
 */
export async function scanNdjsonFile(
  file: string,
  onChunk: (bytes: Buffer, firstLine: number, lines: number) => void | Promise<void>,
  options: NdjsonScanOptions = {},
): Promise<NdjsonScan> {
  const skipLines = options.skipLines ?? 0;
  const source = createReadStream(file, { highWaterMark: 1 << 20 });
  const input = (await isGzip(file)) ? source.pipe(createGunzip({ chunkSize: 1 << 20 })) : source;
  if (input !== source) source.on('error', (error) => input.destroy(error));
  // Lines counted so far (complete ones, and the partial one at the end when the file ends).
  let line = 0;
  let first = true;
  // The start of a line that continues in the next chunk.
  let carried: Buffer | null = null;
  const handOver = async (bytes: Buffer, lines: number) => {
    // Lines an earlier run handled are counted, never handed over.
    let start = 0;
    let firstLine = line + 1;
    while (firstLine <= skipLines && lines > 0) {
      start = bytes.indexOf(newline, start) + 1;
      if (start === 0) start = bytes.length;
      firstLine += 1;
      lines -= 1;
    }
    line = firstLine - 1 + lines;
    if (lines === 0) return;
    try {
      await onChunk(start === 0 ? bytes : bytes.subarray(start), firstLine, lines);
    } catch (error) {
      throw new LineHandlerFailure(error);
    }
  };
  const countLines = (bytes: Buffer, end: number) => {
    let count = 0;
    for (let at = bytes.indexOf(newline); at !== -1 && at < end; at = bytes.indexOf(newline, at + 1)) count += 1;
    return count;
  };
  try {
    for await (const piece of input as AsyncIterable<Buffer>) {
      options.onBytesRead?.(source.bytesRead);
      let chunk: Buffer = piece;
      if (carried && first) {
        // The start of the file was too short to tell a byte-order mark: join it whole.
        chunk = Buffer.concat([carried, piece]);
        carried = null;
      } else if (carried) {
        // Only the line that spans the two pieces is copied, not the whole piece.
        const end = piece.indexOf(newline);
        if (end === -1) {
          carried = Buffer.concat([carried, piece]);
          continue;
        }
        const spanning = Buffer.concat([carried, piece.subarray(0, end + 1)]);
        carried = null;
        await handOver(spanning, 1);
        chunk = piece.subarray(end + 1);
        if (chunk.length === 0) continue;
      }
      if (first && chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
      if (first && chunk.length < 3 && chunk.length > 0 && chunk[0] === 0xef) {
        carried = chunk;
        continue;
      }
      first = false;
      const last = chunk.lastIndexOf(newline);
      if (last === -1) {
        carried = chunk;
        continue;
      }
      if (last + 1 < chunk.length) carried = chunk.subarray(last + 1);
      await handOver(chunk.subarray(0, last + 1), countLines(chunk, last + 1));
    }
    if (carried) {
      const rest = carried;
      carried = null;
      await handOver(rest, 1);
    }
    options.onBytesRead?.(source.bytesRead);
    return { lines: line };
  } catch (error) {
    // A failure of the caller's handler is the caller's; only reading errors end the file quietly.
    if (error instanceof LineHandlerFailure) throw error.cause;
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
