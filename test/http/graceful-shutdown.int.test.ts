/**
 * SIGTERM to the real server process (src/server.ts, run unbuilt through swc in a child `node`): the request in
 * flight finishes with 200, new connections are refused, the database closes after that request, exit code 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { projectRoot } from '../../src/paths.js';
import { readExampleRequest } from '../helpers/cds-hooks-examples.js';
import { openTestDatabase, seedPgliteDataDirectory } from '../helpers/database.js';

type Json = Record<string, any>;

/** A FHIR server that holds every answer until the test releases them: the hook stays in flight meanwhile. */
async function startHeldFhirServer() {
  const held: Array<() => void> = [];
  let released = false;
  let arrived: () => void = () => undefined;
  const firstArrival = new Promise<void>((resolve) => (arrived = resolve));
  const answer = (url: string, response: ServerResponse) => {
    const body = url.startsWith('/fhir/Patient/')
      ? { resourceType: 'Patient', id: 'ex-pt-4821', gender: 'female', birthDate: '1957-03-14' }
      : url.includes('8661-1')
        ? { resourceType: 'Bundle', type: 'searchset', entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8661-1' }] }, valueString: 'abd pain' } }] }
        : { resourceType: 'Bundle', type: 'searchset', entry: [] };
    response.writeHead(200, { 'content-type': 'application/fhir+json' });
    response.end(JSON.stringify(body));
  };
  const server = createServer((request, response) => {
    arrived();
    if (released) answer(request.url ?? '', response);
    else held.push(() => answer(request.url ?? '', response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`,
    firstArrival,
    release: () => {
      released = true;
      for (const send of held.splice(0)) send();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Resolves with the error code of a new TCP connection to the port ('connected' when it is accepted). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('graceful shutdown of the server process', () => {
  let fhir: Awaited<ReturnType<typeof startHeldFhirServer>>;
  let dataDirectory: string;
  // With DATABASE_URL the server gets a fresh PostgreSQL database (its pool is what closes); else PGlite on disk.
  let database: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    fhir = await startHeldFhirServer();
    dataDirectory = await mkdtemp(path.join(tmpdir(), 'cohort-shutdown-'));
    if (process.env.DATABASE_URL) database = await openTestDatabase();
    // On PGlite the server's files start migrated with the code tables loaded (initdb and that load are not under test).
    else await seedPgliteDataDirectory(dataDirectory, 'reference');
  });

  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    fhir.release();
    await fhir.close();
    await database?.close();
    await rm(dataDirectory, { recursive: true, force: true });
  });

  it('finishes the request in flight, refuses new connections, closes the database and exits 0 on SIGTERM', async () => {
    const { DATABASE_URL: _inherited, ...environment } = process.env;
    const server = spawn(process.execPath, ['--import', pathToFileURL(path.join(projectRoot, 'test/helpers/run-typescript.mjs')).href, 'src/server.ts'], {
      cwd: projectRoot,
      env: {
        ...environment,
        ...(database?.url ? { DATABASE_URL: database.url } : {}),
        DATA_DIR: dataDirectory,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'info',
        DEMO_COHORT: 'false',
        CDS_FHIR_SERVER_ALLOWLIST: fhir.baseUrl,
        // Longer than the test holds the FHIR answers: the hook must wait for them, not give up.
        FHIR_FETCH_TIMEOUT_MS: '30000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = server;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => server.once('exit', (code, signal) => resolve({ code, signal })));
    let output = '';
    server.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    let errors = '';
    server.stderr!.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    const logLines = (): Json[] => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Json);

    const discovery = await waitFor('the server to listen', () => {
      if (server.exitCode !== null) throw new Error(`the server exited: ${errors}${output}`);
      return /Discovery: (http:\/\/\S+)\/cds-services/.exec(output)?.[1];
    });
    const port = Number(new URL(discovery).port);
    expect(await connectOutcome(port)).toBe('connected');

    const request = readExampleRequest('patient-view') as Json;
    delete request.prefetch;
    request.fhirServer = fhir.baseUrl;
    let settled = false;
    const inFlight = fetch(`${discovery}/cds-services/patient-view`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) }).then(
      async (response) => {
        settled = true;
        return { status: response.status, body: (await response.json()) as Json };
      },
    );
    await fhir.firstArrival;

    server.kill('SIGTERM');
    await waitFor('the shutdown to begin', () => logLines().find((line) => line.msg === 'shutting down: finishing in-flight requests'));
    expect(await waitFor('new connections to be refused', async () => ((await connectOutcome(port)) === 'ECONNREFUSED' ? true : undefined), 5000)).toBe(true);
    expect(settled).toBe(false);

    fhir.release();
    const answer = await inFlight;
    expect(answer.status).toBe(200);
    expect(Array.isArray(answer.body.cards)).toBe(true);
    expect(await exited).toEqual({ code: 0, signal: null });

    // In this order: the signal, the in-flight request's answer, the database closing, the exit.
    const milestones = new Set(['shutting down: finishing in-flight requests', 'request completed 200', 'database closed', 'shut down: requests finished, connections closed']);
    const messages = logLines().map((line) => (line.msg === 'request completed' ? `request completed ${line.res.statusCode}` : (line.msg as string)));
    expect(messages.filter((message) => milestones.has(message))).toEqual([...milestones]);
  });
});
