import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { mimicDemoDirectory } from './app.js';

/**
 * Writes a copy of the MIMIC demo into `directory` without any line that names `patientId` (the Patient itself and
 * every resource whose subject or patient is it), so a test can ingest "the same data had the patient never been
 * there". MIMIC ids are UUIDs: a substring match cannot catch another patient's line.
 */
export async function writeDemoWithoutPatient(directory: string, patientId: string): Promise<{ readonly linesDropped: number }> {
  let linesDropped = 0;
  for (const file of await readdir(mimicDemoDirectory)) {
    if (!file.endsWith('.ndjson.gz')) continue;
    const lines = gunzipSync(await readFile(path.join(mimicDemoDirectory, file))).toString('utf8').split('\n');
    const kept = lines.filter((line) => {
      const drop = line.includes(patientId);
      if (drop) linesDropped += 1;
      return !drop;
    });
    await writeFile(path.join(directory, file), gzipSync(kept.join('\n')));
  }
  return { linesDropped };
}
