import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Database } from './database.js';

export type DatabaseKind = 'pglite' | 'postgres';

/** An open database and how to close it. */
export interface DatabaseHandle {
  readonly db: Kysely<Database>;
  readonly kind: DatabaseKind;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A postgres:// URL; without one, PGlite is embedded. */
  readonly databaseUrl?: string | undefined;
  /** Where PGlite keeps its files; `memory` keeps nothing on disk. */
  readonly dataDirectory: string | 'memory';
  readonly poolSize?: number;
}

// Postgres returns bigint and numeric as strings; counts here fit easily in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number.parseInt(value, 10));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number.parseFloat(value));

/** Opens PostgreSQL through `pg` when a URL is given, else the embedded PGlite. */
export async function openDatabase(options: DatabaseOptions): Promise<DatabaseHandle> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 2000,
      idleTimeoutMillis: 30000,
    });
    // A client losing its server (restart, failover) must not crash the process: idle clients report through
    // the pool, checked-out ones on themselves; the query in flight fails and the error handler answers 503.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: 'postgres', close: () => db.destroy() };
  }
  let pglite: PGlite;
  if (options.dataDirectory === 'memory') {
    pglite = new PGlite();
  } else {
    const directory = path.resolve(options.dataDirectory, 'pglite');
    await mkdir(directory, { recursive: true });
    pglite = new PGlite(directory);
  }
  await pglite.waitReady;
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return {
    db,
    kind: 'pglite',
    close: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}
