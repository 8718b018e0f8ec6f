import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { gzip } from 'node:zlib';

/** A chunk is written once it holds this many bytes (at the end of a line). */
const chunkBytes = 1 << 20;
const msPerDay = 86_400_000;
const hexDigits = Buffer.from('0123456789abcdef', 'latin1');

/** Chunks being compressed at once per file; libuv's thread pool (4 threads by default) does the work. */
const compressionsInFlight = 4;

/**
 * One NDJSON file written as it is produced. Lines are assembled as bytes straight into a chunk buffer
 * (fragments that never change are copied from Buffers made once; ids and times are written digit by
 * digit), so making a line allocates nothing. Full chunks are written with backpressure, so memory stays
 * bounded whatever the length of the file; chunks end at fixed sizes, so the bytes depend only on the
 * content. The file is written as `<name>.part` and renamed when closed: an interrupted run never leaves
 * a truncated file that the ingest would pick up.
 *
 * With gzip, each chunk is compressed on its own, several at a time on the thread pool, and the members
 * are written in order: a file of concatenated gzip members is one valid gzip stream (RFC 1952 §2.2),
 * read whole by gunzip, zcat and Node's zlib. One deflate stream per file would compress on one thread
 * while the lines wait for it.
 */
export class NdjsonSink {
  /** Chunks the stream is done with, to be filled again: fresh 1 MiB buffers would keep the GC busy. */
  private readonly spare: Buffer[] = [];
  private chunk: Buffer = Buffer.allocUnsafe(chunkBytes + (64 << 10));
  private position = 0;
  private readonly file: WriteStream;
  private readonly closed: Promise<void>;
  private readonly compressing: Array<Promise<Buffer>> = [];
  private failure: Error | null = null;
  /** Lines made so far. */
  lines = 0;
  /** Uncompressed bytes made so far. */
  bytes = 0;

  constructor(
    readonly path: string,
    private readonly gzipLevel: number | null,
  ) {
    this.file = createWriteStream(`${path}.part`);
    this.closed = once(this.file, 'close').then(() => undefined);
    this.file.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  private room(bytes: number): void {
    if (this.position + bytes <= this.chunk.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.chunk.length * 2, this.position + bytes));
    this.chunk.copy(larger, 0, 0, this.position);
    this.chunk = larger;
  }

  /** Bytes made once (a fragment of JSON). */
  raw(fragment: Buffer): this {
    this.room(fragment.length);
    // TypedArray#set is a plain memory copy, cheaper than Buffer#copy for fragments this small.
    this.chunk.set(fragment, this.position);
    this.position += fragment.length;
    return this;
  }

  /** Any text, as UTF-8. */
  text(value: string): this {
    this.room(value.length * 3);
    this.position += this.chunk.write(value, this.position, 'utf8');
    return this;
  }

  /** A UUID-shaped id: a 24-byte prefix and a counter in 12 hex digits. */
  id(prefix: Buffer, counter: number): this {
    this.raw(prefix);
    this.hex12(counter);
    return this;
  }

  /** `counter` as 12 lower-case hex digits. */
  hex12(counter: number): this {
    this.room(12);
    let value = counter;
    for (let index = this.position + 11; index >= this.position; index -= 1) {
      this.chunk[index] = hexDigits[value % 16] as number;
      value = Math.floor(value / 16);
    }
    this.position += 12;
    return this;
  }

