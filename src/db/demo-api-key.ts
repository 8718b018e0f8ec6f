import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from './database.js';
import { countApiKeys, createApiKey } from './api-key.repository.js';

/** Where the demo's informaticist key is written (mode 0600), inside DATA_DIR. */
export const demoApiKeyFile = 'demo-api-key.txt';
export const demoApiKeyName = 'demo-informaticist';

/**
 * The demo (`npm start` with no configuration) must be usable from the console, so when no API key exists at
 * all one informaticist key is made and written to DATA_DIR/demo-api-key.txt, never to the log. A service
 * that made its own keys is never given one.
 */
export async function ensureDemoApiKey(db: Kysely<Database>, dataDirectory: string): Promise<string | undefined> {
  if ((await countApiKeys(db)) > 0) return undefined;
  const { key } = await createApiKey(db, { name: demoApiKeyName, role: 'informaticist', createdBy: 'system' });
  const file = path.resolve(dataDirectory, demoApiKeyFile);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return file;
}
