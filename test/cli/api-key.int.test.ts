import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { hashApiKey } from '../../src/auth/api-key.js';
import { runCli } from '../../src/cli/program.js';
import { buildConfig } from '../../src/config.js';
import { findApiKeyIdentity } from '../../src/db/api-key.repository.js';
import { openDatabase } from '../../src/db/connection.js';
import { demoApiKeyFile, ensureDemoApiKey } from '../../src/db/demo-api-key.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { openTestDatabase, seedPgliteDataDirectory } from '../helpers/database.js';

describe('cohort-cds api-key', () => {
  let directory: string;
  let output: string[];
  let errors: string[];

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-api-key-'));
    // A migrated database, as the CLI's first run leaves it (initdb and the migrations skipped).
    await seedPgliteDataDirectory(path.join(directory, 'data'), 'migrated');
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const capture = () => {
    output = [];
    errors = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
  };
  const config = () => buildConfig({ dataDirectory: path.join(directory, 'data'), databaseUrl: undefined });
  const cli = (...args: string[]) => runCli(['node', 'cohort-cds', 'api-key', ...args], config);

  it('creates a key, prints it once, stores only its hash, lists and revokes it', async () => {
    capture();
    expect(await cli('create', '--name', 'ada', '--role', 'informaticist')).toBe(0);
    const key = output.join('').trim();
    expect(key).toMatch(/^ccds_[A-Za-z0-9_-]{43}$/);
    expect(errors.join('')).toContain('shown once');

    capture();
    expect(await cli('list')).toBe(0);
    const listing = output.join('');
    expect(listing).toContain('ada\tinformaticist');
    expect(listing).not.toContain(key);

    capture();
    expect(await cli('create', '--name', 'ada', '--role', 'viewer')).toBe(1);
    expect(errors.join('')).toContain('exists already');
    capture();
    expect(await cli('create', '--name', 'bob', '--role', 'admin')).toBe(1);
    expect(errors.join('')).toContain('--role must be one of viewer, informaticist');

    const handle = await openDatabase({ databaseUrl: undefined, dataDirectory: config().dataDirectory });
    try {
      expect(await findApiKeyIdentity(handle.db, hashApiKey(key))).toEqual({ name: 'ada', role: 'informaticist' });
    } finally {
      await handle.close();
    }

    capture();
    expect(await cli('revoke', '--name', 'ada')).toBe(0);
    capture();
    expect(await cli('revoke', '--name', 'ada')).toBe(1);
    const again = await openDatabase({ databaseUrl: undefined, dataDirectory: config().dataDirectory });
    try {
      expect(await findApiKeyIdentity(again.db, hashApiKey(key))).toBeUndefined();
      const audit = await again.db.selectFrom('audit_event').select(['actor', 'action', 'target']).orderBy('audit_event_id').execute();
      expect(audit).toEqual([
        { actor: 'cli', action: 'api-key.create', target: 'ada' },
        { actor: 'cli', action: 'api-key.revoke', target: 'ada' },
      ]);
    } finally {
      await again.close();
    }
  });

  it('gives the demo one informaticist key in a private file, and only when there is no key at all', async () => {
    const database = await openTestDatabase();
    try {
      await migrateToLatest(database.db);
      const demoDirectory = path.join(directory, 'demo');
      const file = await ensureDemoApiKey(database.db, demoDirectory);
      expect(file).toBe(path.resolve(demoDirectory, demoApiKeyFile));
      const key = (await readFile(file as string, 'utf8')).trim();
      expect((await stat(file as string)).mode & 0o777).toBe(0o600);
      expect(await findApiKeyIdentity(database.db, hashApiKey(key))).toEqual({ name: 'demo-informaticist', role: 'informaticist' });
      expect(await ensureDemoApiKey(database.db, demoDirectory)).toBeUndefined();
    } finally {
      await database.close();
    }
  });
});