  private digits(value: number, width: number): void {
    let rest = value;
    for (let index = this.position + width - 1; index >= this.position; index -= 1) {
      this.chunk[index] = 48 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    this.position += width;
  }

  private civilDate(days: number): void {
    // Days since 1970-01-01 → year, month, day (H. Hinnant, "chrono-compatible low-level date algorithms").
    const z = days + 719_468;
    const era = Math.floor(z / 146_097);
    const dayOfEra = z - era * 146_097;
    const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
    const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
    const monthIndex = Math.floor((5 * dayOfYear + 2) / 153);
    const day = dayOfYear - Math.floor((153 * monthIndex + 2) / 5) + 1;
    const month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9;
    const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
    this.room(10);
    this.digits(year, 4);
    this.chunk[this.position++] = 45; // -
    this.digits(month, 2);
    this.chunk[this.position++] = 45;
    this.digits(day, 2);
  }

  /** A FHIR date of the UTC day that holds `ms`: `2083-04-10`. */
  date(ms: number): this {
    this.civilDate(Math.floor(ms / msPerDay));
    return this;
  }

  /** A FHIR dateTime to the second in a fixed zone: `2180-05-06T19:17:00-04:00`. */
  dateTime(ms: number, zoneOffsetMinutes: number): this {
    const local = Math.round(ms / 1000) * 1000 + zoneOffsetMinutes * 60_000;
    const days = Math.floor(local / msPerDay);
    let seconds = Math.floor((local - days * msPerDay) / 1000);
    this.civilDate(days);
    this.room(15);
    this.chunk[this.position++] = 84; // T
    this.digits(Math.floor(seconds / 3600), 2);
    seconds %= 3600;
    this.chunk[this.position++] = 58; // :
    this.digits(Math.floor(seconds / 60), 2);
    this.chunk[this.position++] = 58;
    this.digits(seconds % 60, 2);
    const offset = Math.abs(zoneOffsetMinutes);
    this.chunk[this.position++] = zoneOffsetMinutes < 0 ? 45 : 43; // - or +
    this.digits(Math.floor(offset / 60), 2);
    this.chunk[this.position++] = 58;
    this.digits(offset % 60, 2);
    return this;
  }

  /** Ends the line. */
  endLine(): void {
    this.room(1);
    this.chunk[this.position++] = 10;
    this.lines += 1;
  }

  get full(): boolean {
    return this.position >= chunkBytes;
  }

  /** Writes the lines made so far, waiting when the file or the compressor asks for it. */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.position === 0) return;
    const full = this.chunk;
    const written = full.subarray(0, this.position);
    this.bytes += this.position;
    this.chunk = this.spare.pop() ?? Buffer.allocUnsafe(chunkBytes + (64 << 10));
    this.position = 0;
    if (this.gzipLevel === null) {
      await this.writeToFile(written, full);
      return;
    }
    const level = this.gzipLevel;
    this.compressing.push(
      new Promise<Buffer>((resolve, reject) =>
        gzip(written, { level }, (error, compressed) => {
          this.recycle(full);
          if (error) reject(error);
          else resolve(compressed);
        }),
      ),
    );
    if (this.compressing.length >= compressionsInFlight) await this.writeOldestMember();
  }

  private recycle(chunk: Buffer): void {
    if (chunk.length === chunkBytes + (64 << 10) && this.spare.length < compressionsInFlight + 1) this.spare.push(chunk);
  }

  private async writeOldestMember(): Promise<void> {
    const compressed = await (this.compressing.shift() as Promise<Buffer>);
    await this.writeToFile(compressed, null);
  }

  private async writeToFile(bytes: Buffer, recycled: Buffer | null): Promise<void> {
    // The stream holds the buffer until it is written; only then may it be filled again.
    const accepted = this.file.write(bytes, (error) => {
      if (!error && recycled) this.recycle(recycled);
    });
    if (!accepted) await Promise.race([once(this.file, 'drain'), this.closed]);
    if (this.failure) throw this.failure;
  }

  /** Writes what is left, closes the file and gives it its final name. */
  async close(): Promise<void> {
    await this.flush();
    while (this.compressing.length > 0) await this.writeOldestMember();
    this.file.end();
    await this.closed;
    if (this.failure) throw this.failure;
    await rename(`${this.path}.part`, this.path);
  }

  /** Stops writing (after a failure elsewhere); the `.part` file is left behind for the caller. */
  abort(): void {
    this.file.destroy();
  }
}
