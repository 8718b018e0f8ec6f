import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Database } from './database.js';
import { describeDatabaseUrl, openReadDatabase, primaryOnlyReadDatabase, type ReadDatabase } from './read-replica.js';

export type DatabaseKind = 'pglite' | 'postgres';

/** An open database and how to close it. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  /**
   * Where the hook path reads (cohort statistics, reference data): the streaming replicas when configured and
   * fit, else the primary. Every write goes through `db`. Absent on handles built without it: read from `db`.
   */
  readonly read?: ReadDatabase;
  /** The primary's pool on PostgreSQL (absent on PGlite). */
  readonly pool?: pg.Pool;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A postgres:// URL; without one, PGlite is embedded. */
  readonly databaseUrl?: string | undefined;
  /** Where PGlite keeps its files; `memory` keeps nothing on disk. */
  readonly dataDirectory: string | 'memory';
  readonly poolSize?: number;
  /** postgres:// URLs of streaming replicas the hook path may read from (PostgreSQL only). */
  readonly readReplicaUrls?: readonly string[];
  /** A replica further behind the primary than this is not read from (docs/scaling.md). */
  readonly readReplicaMaxLagMs?: number;
  /** How often the replicas' replay position is checked. */
  readonly readReplicaCheckIntervalMs?: number;
  /**
   * PostgreSQL only: a query whose answer has not arrived after this fails with "Query read timeout". A server
   * that stops answering without closing the connection (a network partition, a frozen host) would otherwise
   * hold the request forever. Unset or 0: no limit (the CLI's long ingest and backtest queries).
   */
  readonly queryTimeoutMs?: number;
}

/** A `pg` pool whose lost connections fail the query in flight rather than the process. */
export function createPostgresPool(
  connectionString: string,
  options: { readonly max: number; readonly connectionTimeoutMillis: number; readonly queryTimeoutMillis?: number | undefined },
): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max,
    connectionTimeoutMillis: options.connectionTimeoutMillis,
    idleTimeoutMillis: 30000,
    // Client-side, so it also fires when the server is unreachable (statement_timeout needs the server to act).
    ...(options.queryTimeoutMillis ? { query_timeout: options.queryTimeoutMillis } : {}),
  });
  // A client losing its server (restart, failover) must not crash the process: idle clients report through
  // the pool, checked-out ones on themselves; the query in flight fails and the error handler answers 503.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

// Postgres returns bigint and numeric as strings; counts here fit easily in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number.parseFloat(value));

/** Where the embedded PGlite keeps its files under DATA_DIR. */
export function pgliteDirectory(dataDirectory: string): string {
  return path.resolve(dataDirectory, 'pglite');
}

/** Opens PostgreSQL through `pg` when a URL is given, else the embedded PGlite. */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = createPostgresPool(options.databaseUrl, { max: options.poolSize ?? 10, connectionTimeoutMillis: 2000, queryTimeoutMillis: options.queryTimeoutMs });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const replicaUrls = options.readReplicaUrls ?? [];
    let read: ReadDatabase;
    try {
      read = await openReadDatabase({
        primaryPool: pool,
        primaryDb: db,
        // A replica that does not answer quickly is skipped for the primary rather than waited for.
        replicas: replicaUrls.map((url) => ({ name: describeDatabaseUrl(url), pool: createPostgresPool(url, { max: options.poolSize ?? 10, connectionTimeoutMillis: 1000, queryTimeoutMillis: options.queryTimeoutMs }) })),
        maxLagMs: options.readReplicaMaxLagMs ?? 5000,
        ...(options.readReplicaCheckIntervalMs === undefined ? {} : { checkIntervalMs: options.readReplicaCheckIntervalMs }),
      });
    } catch (error) {
      await db.destroy();
      throw error;
    }
    return {
      db,
      kind: 'postgres',
      read,
      pool,
      close: async () => {
        await read.close();
        await db.destroy();
      },
    };
  }
  if ((options.readReplicaUrls ?? []).length > 0) throw new Error('Read replicas need PostgreSQL (DATABASE_URL); PGlite has none');
  let pglite: PGlite;
  if (options.dataDirectory === 'memory') {
    pglite = new PGlite();
  } else {
    const directory = pgliteDirectory(options.dataDirectory);
    await mkdir(directory, { recursive: true });
    pglite = new PGlite(directory);
  }
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return {
    db,
    kind: 'pglite',
    read: primaryOnlyReadDatabase(db),
    close: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}
