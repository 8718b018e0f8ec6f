import type { Command } from 'commander';
import { apiKeyRoles, type ApiKeyRole } from '../auth/api-key.js';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { createApiKey, DuplicateApiKeyNameError, listApiKeys, revokeApiKey } from '../db/api-key.repository.js';
import { migrateToLatest } from '../db/migrate.js';

type WithDatabase = <T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>) => Promise<T>;

/** `api-key create|list|revoke`: keys for the admin API and console; the key is printed once, on stdout. */
export function registerApiKeyCommands(
  program: Command,
  config: () => Config,
  withDatabase: WithDatabase,
  usageError: (message: string) => Error,
): void {
  const apiKey = program.command('api-key').description('API keys of the admin API and console (roles: informaticist, viewer)');

  apiKey
    .command('create')
    .description('make a key; it is printed once and only its hash is stored')
    .requiredOption('--name <name>', 'who holds the key (recorded with every change they make)')
    .requiredOption('--role <role>', `one of ${apiKeyRoles.join(', ')}`)
    .action(async (flags: { name: string; role: string }) => {
      if (!(apiKeyRoles as readonly string[]).includes(flags.role)) throw usageError(`--role must be one of ${apiKeyRoles.join(', ')}`);
      if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(flags.name)) throw usageError('--name must be 1-64 letters, digits, . _ @ or -');
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        try {
          const { key } = await createApiKey(db, { name: flags.name, role: flags.role as ApiKeyRole, createdBy: 'cli' });
          process.stderr.write(`made ${flags.role} key "${flags.name}"; it is shown once, store it now:\n`);
          process.stdout.write(`${key}\n`);
        } catch (error) {
          if (error instanceof DuplicateApiKeyNameError) throw usageError(error.message);
          throw error;
        }
      });
    });

  apiKey
    .command('list')
    .description('list keys (names, roles, prefixes; never the keys)')
    .action(async () => {
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        for (const key of await listApiKeys(db)) {
          const state = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
          process.stdout.write(`${key.name}\t${key.role}\t${key.prefix}…\t${state}\tcreated ${key.createdAt.toISOString()} by ${key.createdBy}\n`);
        }
      });
    });

  apiKey
    .command('revoke')
    .description('revoke a key by name; it stops working at once')
    .requiredOption('--name <name>', 'the key to revoke')
    .action(async (flags: { name: string }) => {
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        if (!(await revokeApiKey(db, flags.name, 'cli'))) throw usageError(`no active key named "${flags.name}"`);
        process.stdout.write(`revoked "${flags.name}"\n`);
      });
    });
}
