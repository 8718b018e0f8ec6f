/**
 * `npm run bench`: starts the service (embedded PGlite with the demo cohort, or DATABASE_URL) and a bare
 * fastify endpoint as child processes, fires order-select hooks built from the demo's ED visits with
 * autocannon, and prints latency percentiles and throughput of both, and the service's peak memory.
 *
 * `npm run bench -- --encounters N [--seed S] [--data DIR]`: the same against a synthesized cohort of N encounters
 * loaded into PostgreSQL (DATABASE_URL names the server; the cohort gets a database of its own, reused by later
 * runs), with order-select and patient-view for a random sample of at least 10,000 of its patients, at full speed
 * (taking turns with the bare endpoint in BENCH_ROUNDS rounds, 3 by default: measureInTurns) and again at a steady
 * half of the peak rate.
 *
 * Why the half-rate run is not autocannon's `overallRate`: autocannon paces a connection by letting it send as fast as
 * it can until it has made its share of the second's requests, then pausing it until the next second, so every second
 * opens with a burst at full speed (the load of the peak run) followed by silence; and it records each latency with a
 * coordinated-omission correction whose expected interval is 1 ms, adding a synthetic sample per millisecond of every
 * response. Neither is "a steady rate at half the peak". `runAtSteadyRate` sends request i at start + i / rate over the
 * same number of keep-alive connections and measures each latency from that scheduled moment (so a request that had to
 * wait for a free connection counts its wait, as in wrk2), after a second of warm-up at the same rate.
 *
 * To see where a slow second went: BENCH_TIMELINE=1 (the driver's p99, max and latest send by second) with
 * BENCH_SERVICE_STDOUT=1 RUNTIME_STATS_INTERVAL_MS=1000 (the service's own line per second: its slowest answer, event-loop
 * delay, GC pauses; README "Configuration").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gunzipSync } from 'node:zlib';
import autocannon from 'autocannon';
import { percentile, scaleBenchDatabase } from './measure.js';
import { buildHookBodies, loadedDatabase, synthesizedDirectory } from './synthetic-cohort.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const demo = path.join(root, 'demo-data/mimic-iv-ed-demo-fhir');
const durationSeconds = Number(process.env.BENCH_SECONDS ?? 15);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);
/** Node options for the service alone (BENCH_SERVICE_NODE_ARGS, e.g. `--cpu-prof --max-semi-space-size=32`): not the driver's, not the bare endpoint's. */
const serviceNodeArguments = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** The node flags `npm start` gives the service (its heap bound), so the bench measures the service as it runs. */
function startFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  return (scripts.start ?? '').split(/\s+/).filter((word) => word.startsWith('--'));
}
/**
 * The steady-rate run's connections (BENCH_STEADY_CONNECTIONS; the full-speed runs' by default) and its warm-up: the
 * first second is sent at the same rate but not counted, so that the connections are open and in use when measuring
 * starts, as an EHR's are (the first second of a cold run took 90-500 ms at p99 while the connections opened).
 */
const steadyConnections = Number(process.env.BENCH_STEADY_CONNECTIONS ?? connections);
const steadyWarmUpSeconds = 1;

/**
 * A full collection of the driver's own heap before each measured run. Sampling the patients reads the whole export,
 * and the garbage of it stayed in the driver's old generation (1.3 GB at 100k) until V8 collected it at a moment of its
 * choosing, often in a measurement: marking and sweeping that heap took both cores from the service for 100-150 ms
 * (a CPU profile of the service showed its main thread running a third of the time then, docs/benchmarks.md).
 */
const collectDriverGarbage = ((): (() => void) => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** The scale run's full-speed measurements take turns in this many rounds (measureInTurns). */
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));

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
    let output: string | null = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (output === null) {
        // BENCH_SERVICE_STDOUT=1: what the children print once started (e.g. `--trace-gc` lines) goes to stderr.
        if (process.env.BENCH_SERVICE_STDOUT) process.stderr.write(chunk);
        return;
      }
      output += chunk.toString();
      const match = /(http:\/\/[\d.]+:\d+)/.exec(output);
      if (match) {
        output = null;
        resolve({ child, url: match[1]! });
      }
    });
    child.on('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}`)));
  });
}

