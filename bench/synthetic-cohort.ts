/**
 * The scale benchmark's data: a synthesized cohort of N encounters (`cli synthesize`), loaded once into its own
 * PostgreSQL database (reused by later runs), and hook requests for a random sample of its ED visits.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import pg from 'pg';

type Json = Record<string, any>;

/** Runs a command to completion, its output shown; throws on a non-zero exit. */
export function runToCompletion(command: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command.join(' ')} exited with ${code}`))));
  });
}

/** Where the NDJSON for N encounters is: a folder given, one left by the synthesizer's engineer, or made now. */
export async function synthesizedDirectory(root: string, encounters: number, seed: number, given: string | undefined): Promise<string> {
  const candidates = [
    given,
    encounters === 100000 ? '/tmp/synth-100k' : undefined,
    encounters === 1000000 ? '/tmp/synth-1m' : undefined,
    path.join('/tmp/cohort-cds-bench', `synthetic-${encounters}-seed${seed}`),
  ].filter((candidate): candidate is string => candidate !== undefined);
  for (const candidate of candidates) {
    if (existsSync(path.join(candidate, 'synthesis.json'))) return candidate;
  }
  if (given) throw new Error(`${given} holds no synthesis.json`);
  const directory = candidates.at(-1)!;
  process.stderr.write(`synthesizing ${encounters} encounters (seed ${seed}) into ${directory}\n`);
  await runToCompletion(
    [path.join(root, 'dist/src/cli/main.js'), 'synthesize', '--encounters', String(encounters), '--seed', String(seed), '--gzip', '--out', directory],
    process.env,
  );
  return directory;
}

/**
 * A database of its own for this cohort on the server of DATABASE_URL: reused when an earlier run loaded it
 * completely (the ingest's last step writes the active aggregate generation), else created and ingested now.
 */
export async function loadedDatabase(root: string, serverUrl: string, name: string, directory: string): Promise<{ url: string; ingestSeconds: number | null }> {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const probe = new pg.Client({ connectionString: url.toString() });
  await probe.connect();
  let complete = false;
  try {
    const found = await probe.query(
      `select 1 from information_schema.tables where table_name = 'cohort_aggregate_generation'`,
    );
    if ((found.rowCount ?? 0) > 0) {
      const active = await probe.query(`select 1 from cohort_aggregate_generation where status = 'active'`);
      complete = (active.rowCount ?? 0) > 0;
    }
  } finally {
    await probe.end();
  }
  if (complete) return { url: url.toString(), ingestSeconds: null };
  process.stderr.write(`ingesting ${directory} into ${name} (an interrupted ingest resumes)\n`);
  const started = Date.now();
  await runToCompletion([path.join(root, 'dist/src/cli/main.js'), 'ingest', directory], { ...process.env, DATABASE_URL: url.toString() });
  return { url: url.toString(), ingestSeconds: (Date.now() - started) / 1000 };
}

async function* ndjsonLines(file: string): AsyncGenerator<string> {
  const input = createReadStream(file);
  const lines = createInterface({ input: file.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  for await (const line of lines) if (line.length > 0) yield line;
}

async function filesOf(directory: string, resourceType: string): Promise<string[]> {
  const files = await readdir(directory);
  return files
    .filter((file) => new RegExp(`^(Mimic)?${resourceType}(ED)?\\.ndjson(\\.gz)?$`).test(file))
    .map((file) => path.join(directory, file));
}

/** A small deterministic generator (mulberry32), so a seed gives the same sample. */
function randomGenerator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bundle(resources: Json[]): Json {
  return { resourceType: 'Bundle', type: 'searchset', entry: resources.map((resource) => ({ resource })) };
}

export interface HookBodies {
  readonly orderSelect: string[];
  readonly patientView: string[];
  readonly patients: number;
  readonly edVisits: number;
}

/**
 * One order-select and one patient-view request per sampled ED visit, everything prefetched, as an EHR sends them.
 * The sample is uniform over the ED visits (reservoir sampling), one visit per patient: the cohort's own mix of
 * ages, sexes, complaints and diagnoses. The files are streamed; only the sample's resources are kept.
 */
export async function buildHookBodies(directory: string, sampleSize: number, seed: number): Promise<HookBodies> {
  const random = randomGenerator(seed);
  const sample: Json[] = [];
  const sampledPatients = new Set<string>();
  let edVisits = 0;
  for (const file of await filesOf(directory, 'Encounter')) {
    for await (const line of ndjsonLines(file)) {
      if (!line.includes('"EMER"')) continue;
      const encounter = JSON.parse(line) as Json;
      if (encounter.class?.code !== 'EMER') continue;
      edVisits += 1;
      const patientId = (encounter.subject?.reference as string | undefined)?.split('/')[1];
      if (!patientId || sampledPatients.has(patientId)) continue;
      if (sample.length < sampleSize) {
        sample.push(encounter);
        sampledPatients.add(patientId);
      } else {
        const slot = Math.floor(random() * edVisits);
        if (slot < sampleSize) {
          sampledPatients.delete((sample[slot]!.subject.reference as string).split('/')[1]!);
          sample[slot] = encounter;
          sampledPatients.add(patientId);
        }
      }
    }
  }
  const encounterIds = new Set(sample.map((encounter) => encounter.id as string));
  const patients = new Map<string, Json>();
  for (const file of await filesOf(directory, 'Patient')) {
    for await (const line of ndjsonLines(file)) {
      const patient = JSON.parse(line) as Json;
      if (sampledPatients.has(patient.id as string)) patients.set(patient.id as string, patient);
    }
  }
  const byEncounter = async (resourceType: string, keep: (line: string) => boolean): Promise<Map<string, Json[]>> => {
    const found = new Map<string, Json[]>();
    for (const file of await filesOf(directory, resourceType)) {
      for await (const line of ndjsonLines(file)) {
        if (!keep(line)) continue;
        const match = /"encounter":\{"reference":"Encounter\/([^"]+)"/.exec(line);
        if (!match || !encounterIds.has(match[1]!)) continue;
        const list = found.get(match[1]!) ?? [];
        list.push(JSON.parse(line) as Json);
        found.set(match[1]!, list);
      }
    }
    return found;
  };
  const conditions = await byEncounter('Condition', () => true);
  const complaints = await byEncounter('Observation', (line) => line.includes('"8661-1"'));
  const orderSelect: string[] = [];
  const patientView: string[] = [];
  for (const encounter of sample) {
    const patientId = (encounter.subject.reference as string).split('/')[1]!;
    const patient = patients.get(patientId);
    if (!patient) continue;
    const prefetch = {
      patient,
      encounter,
      conditions: bundle(conditions.get(encounter.id as string) ?? []),
      chiefComplaint: bundle(complaints.get(encounter.id as string) ?? []),
      acuity: null,
    };
    const context = { userId: 'Practitioner/bench', patientId, encounterId: encounter.id };
    patientView.push(JSON.stringify({ hook: 'patient-view', hookInstance: randomUUID(), context, prefetch }));
    orderSelect.push(
      JSON.stringify({
        hook: 'order-select',
        hookInstance: randomUUID(),
        context: {
          ...context,
          selections: ['ServiceRequest/draft-1'],
          draftOrders: bundle([
            { resourceType: 'ServiceRequest', id: 'draft-1', status: 'draft', intent: 'order', subject: { reference: `Patient/${patientId}` }, code: { text: 'Lactate' } },
          ]),
        },
        prefetch,
      }),
    );
  }
  return { orderSelect, patientView, patients: patients.size, edVisits };
}
