/**
 * `npm run bench`: starts the service (embedded PGlite with the demo cohort, or DATABASE_URL) and a bare
 * fastify endpoint as child processes, fires order-select hooks built from the demo's ED visits with
 * autocannon, and prints latency percentiles and throughput of both, and the service's peak memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import autocannon from 'autocannon';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demo = path.join(root, 'demo-data/mimic-iv-ed-demo-fhir');
const durationSeconds = Number(process.env.BENCH_SECONDS ?? 15);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

type Json = Record<string, any>;

async function readNdjson(file: string): Promise<Json[]> {
  const text = gunzipSync(await readFile(path.join(demo, file))).toString('utf8');
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json);
}

function bundle(resources: Json[]): Json {
  return { resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) };
}

/** One order-select request per demo ED visit, with everything prefetched, as an EHR would send it. */
async function buildRequests(): Promise<string[]> {
  const [patients, encounters, conditions, observations] = await Promise.all([
    readNdjson('MimicPatient.ndjson.gz'),
    readNdjson('MimicEncounterED.ndjson.gz'),
    readNdjson('MimicConditionED.ndjson.gz'),
    readNdjson('MimicObservationED.ndjson.gz'),
  ]);
  const patientById = new Map(patients.map((patient) => [patient.id as string, patient]));
  const byEncounter = <T extends Json>(resources: T[]) => {
    const map = new Map<string, T[]>();
    for (const resource of resources) {
      const reference = (resource.encounter?.reference as string | undefined)?.split('/')[1];
      if (reference) map.set(reference, [...(map.get(reference) ?? []), resource]);
    }
    return map;
  };
  const conditionsByEncounter = byEncounter(conditions);
  const complaintsByEncounter = byEncounter(observations.filter((observation) => observation.code?.coding?.[0]?.code === '8661-1'));
  return encounters.flatMap((encounter) => {
    const patient = patientById.get((encounter.subject.reference as string).split('/')[1]!);
    if (!patient) return [];
    return [
      JSON.stringify({
        hook: 'order-select',
        hookInstance: randomUUID(),
        context: {
          userId: 'Practitioner/bench',
          patientId: patient.id,
          encounterId: encounter.id,
          selections: ['ServiceRequest/draft-1'],
          draftOrders: bundle([
            { resourceType: 'ServiceRequest', id: 'draft-1', status: 'draft', intent: 'order', subject: { reference: `Patient/${patient.id}` }, code: { text: 'Lactate' } },
          ]),
        },
        prefetch: {
          patient,
          encounter,
          conditions: bundle(conditionsByEncounter.get(encounter.id) ?? []),
          chiefComplaint: bundle(complaintsByEncounter.get(encounter.id) ?? []),
          acuity: null,
        },
      }),
    ];
  });
}

function start(command: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) resolve({ child, url: match[1]! });
    });
    child.on('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}`)));
  });
}

async function peakResidentMegabytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kilobytes = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kilobytes / 1024);
}

function run(url: string, bodies: string[], title: string): Promise<autocannon.Result> {
  let next = 0;
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        connections,
        duration: durationSeconds,
        title,
        requests: [
          {
            setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! }),
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    void instance;
  });
}

function line(name: string, result: autocannon.Result): string {
  const l = result.latency;
  return `| ${name} | ${l.p50} | ${l.p99} | ${l.max} | ${Math.round(result.requests.average)} | ${result.non2xx} |`;
}

async function main(): Promise<void> {
  const bodies = await buildRequests();
  const dataDirectory = await mkdtemp(path.join(tmpdir(), 'cohort-bench-'));
  const started = Date.now();
  const service = await start([path.join(root, 'dist/src/server.js')], {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDirectory,
    LOG_LEVEL: 'warn',
    DEMO_COHORT: 'true',
    // One client firing as fast as it can is the point here, not something to throttle.
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const startupSeconds = (Date.now() - started) / 1000;
  const bare = await start([path.join(root, 'dist/bench/bare-server.js')], process.env);
  try {
    // Warm up: the first calls load rules, vocabulary and code tables.
    await run(`${service.url}/cds-services/order-select`, bodies, 'warm-up').catch(() => undefined);
    const hook = await run(`${service.url}/cds-services/order-select`, bodies, 'order-select');
    const ceiling = await run(`${bare.url}/bare`, bodies, 'bare');
    const memory = await peakResidentMegabytes(service.child.pid!);
    const database = process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite';
    process.stdout.write(
      [
        `Cohort CDS benchmark — ${new Date().toISOString()} — ${database}, ${bodies.length} distinct demo visits, ${connections} connections, ${durationSeconds} s each`,
        `service start-up (migrations, code tables, demo ingest): ${startupSeconds.toFixed(1)} s`,
        '',
        '| endpoint | p50 ms | p99 ms | max ms | req/s | non-2xx |',
        '| --- | --- | --- | --- | --- | --- |',
        line('POST /cds-services/order-select', hook),
        line('bare fastify POST', ceiling),
        '',
        `hook throughput is ${((hook.requests.average / ceiling.requests.average) * 100).toFixed(1)}% of the bare endpoint; service peak resident memory ${memory} MB`,
        '',
      ].join('\n'),
    );
    if (hook.non2xx > 0 || hook.errors > 0) process.exitCode = 1;
  } finally {
    service.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
    await rm(dataDirectory, { recursive: true, force: true });
  }
}

await main();