/** A process's resident memory now (VmRSS) or at its highest so far (VmHWM), in MB. */
async function residentMegabytes(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kilobytes = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return Math.round(kilobytes / 1024);
}

const peakResidentMegabytes = (pid: number): Promise<number> => residentMegabytes(pid, 'VmHWM');

/**
 * Where each list of bodies is up to: every run (warm-up, full-speed rounds, steady rate) goes on from where the last
 * one stopped, so that all of them cycle through the whole sample. When each run started again at the first body, the
 * 5 s full-speed rounds at 1M saw only the first ~6,800 patients, whose cohorts the cache held after one round, while
 * the 15 s steady run reached 10,000 and more and missed the cache: its "half of the peak" loaded the service to an
 * event-loop utilization of 0.8-0.9 (RUNTIME_STATS_INTERVAL_MS, docs/benchmarks.md).
 */
const cursors = new WeakMap<readonly string[], { next: number }>();
function nextBody(bodies: readonly string[]): string {
  let cursor = cursors.get(bodies);
  if (!cursor) cursors.set(bodies, (cursor = { next: 0 }));
  return bodies[cursor.next++ % bodies.length]!;
}

/** Fires `bodies` in turn as fast as `connections` connections allow; each response time (ms) goes to `samples` when given. */
function run(url: string, bodies: string[], title: string, seconds = durationSeconds, samples?: number[]): Promise<autocannon.Result> {
  collectDriverGarbage();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        connections,
        duration: seconds,
        title,
        requests: [
          {
            setupRequest: (request) => ({ ...request, body: nextBody(bodies) }),
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    if (samples) instance.on('response', (_client: unknown, _status: number, _bytes: number, time: number) => samples.push(time));
  });
}

/** One endpoint at full speed over every round: latencies of all its responses, and its rate in each round. */
interface PeakResult {
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  /** Responses per second over all rounds. */
  readonly rate: number;
  readonly roundRates: readonly number[];
  readonly non2xx: number;
  readonly errors: number;
}

/**
 * The endpoints at full speed, taking turns: `rounds` rounds, each running every endpoint for its share of
 * `durationSeconds`. The machine's speed drifts by a quarter and more over minutes (a shared 2-core VM), so
 * endpoints measured one after another in single long runs compare the moments as much as the endpoints; taking
 * turns puts each endpoint in every stretch of the run, and the ratio of two rates is taken over the same rounds.
 */
async function measureInTurns(endpoints: ReadonlyArray<{ readonly url: string; readonly bodies: string[]; readonly title: string }>): Promise<PeakResult[]> {
  const seconds = Math.max(1, Math.round(durationSeconds / rounds));
  const collected = endpoints.map(() => ({ samples: [] as number[], seconds: 0, roundRates: [] as number[], non2xx: 0, errors: 0 }));
  for (let round = 0; round < rounds; round += 1) {
    for (const [index, endpoint] of endpoints.entries()) {
      const into = collected[index]!;
      const before = into.samples.length;
      const result = await run(endpoint.url, endpoint.bodies, `${endpoint.title} (round ${round + 1})`, seconds, into.samples);
      into.seconds += result.duration;
      into.roundRates.push((into.samples.length - before) / result.duration);
      into.non2xx += result.non2xx;
      into.errors += result.errors;
    }
  }
  return collected.map(({ samples, seconds: total, roundRates, non2xx, errors }) => {
    samples.sort((a, b) => a - b);
    return {
      latency: { p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.at(-1) ?? 0 },
      rate: samples.length / total,
      roundRates,
      non2xx,
      errors,
    };
  });
}

/** What the steady-rate run measured: the same fields of autocannon's result that the table reads. */
interface SteadyResult {
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly requests: { readonly average: number };
  readonly non2xx: number;
  readonly errors: number;
  /** p99 of how late the driver itself sent a request (ms): large when the machine starves the driver, not the service. */
  readonly sendLateP99: number;
}

/** The value at percentile `p` (0–100) of ascending `sorted`, nearest rank. */
/**
 * POSTs `bodies` in turn at a steady `rate` per second for `durationSeconds` over `connections` keep-alive
 * connections; each latency (ms) is counted from the moment its request was due.
 */
