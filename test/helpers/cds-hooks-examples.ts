import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HookName } from '../../src/hooks/cds-hooks.schema.js';
import { cdsHooksDirectory } from '../../src/paths.js';

/** A fresh copy of cds-hooks/examples/<hook>.json, free to mutate in a test. */
export function readExampleRequest(hook: HookName): Record<string, unknown> {
  return JSON.parse(readFileSync(join(cdsHooksDirectory, 'examples', `${hook}.json`), 'utf8')) as Record<string, unknown>;
}
