import { getHeapStatistics } from 'node:v8';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/connection.js';
import { prepareDatabase } from './db/prepare-database.js';
import { installGracefulShutdown } from './http/graceful-shutdown.js';
import { loggerOptions } from './logger.js';

/** Starts the service: config, database, migrations, demo cohort, then listen; SIGTERM drains and closes. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }

  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDirectory: config.dataDirectory,
    readReplicaUrls: config.databaseReadUrls,
    readReplicaMaxLagMs: config.databaseReadMaxLagMs,
    queryTimeoutMs: config.databaseQueryTimeoutMs,
  });
  const app = await buildApp(config, { database, closeDatabase: true, logger: loggerOptions(config) });
  const log = app.log;
  log.info({ database: database.kind }, database.kind === 'pglite' ? 'using the embedded PGlite database' : 'using PostgreSQL');
  // `npm start` bounds the heap (--max-old-space-size): unbounded, V8 let garbage fill the service to 593–648 MB resident at 1M (docs/benchmarks.md).
  log.info({ heapLimitMb: Math.round(getHeapStatistics().heap_size_limit / 2 ** 20) }, 'JavaScript heap limit');
  if (database.read?.replicated) log.info({ replicas: database.read.status().replicas }, 'hooks read from streaming replicas when they are fit');

  // Migrations wait on the lock of another instance starting at the same time, and the demo ingest writes in
  // large batches: neither is held to the query timeout meant for hooks, so they get a pool without one.
  const preparation = database.kind === 'postgres' ? await openDatabase({ databaseUrl: config.databaseUrl, dataDirectory: config.dataDirectory, poolSize: 2 }) : database;
  let prepared: Awaited<ReturnType<typeof prepareDatabase>>;
  try {
    prepared = await prepareDatabase(preparation.db, config, (message) => log.info(message));
  } finally {
    if (preparation !== database) await preparation.close();
  }
  log.info(prepared, 'database ready');

  const address = await app.listen({ port: config.port, host: config.host });
  log.info(`CDS Hooks discovery: ${address}/cds-services`);
  process.stdout.write(`Cohort CDS is listening. Discovery: ${address}/cds-services\n`);
  if (config.cdsAuthDisabled) {
    process.stdout.write('WARNING: CDS client authentication is OFF; any caller is served. Set CDS_TRUSTED_ISSUERS (README, "Security").\n');
  }

  installGracefulShutdown(app);
}

main().catch((error: unknown) => {
  process.stderr.write(`Cohort CDS failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
