/**
 * `npm run bench:ingest -- --encounters 100000 [--seed 1] [--threads N] [--batches N] [--keep]`: synthesizes a
 * cohort (`cli synthesize --gzip`, kept under the system's temporary folder and reused for the same size and
 * seed), loads it with `cli ingest` into a fresh database on the PostgreSQL of DATABASE_URL, and prints the
 * duration, encounters per second and the ingest process's peak resident memory (VmHWM from /proc, threads
 * included). The database is dropped afterwards unless --keep.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cli = path.join(root, 'dist/src/cli/main.js');

function option(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? undefined : process.argv[index + 1];
}

const encounters = Number((option('encounters') ?? '100000').replace(/_/g, ''));
const seed = Number(option('seed') ?? '1');
const threads = option('threads');
const batches = option('batches');
const keep = process.argv.includes('--keep');
const serverUrl = process.env.DATABASE_URL;

interface Finished {
  readonly code: number | null;
  readonly wallMs: number;
  /** Peak resident set of the process (VmHWM), in bytes; null when /proc could not be read. */
  readonly peakRssBytes: number | null;
  /** CPU time (user + system, all threads) of the process, in seconds, as last sampled before it exited. */
  readonly cpuSeconds: number | null;
  readonly output: string;
}

/** Reads VmHWM (the peak resident set so far) of a live process, in bytes. */
function peakResidentBytes(pid: number): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU time of a live process (all its threads), in seconds, from /proc/<pid>/stat. */
function cpuSecondsOf(pid: number): number | null {
  try {
    // Fields after the command name (in parentheses, which may hold spaces): utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** Runs the built CLI; stderr (progress) passes through, stdout is kept and echoed. */
function runCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    // VmHWM only grows: the last reading before the exit is the peak up to then.
    let peak: number | null = null;
    let cpu: number | null = null;
    const sample = () => {
      const value = child.pid === undefined ? null : peakResidentBytes(child.pid);
      if (value !== null) peak = Math.max(peak ?? 0, value);
      const seconds = child.pid === undefined ? null : cpuSecondsOf(child.pid);
      if (seconds !== null) cpu = Math.max(cpu ?? 0, seconds);
    };
    const timer = setInterval(sample, 100);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(timer);
      resolve({ code, wallMs: Date.now() - started, peakRssBytes: peak, cpuSeconds: cpu, output });
    });
  });
}

async function folderBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory)) total += (await stat(path.join(directory, entry))).size;
  return total;
}

async function main(): Promise<void> {
  if (!serverUrl) throw new Error('set DATABASE_URL to a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres): the benchmark loads a fresh database on it');
  if (!Number.isSafeInteger(encounters) || encounters < 1) throw new Error('--encounters must be a whole number ≥ 1');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first (npm run bench:ingest does)`);

  const input = path.join(tmpdir(), 'cohort-cds-bench', `synthetic-${encounters}-seed${seed}`);
  if (!existsSync(path.join(input, 'synthesis.json'))) {
    await rm(input, { recursive: true, force: true });
    process.stderr.write(`synthesizing ${encounters} encounters (seed ${seed}) into ${input}\n`);
    const synthesis = await runCli(['synthesize', '--encounters', String(encounters), '--seed', String(seed), '--gzip', '--out', input], process.env);
    if (synthesis.code !== 0) throw new Error(`synthesize failed with exit code ${synthesis.code}`);
  } else {
    process.stderr.write(`reusing the synthesized input in ${input}\n`);
  }

  const name = `cohort_bench_ingest_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const dataDirectory = await mkdtemp(path.join(tmpdir(), 'cohort-bench-ingest-'));
  const env = { ...process.env, DATABASE_URL: url.toString(), DATA_DIR: dataDirectory, PATIENT_HASH_SECRET: 'bench-secret-bench-secret-bench-secret-01' };
  try {
    const migrated = await runCli(['migrate'], env);
    if (migrated.code !== 0) throw new Error(`migrate failed with exit code ${migrated.code}`);
    const args = ['ingest', input, ...(threads ? ['--threads', threads] : []), ...(batches ? ['--batches', batches] : [])];
    const ingest = await runCli(args, env);
    if (ingest.code !== 0) throw new Error(`ingest failed with exit code ${ingest.code}`);
    const loaded = Number(/loaded:\s+(\d+) encounters/.exec(ingest.output)?.[1] ?? Number.NaN);
    const items = Number(/encounters, (\d+) items/.exec(ingest.output)?.[1] ?? Number.NaN);
    const seconds = ingest.wallMs / 1000;
    const size = await admin.query<{ bytes: string }>(`select pg_database_size($1) as bytes`, [name]);
    const lines = [
      '',
      `ingest benchmark (${new Date().toISOString()})`,
      `  input:          ${encounters} synthesized encounters (seed ${seed}), ${(await folderBytes(input) / 1e6).toFixed(0)} MB of gzip NDJSON`,
      `  command:        node dist/src/cli/main.js ${args.join(' ')}`,
      `  loaded:         ${loaded} encounters, ${items} items`,
      `  duration:       ${seconds.toFixed(1)} s (the whole command: reference data, staging, loading, keys, lab panels)`,
      `  rate:           ${Math.round(loaded / seconds)} encounters/s`,
      `  CPU time:       ${ingest.cpuSeconds === null ? 'unknown (no /proc)' : `${ingest.cpuSeconds.toFixed(1)} s`} (ingest process, user + system, all threads; sampled every 100 ms)`,
      `  peak RSS:       ${ingest.peakRssBytes === null ? 'unknown (no /proc)' : `${(ingest.peakRssBytes / 2 ** 20).toFixed(0)} MiB`} (ingest process, worker threads included)`,
      `  database size:  ${(Number(size.rows[0]?.bytes ?? 0) / 1e9).toFixed(2)} GB`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(dataDirectory, { recursive: true, force: true });
    if (keep) process.stderr.write(`kept database ${name}\n`);
    else await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
