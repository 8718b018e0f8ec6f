import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * A FHIR Bulk Data Access 2.0 client (https://hl7.org/fhir/uv/bulkdata/export.html): kick off a system or
 * group `$export`, poll the status URL with backoff honouring `Retry-After`, then stream each NDJSON output
 * file to disk. Authentication is a token source (SMART Backend Services) or none for an open server.
 */
export interface TokenSource {
  token(): Promise<string>;
  invalidate(): void;
}

export interface BulkExportOptions {
  readonly fhirBase: string;
  /** Export one Group's patients instead of the whole system. */
  readonly groupId?: string;
  /** `_type`: the resource types to export; all when absent. */
  readonly types?: readonly string[];
  /** `_since`: only resources changed after this instant (daily incremental loads). */
  readonly since?: string;
  readonly outputDirectory: string;
  readonly tokenSource?: TokenSource;
  readonly fetchImpl?: typeof fetch;
  readonly sleep?: (ms: number) => Promise<void>;
  /** First wait between polls when the server gives no Retry-After; doubles up to `pollMaxMs`. */
  readonly pollInitialMs?: number;
  readonly pollMaxMs?: number;
  /** Give up after this long. */
  readonly maxWaitMs?: number;
  readonly now?: () => number;
  readonly onProgress?: (event: BulkExportEvent) => void;
}

export type BulkExportEvent =
  | { readonly phase: 'kick-off'; readonly statusUrl: string }
  | { readonly phase: 'waiting'; readonly progress: string | null; readonly waitMs: number }
  | { readonly phase: 'downloading'; readonly file: string; readonly index: number; readonly total: number }
  | { readonly phase: 'done'; readonly files: number };

export interface ManifestOutput {
  readonly type: string;
  readonly url: string;
  readonly count?: number;
}

export interface BulkExportManifest {
  readonly transactionTime: string;
  readonly request: string;
  readonly requiresAccessToken: boolean;
  readonly output: readonly ManifestOutput[];
  readonly error: readonly ManifestOutput[];
}

export interface BulkExportResult {
  readonly manifest: BulkExportManifest;
  /** NDJSON files written, ready for the ingest. */
  readonly files: readonly string[];
  /** OperationOutcome files the server reported (kept under errors/, not ingested). */
  readonly errorFiles: readonly string[];
}

export class BulkExportError extends Error {
  override name = 'BulkExportError';
}

const resourceTypePattern = /^[A-Z][A-Za-z]{1,63}$/;

export async function runBulkExport(options: BulkExportOptions): Promise<BulkExportResult> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const now = options.now ?? Date.now;
  const base = options.fhirBase.replace(/\/+$/, '');
  const baseOrigin = new URL(base).origin;

  /** One request with the bearer token when there is one; a 401 gets one fresh token and one retry. */
  const send = async (url: string, init: RequestInit, withToken: boolean): Promise<Response> => {
    for (let attempt = 0; ; attempt += 1) {
      const headers = new Headers(init.headers);
      if (withToken && options.tokenSource) headers.set('authorization', `Bearer ${await options.tokenSource.token()}`);
      const response = await fetchImpl(url, { ...init, headers, redirect: 'error' });
      if (response.status === 401 && options.tokenSource && withToken && attempt === 0) {
        await response.body?.cancel();
        options.tokenSource.invalidate();
        continue;
      }
      if (response.status === 401) {
        await response.body?.cancel();
        throw new BulkExportError(
          options.tokenSource
            ? `${describeUrl(url)} refused the access token twice (401)`
            : `${describeUrl(url)} requires authentication (401): pass --client-id, --private-key and --key-id`,
        );
      }
      return response;
    }
  };

  // Kick-off (Bulk Data 2.0 §Bulk Data Kick-off Request).
  const kickoff = new URL(options.groupId === undefined ? `${base}/$export` : `${base}/Group/${encodeURIComponent(options.groupId)}/$export`);
  kickoff.searchParams.set('_outputFormat', 'application/fhir+ndjson');
  if (options.types && options.types.length > 0) kickoff.searchParams.set('_type', options.types.join(','));
  if (options.since !== undefined) kickoff.searchParams.set('_since', options.since);
  const started = await send(kickoff.toString(), { headers: { accept: 'application/fhir+json', prefer: 'respond-async' } }, true);
  if (started.status !== 202) throw new BulkExportError(`kick-off answered ${started.status}: ${await outcomeText(started)}`);
  await started.body?.cancel();
  const location = started.headers.get('content-location');
  if (!location) throw new BulkExportError('kick-off answered 202 without a Content-Location');
  const statusUrl = new URL(location, kickoff).toString();
  options.onProgress?.({ phase: 'kick-off', statusUrl });

  // Status polling (§Bulk Data Status Request): 202 while in progress, 200 with the manifest, 4xx/5xx on failure.
  const deadline = now() + (options.maxWaitMs ?? 6 * 3600_000);
  let backoff = options.pollInitialMs ?? 1000;
  let manifest: BulkExportManifest;
  for (;;) {
    const response = await send(statusUrl, { headers: { accept: 'application/json' } }, true);
    if (response.status === 200) {
      manifest = parseManifest(await response.json());
      break;
    }
    if (response.status !== 202 && response.status !== 429) {
      throw new BulkExportError(`the export failed (${response.status}): ${await outcomeText(response)}`);
    }
    await response.body?.cancel();
    const retryAfter = parseRetryAfter(response.headers.get('retry-after'), now());
    const waitMs = Math.min(options.pollMaxMs ?? 60_000, Math.max(retryAfter ?? backoff, 0));
    backoff = Math.min(options.pollMaxMs ?? 60_000, backoff * 2);
    if (now() + waitMs > deadline) throw new BulkExportError('the export did not finish in time; its status URL was left for the server to expire');
    options.onProgress?.({ phase: 'waiting', progress: response.headers.get('x-progress'), waitMs });
    await sleep(waitMs);
  }

  // Downloads (§File Request). The token goes only to the FHIR server's own origin.
  await mkdir(options.outputDirectory, { recursive: true });
  const download = async (entry: ManifestOutput, index: number, folder: string): Promise<string> => {
    if (!resourceTypePattern.test(entry.type)) throw new BulkExportError(`the manifest names an invalid resource type "${entry.type.slice(0, 80)}"`);
    const url = new URL(entry.url, statusUrl);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new BulkExportError(`the manifest names a non-HTTP file URL`);
    const sameOrigin = url.origin === baseOrigin;
    if (manifest.requiresAccessToken && !sameOrigin) {
      throw new BulkExportError(`the manifest asks for the access token to be sent to ${url.origin}, which is not the FHIR server; refused`);
    }
    const response = await send(url.toString(), { headers: { accept: 'application/fhir+ndjson' } }, manifest.requiresAccessToken && sameOrigin);
    if (!response.ok || !response.body) throw new BulkExportError(`downloading ${entry.type} file ${index + 1} answered ${response.status}`);
    const file = path.join(folder, `${entry.type}.${String(index + 1).padStart(3, '0')}.ndjson`);
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(file));
    return file;
  };
  const files: string[] = [];
  for (const [index, entry] of manifest.output.entries()) {
    options.onProgress?.({ phase: 'downloading', file: entry.type, index, total: manifest.output.length });
    files.push(await download(entry, index, options.outputDirectory));
  }
  const errorFiles: string[] = [];
  if (manifest.error.length > 0) {
    const errorsFolder = path.join(options.outputDirectory, 'errors');
    await mkdir(errorsFolder, { recursive: true });
    for (const [index, entry] of manifest.error.entries()) errorFiles.push(await download(entry, index, errorsFolder));
  }
  // Tell the server it may delete the files (§Delete a Bulk Data Request); a refusal changes nothing here.
  await send(statusUrl, { method: 'DELETE' }, true).then(
    (response) => response.body?.cancel(),
    () => undefined,
  );
  options.onProgress?.({ phase: 'done', files: files.length });
  return { manifest, files, errorFiles };
}

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in milliseconds from now. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseManifest(json: unknown): BulkExportManifest {
  const body = json as Partial<Record<keyof BulkExportManifest, unknown>> | null;
  const entries = (value: unknown): ManifestOutput[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new BulkExportError('the manifest is not a Bulk Data manifest (output/error must be arrays)');
    return value.map((entry: { type?: unknown; url?: unknown; count?: unknown }) => {
      if (typeof entry?.type !== 'string' || typeof entry.url !== 'string') throw new BulkExportError('a manifest entry lacks type or url');
      return { type: entry.type, url: entry.url, ...(typeof entry.count === 'number' ? { count: entry.count } : {}) };
    });
  };
  if (body === null || typeof body !== 'object') throw new BulkExportError('the status URL answered 200 without a manifest');
  return {
    transactionTime: typeof body.transactionTime === 'string' ? body.transactionTime : '',
    request: typeof body.request === 'string' ? body.request : '',
    requiresAccessToken: body.requiresAccessToken === true,
    output: entries(body.output),
    error: entries(body.error),
  };
}

/** The diagnostics of an OperationOutcome body, or the status text; bounded, for a message. */
async function outcomeText(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const outcome = JSON.parse(text) as { issue?: Array<{ diagnostics?: string; details?: { text?: string } }> };
    const messages = (outcome.issue ?? []).map((issue) => issue.diagnostics ?? issue.details?.text).filter(Boolean);
    if (messages.length > 0) return messages.join('; ').slice(0, 500);
  } catch {
    // not JSON
  }
  return (text || response.statusText || 'no detail').slice(0, 200);
}

function describeUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}
