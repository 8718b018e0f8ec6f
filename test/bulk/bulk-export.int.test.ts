import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { BulkExportError, parseRetryAfter, runBulkExport } from '../../src/bulk/bulk-export-client.js';
import { BackendServicesTokenSource, BulkAuthError } from '../../src/bulk/smart-backend-auth.js';
import { runCli } from '../../src/cli/program.js';
import { buildConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { mimicDemoDirectory } from '../helpers/app.js';

/** The demo's NDJSON files, unzipped, as the EHR would serve them: resource type → file bodies. */
async function demoFiles(): Promise<Array<{ type: string; body: string }>> {
  const names = (await readdir(mimicDemoDirectory)).filter((name) => name.endsWith('.ndjson.gz')).sort();
  const files: Array<{ type: string; body: string }> = [];
  for (const name of names) {
    const body = gunzipSync(await readFile(path.join(mimicDemoDirectory, name))).toString('utf8');
    const first = JSON.parse(body.slice(0, body.indexOf('\n'))) as { resourceType: string };
    files.push({ type: first.resourceType, body });
  }
  return files;
}

interface Behaviour {
  /** Polls answered 202 before the manifest (each with X-Progress and Retry-After: 1). */
  pendingPolls: number;
  /** Fail the job at this poll with 500 and an OperationOutcome. */
  failAtPoll?: number;
  /** The first access token stops working after this many uses (as if it expired). */
  tokenUses?: number;
  requireAuth: boolean;
  /** Output URLs point at this other origin. */
  fileOrigin?: string;
}

/** A local HTTP server playing the EHR: SMART discovery, token endpoint, $export, status and files. */
class FakeEhr {
  server: Server;
  base = '';
  publicJwk: JWK | undefined;
  behaviour: Behaviour = { pendingPolls: 2, requireAuth: true };
  tokensIssued = 0;
  assertions: Array<Record<string, unknown>> = [];
  polls = 0;
  kickoffs: URL[] = [];
  deleted = 0;
  private validTokens = new Map<string, number>();

  constructor(private readonly files: Array<{ type: string; body: string }>) {
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        response.statusCode = 500;
        response.end(String(error));
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(behaviour: Behaviour): void {
    this.behaviour = behaviour;
    this.tokensIssued = 0;
    this.assertions = [];
    this.polls = 0;
    this.kickoffs = [];
    this.deleted = 0;
    this.validTokens.clear();
  }

  private authorized(request: IncomingMessage): boolean {
    if (!this.behaviour.requireAuth) return true;
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (token === undefined) return false;
    const left = this.validTokens.get(token);
    if (left === undefined || left <= 0) return false;
    this.validTokens.set(token, left - 1);
    return true;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.base);
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (url.pathname === '/fhir/.well-known/smart-configuration') return json(200, { token_endpoint: `${this.base}/auth/token` });
    if (url.pathname === '/auth/token' && request.method === 'POST') {
      let raw = '';
      for await (const chunk of request) raw += String(chunk);
      const form = new URLSearchParams(raw);
      try {
        const { payload } = await jwtVerify(form.get('client_assertion') ?? '', this.publicJwk as JWK, {
          audience: `${this.base}/auth/token`,
          issuer: 'cohort-cds',
          subject: 'cohort-cds',
          algorithms: ['ES384'],
        });
        this.assertions.push({ ...payload, grant_type: form.get('grant_type'), scope: form.get('scope'), assertionType: form.get('client_assertion_type') });
      } catch {
        return json(400, { error: 'invalid_client', error_description: 'assertion rejected' });
      }
      this.tokensIssued += 1;
      const token = `token-${this.tokensIssued}`;
      this.validTokens.set(token, this.tokensIssued === 1 ? (this.behaviour.tokenUses ?? 1000) : 1000);
      return json(200, { access_token: token, token_type: 'bearer', expires_in: 300, scope: 'system/*.read' });
    }
    if (!this.authorized(request)) return json(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    if (url.pathname === '/fhir/$export' || url.pathname === '/fhir/Group/ed-visits/$export') {
      this.kickoffs.push(url);
      if (request.headers.prefer !== 'respond-async') return json(400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'Prefer: respond-async required' }] });
      response.writeHead(202, { 'content-location': `${this.base}/fhir/status/job-1` });
      return void response.end();
    }
    if (url.pathname === '/fhir/status/job-1') {
      if (request.method === 'DELETE') {
        this.deleted += 1;
        response.writeHead(202);
        return void response.end();
      }
      this.polls += 1;
      if (this.behaviour.failAtPoll === this.polls) {
        return json(500, { resourceType: 'OperationOutcome', issue: [{ severity: 'fatal', code: 'exception', diagnostics: 'export job failed: storage full' }] });
      }
      if (this.polls <= this.behaviour.pendingPolls) {
        response.writeHead(202, { 'x-progress': `${this.polls * 30}% done`, 'retry-after': '1' });
        return void response.end();
      }
      const fileBase = this.behaviour.fileOrigin ?? this.base;
      return json(200, {
        transactionTime: '2026-11-23T10:00:00Z',
        request: `${this.base}/fhir/$export`,
        requiresAccessToken: this.behaviour.requireAuth,
        output: this.files.map((file, index) => ({ type: file.type, url: `${fileBase}/fhir/files/${index}`, count: file.body.split('\n').filter(Boolean).length })),
        error: [],
      });
    }
    const fileMatch = /^\/fhir\/files\/(\d+)$/.exec(url.pathname);
    if (fileMatch) {
      const file = this.files[Number(fileMatch[1])];
      if (!file) return json(404, {});
      response.writeHead(200, { 'content-type': 'application/fhir+ndjson' });
      return void response.end(file.body);
    }
    return json(404, {});
  }
}

