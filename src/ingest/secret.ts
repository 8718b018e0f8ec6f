import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';

/** Name of the generated secret inside DATA_DIR. */
export const patientHashSecretFile = 'patient-hash.secret';

/**
 * PATIENT_HASH_SECRET when set; otherwise a random secret kept in DATA_DIR (mode 0600), created on first use
 * so that keys stay stable across restarts and re-ingests on one machine.
 */
export async function resolvePatientHashSecret(config: Pick<Config, 'patientHashSecret' | 'dataDirectory'>): Promise<string> {
  if (config.patientHashSecret) return config.patientHashSecret;
  const file = path.resolve(config.dataDirectory, patientHashSecretFile);
  const existing = await readSecret(file);
  if (existing) return existing;
  await mkdir(path.dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('hex');
  // Written in full under a private name, then linked into place: link() fails if another process got there
  // first, and nobody ever reads a half-written file.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(draft, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(draft, file);
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readSecret(file);
    if (!winner) throw new Error(`${file} exists but holds no usable secret`, { cause: error });
    return winner;
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}

async function readSecret(file: string): Promise<string | null> {
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret.length < 32) throw new Error(`${file} holds fewer than 32 characters; delete it or set PATIENT_HASH_SECRET`);
    return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