function runAtSteadyRate(url: string, bodies: string[], rate: number, seconds = durationSeconds): Promise<SteadyResult> {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: steadyConnections });
  const total = Math.round(rate * (steadyWarmUpSeconds + seconds));
  const latencies: number[] = [];
  const lateness: number[] = [];
  // BENCH_TIMELINE=1: the p99 and max of each second (by due time) go to stderr, to tell a stall from a steady tail.
  const bySecond: number[][] = [];
  /** …and how late the driver sent in each second at worst (ms): a stall of the driver itself shows here. */
  const lateBySecond: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let settled = 0;
  collectDriverGarbage();
  return new Promise((resolve) => {
    const sendingFrom = performance.now();
    /** Requests due before this are the warm-up: sent, not counted. */
    const started = sendingFrom + steadyWarmUpSeconds * 1000;
    const finish = () => {
      const elapsed = (performance.now() - started) / 1000;
      agent.destroy();
      latencies.sort((a, b) => a - b);
      lateness.sort((a, b) => a - b);
      if (process.env.BENCH_TIMELINE) {
        const seconds = bySecond.map((values, second) => {
          values.sort((a, b) => a - b);
          return `${second}s ${percentile(values, 99).toFixed(0)}/${Math.round(values.at(-1) ?? 0)} (sent late ≤${Math.round(lateBySecond[second] ?? 0)})`;
        });
        process.stderr.write(`${url} at ${rate}/s, p99/max ms by second (and the driver's latest send): ${seconds.join(', ')}\n`);
      }
      resolve({
        sendLateP99: percentile(lateness, 99),
        latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.round(latencies.at(-1) ?? 0) },
        requests: { average: latencies.length / elapsed },
        non2xx,
        errors,
      });
    };
    const send = (due: number, body: string) => {
      const counted = due >= started;
      const late = performance.now() - due;
      const second = Math.floor((due - started) / 1000);
      if (counted) {
        lateness.push(late);
        lateBySecond[second] = Math.max(lateBySecond[second] ?? 0, late);
      }
      const request = http.request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (counted) {
              if (response.statusCode === undefined || response.statusCode < 200 || response.statusCode >= 300) non2xx += 1;
              latencies.push(performance.now() - due);
              (bySecond[second] ??= []).push(performance.now() - due);
            }
            if (++settled === total) finish();
          });
        },
      );
      request.on('error', () => {
        if (counted) errors += 1;
        if (++settled === total) finish();
      });
      request.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && sendingFrom + (sent * 1000) / rate <= now) {
        send(sendingFrom + (sent * 1000) / rate, nextBody(bodies));
        sent += 1;
      }
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}

function line(name: string, result: autocannon.Result): string {
  const l = result.latency;
  return `| ${name} | ${l.p50} | ${l.p99} | ${l.max} | ${Math.round(result.requests.average)} | ${result.non2xx} |`;
}

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? undefined : process.argv[index + 1];
}

