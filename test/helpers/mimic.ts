import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { mimicDemoDirectory } from './app.js';

type Json = Record<string, any>;

/** Every resource of one MIMIC NDJSON file, parsed plainly, for counts the tests compute on their own. */
export function readMimic(file: string): Json[] {
  return gunzipSync(readFileSync(path.join(mimicDemoDirectory, file)))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Json);
}

/** Whole years between a birth date and a visit start, both as written in the data. */
export function yearsBetween(birthDate: string, start: string): number {
  const [by, bm, bd] = birthDate.split('-').map(Number) as [number, number, number];
  const [sy, sm, sd] = start.slice(0, 10).split('-').map(Number) as [number, number, number];
  return sy - by - (sm < bm || (sm === bm && sd < bd) ? 1 : 0);
}
