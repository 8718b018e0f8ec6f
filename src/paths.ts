import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * This file runs from src/ under jest and from dist/src/ once built, so the project root is one or two
 * levels up: the first of them that holds package.json.
 */
function findProjectRoot(): string {
  for (const candidate of [path.resolve(here, '..'), path.resolve(here, '../..')]) {
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
  }
  throw new Error(`cannot find the project root (package.json) above ${here}`);
}

/** The folder that holds package.json. */
export const projectRoot: string = findProjectRoot();

/** The bundled MIMIC-IV ED demo, loaded when the cohort is empty. */
export const demoCohortDirectory: string = path.join(projectRoot, 'demo-data', 'mimic-iv-ed-demo-fhir');

/** ICD-10-CM codes and the ICD-9-CM → ICD-10-CM GEMs. */
export const codeTablesDirectory: string = path.join(projectRoot, 'demo-data', 'code-tables');