/** The scale run: a synthesized cohort of `encounters` in PostgreSQL, two hooks at full speed and at half of it. */
async function scale(encounters: number): Promise<void> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('--encounters needs DATABASE_URL (a PostgreSQL server; the cohort gets a database of its own)');
  const seed = Number(argument('seed') ?? 1);
  const sampleSize = Number(process.env.BENCH_PATIENTS ?? 12000);
  const directory = await synthesizedDirectory(root, encounters, seed, argument('data'));
  const { url: databaseUrl, ingestSeconds } = await loadedDatabase(root, serverUrl, scaleBenchDatabase(encounters, seed), directory);
  const bodies = await buildHookBodies(directory, sampleSize, seed);
  const service = await start([...startFlags(), ...serviceNodeArguments, path.join(root, 'dist/src/server.js')], {
    ...process.env,
    DATABASE_URL: databaseUrl,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DEMO_COHORT: 'false',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const bare = await start([path.join(root, 'dist/bench/bare-server.js')], process.env);
  try {
    const orderSelectUrl = `${service.url}/cds-services/order-select`;
    const patientViewUrl = `${service.url}/cds-services/patient-view`;
    await run(orderSelectUrl, bodies.orderSelect, 'warm-up').catch(() => undefined);
    // Where the memory goes: what the started service holds after one run (snapshot, reference data, caches filling)
    // against what the rest of the runs add.
    const afterWarmUp = await residentMegabytes(service.child.pid!, 'VmRSS');
    const [orderSelect, patientView, ceiling] = await measureInTurns([
      { url: orderSelectUrl, bodies: bodies.orderSelect, title: 'order-select' },
      { url: patientViewUrl, bodies: bodies.patientView, title: 'patient-view' },
      { url: `${bare.url}/bare`, bodies: bodies.orderSelect, title: 'bare' },
    ]) as [PeakResult, PeakResult, PeakResult];
    const orderSelectHalf = await runAtSteadyRate(orderSelectUrl, bodies.orderSelect, Math.max(1, Math.round(orderSelect.rate / 2)));
    const patientViewHalf = await runAtSteadyRate(patientViewUrl, bodies.patientView, Math.max(1, Math.round(patientView.rate / 2)));
    const memory = await peakResidentMegabytes(service.child.pid!);
    const atEnd = await residentMegabytes(service.child.pid!, 'VmRSS');
    // Over all rounds, and the lowest and highest of the rounds' own ratios (each against the bare run of its round).
    const share = (result: PeakResult) => {
      const byRound = result.roundRates.map((rate, round) => (rate / ceiling.roundRates[round]!) * 100);
      return `${((result.rate / ceiling.rate) * 100).toFixed(1)}% (rounds ${Math.min(...byRound).toFixed(1)}–${Math.max(...byRound).toFixed(1)}%)`;
    };
    const row = (name: string, full: PeakResult, half: SteadyResult | null) =>
      `| ${name} | ${full.latency.p50.toFixed(1)} | ${full.latency.p99.toFixed(1)} | ${Math.round(full.latency.max)} | ${Math.round(full.rate)} | ${share(full)} | ${half ? `${half.latency.p50.toFixed(1)} / ${half.latency.p99.toFixed(1)} / ${half.latency.max} (at ${Math.round(half.requests.average)} req/s; driver late p99 ${half.sendLateP99.toFixed(1)})` : '–'} | ${full.non2xx + full.errors + (half?.non2xx ?? 0) + (half?.errors ?? 0)} |`;
    process.stdout.write(
      [
        `Cohort CDS scale benchmark — ${new Date().toISOString()} — PostgreSQL, ${encounters} synthesized encounters (seed ${seed}, ${directory}), ` +
          `${bodies.orderSelect.length} distinct patients sampled from ${bodies.edVisits} ED visits, ${connections} connections, ` +
          `${durationSeconds} s each at full speed (in ${rounds} rounds taking turns) and at half rate`,
        ingestSeconds === null ? 'database reused from an earlier run' : `ingest: ${ingestSeconds.toFixed(0)} s`,
        '',
        '| endpoint | p50 ms | p99 ms | max ms | req/s | of bare | p50 / p99 / max ms at a steady half of the peak rate | non-2xx |',
        '| --- | --- | --- | --- | --- | --- | --- | --- |',
        row('POST /cds-services/order-select', orderSelect, orderSelectHalf),
        row('POST /cds-services/patient-view', patientView, patientViewHalf),
        row('bare fastify POST', ceiling, null),
        '',
        `service peak resident memory ${memory} MB (resident ${afterWarmUp} MB after the warm-up run, ${atEnd} MB at the end; ` +
          `COHORT_CACHE_SIZE ${process.env.COHORT_CACHE_SIZE ?? 'default'}, COHORT_CACHE_ITEMS ${process.env.COHORT_CACHE_ITEMS ?? 'default'})`,
        '',
      ].join('\n'),
    );
    const failed = [orderSelect, patientView, ceiling, orderSelectHalf, patientViewHalf].some((result) => result.errors + result.non2xx > 0);
    if (failed) process.exitCode = 1;
  } finally {
    service.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const encounters = argument('encounters');
  if (encounters !== undefined) {
    if (!/^\d+$/.test(encounters) || Number(encounters) < 1) throw new Error('--encounters takes a positive whole number');
    return scale(Number(encounters));
  }
  const bodies = await buildRequests();
  const dataDirectory = await mkdtemp(path.join(tmpdir(), 'cohort-bench-'));
  const started = Date.now();
  const service = await start([...startFlags(), ...serviceNodeArguments, path.join(root, 'dist/src/server.js')], {
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
