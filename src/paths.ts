import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The nearest folder at or above `start` that holds package.json: this file runs from src/ under jest and
 * from dist/src/ once built.
 */
export function findProjectRoot(start: string = here): string {
  let directory = start;
  for (;;) {
    if (existsSync(path.join(directory, 'package.json'))) return directory;
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`cannot find the project root (package.json) above ${start}`);
    directory = parent;
  }
}

/** The folder that holds package.json. */
export const projectRoot: string = findProjectRoot();

/** The bundled MIMIC-IV ED demo, loaded when the cohort is empty. */
export const demoCohortDirectory: string = path.join(projectRoot, 'demo-data', 'mimic-iv-ed-demo-fhir');

/** ICD-10-CM codes and the ICD-9-CM → ICD-10-CM GEMs. */
export const codeTablesDirectory: string = path.join(projectRoot, 'demo-data', 'code-tables');

/** The cds-hooks/ folder: services.json and the example requests. */
export const cdsHooksDirectory: string = path.join(projectRoot, 'cds-hooks');

/**
 * The console's static files (HTML, ES modules, CSS), served as they are, next to this module: src/console/public
 * under jest, dist/src/console/public once built (`npm run build` copies them there, so that the runtime image
 * needs dist and not src).
 */
export const consoleAssetsDirectory: string = path.join(here, 'console', 'public');