describe('FHIR Bulk Data export client against a local EHR', () => {
  let ehr: FakeEhr;
  let files: Array<{ type: string; body: string }>;
  let directory: string;
  let privateJwk: JWK;
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
  };

  beforeAll(async () => {
    files = await demoFiles();
    ehr = new FakeEhr(files);
    await ehr.start();
    const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
    ehr.publicJwk = await exportJWK(publicKey);
    privateJwk = { ...(await exportJWK(privateKey)), kid: 'cohort-cds-key-1', alg: 'ES384' };
    directory = await mkdtemp(path.join(tmpdir(), 'bulk-export-'));
  });
  afterAll(async () => {
    await new Promise((resolve) => ehr.server.close(resolve));
    await rm(directory, { recursive: true, force: true });
  });
  afterEach(() => {
    waits.length = 0;
    jest.restoreAllMocks();
  });

  const tokenSource = () =>
    new BackendServicesTokenSource({ clientId: 'cohort-cds', privateKey: JSON.stringify(privateJwk), keyId: 'cohort-cds-key-1', algorithm: 'ES384', scope: 'system/*.read' }, `${ehr.base}/fhir`);

  it('kicks off, polls honouring Retry-After, downloads every file with a SMART Backend Services token', async () => {
    ehr.reset({ pendingPolls: 2, requireAuth: true });
    const out = path.join(directory, 'happy');
    const events: string[] = [];
    const result = await runBulkExport({
      fhirBase: `${ehr.base}/fhir`,
      outputDirectory: out,
      tokenSource: tokenSource(),
      types: ['Patient', 'Encounter'],
      since: '2026-11-22T00:00:00Z',
      sleep,
      onProgress: (event) => events.push(event.phase === 'waiting' ? `waiting ${event.progress}` : event.phase),
    });
    expect(ehr.kickoffs[0]?.searchParams.get('_type')).toBe('Patient,Encounter');
    expect(ehr.kickoffs[0]?.searchParams.get('_since')).toBe('2026-11-22T00:00:00Z');
    expect(waits).toEqual([1000, 1000]);
    expect(events.slice(0, 3)).toEqual(['kick-off', 'waiting 30% done', 'waiting 60% done']);
    expect(result.files).toHaveLength(files.length);
    for (const [index, file] of result.files.entries()) expect(await readFile(file, 'utf8')).toBe(files[index]?.body);
    expect(ehr.tokensIssued).toBe(1);
    expect(ehr.assertions[0]).toMatchObject({ grant_type: 'client_credentials', scope: 'system/*.read', assertionType: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' });
    expect(typeof ehr.assertions[0]?.jti).toBe('string');
    expect(Number(ehr.assertions[0]?.exp) - Number(ehr.assertions[0]?.iat)).toBeLessThanOrEqual(300);
    expect(ehr.deleted).toBe(1);
  });

  it('gets a new token when the server stops accepting the old one, and goes on', async () => {
    ehr.reset({ pendingPolls: 1, requireAuth: true, tokenUses: 2 });
    const result = await runBulkExport({ fhirBase: `${ehr.base}/fhir`, outputDirectory: path.join(directory, 'expired'), tokenSource: tokenSource(), sleep });
    expect(result.files).toHaveLength(files.length);
    expect(ehr.tokensIssued).toBe(2);
  });

  it('reports a failed job with the server diagnostics', async () => {
    ehr.reset({ pendingPolls: 3, failAtPoll: 2, requireAuth: true });
    const run = runBulkExport({ fhirBase: `${ehr.base}/fhir`, outputDirectory: path.join(directory, 'failed'), tokenSource: tokenSource(), sleep });
    await expect(run).rejects.toThrow(BulkExportError);
    await expect(run).rejects.toThrow('export job failed: storage full');
  });

  it('says what is missing when the server needs a token and none is configured, and when the key is wrong', async () => {
    ehr.reset({ pendingPolls: 0, requireAuth: true });
    await expect(runBulkExport({ fhirBase: `${ehr.base}/fhir`, outputDirectory: path.join(directory, 'noauth'), sleep })).rejects.toThrow(/requires authentication \(401\): pass --client-id/);
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const wrongKey = JSON.stringify({ ...(await exportJWK(privateKey)), kid: 'other' });
    const wrong = new BackendServicesTokenSource({ clientId: 'cohort-cds', privateKey: wrongKey, keyId: 'other', algorithm: 'ES384', scope: 'system/*.read' }, `${ehr.base}/fhir`);
    await expect(runBulkExport({ fhirBase: `${ehr.base}/fhir`, outputDirectory: path.join(directory, 'wrongkey'), tokenSource: wrong, sleep })).rejects.toThrow(BulkAuthError);
  });

  it('never sends the access token to a file server on another origin', async () => {
    const seen: Array<string | undefined> = [];
    const other = createServer((request, response) => {
      seen.push(request.headers.authorization);
      response.end('');
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      ehr.reset({ pendingPolls: 0, requireAuth: true, fileOrigin: `http://127.0.0.1:${(other.address() as AddressInfo).port}` });
      await expect(runBulkExport({ fhirBase: `${ehr.base}/fhir`, outputDirectory: path.join(directory, 'foreign'), tokenSource: tokenSource(), sleep })).rejects.toThrow(/not the FHIR server; refused/);
      expect(seen).toEqual([]);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('npm run cli -- bulk-export downloads a Group export and ingests the real demo', async () => {
    ehr.reset({ pendingPolls: 1, requireAuth: true });
    const keyFile = path.join(directory, 'client-key.json');
    await writeFile(keyFile, JSON.stringify(privateJwk), { mode: 0o600 });
    const out: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const dataDirectory = path.join(directory, 'cli-data');
    const config = () => buildConfig({ dataDirectory, databaseUrl: undefined, patientHashSecret: 'bulk-export-secret-bulk-export-secret-01' });
    const exitCode = await runCli(
      ['node', 'cohort-cds', 'bulk-export', '--fhir-server', `${ehr.base}/fhir`, '--group', 'ed-visits', '--client-id', 'cohort-cds', '--private-key', keyFile, '--key-id', 'cohort-cds-key-1', '--out', path.join(directory, 'cli-out')],
      config,
    );
    expect({ exitCode, out: out.join('') }).toMatchObject({ exitCode: 0 });
    expect(ehr.kickoffs[0]?.pathname).toBe('/fhir/Group/ed-visits/$export');
    expect(out.join('')).toMatch(/ingested: 222 encounters/);
    const handle = await openDatabase({ databaseUrl: undefined, dataDirectory });
    try {
      const { n } = await handle.db.selectFrom('cohort_encounter').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
      expect(Number(n)).toBe(222);
    } finally {
      await handle.close();
    }
  });
});
