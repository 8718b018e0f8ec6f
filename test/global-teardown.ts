import { rm } from 'node:fs/promises';

const templatesVariable = 'COHORT_TEST_TEMPLATES';

/** Removes the database states global setup built: the PGlite dumps' folder, the PostgreSQL template databases. */
export default async function globalTeardown(): Promise<void> {
  const value = process.env[templatesVariable];
  if (!value) return;
  delete process.env[templatesVariable];
  const templates = JSON.parse(value) as { readonly directory: string; readonly postgresPrefix?: string };
  const url = process.env.DATABASE_URL;
  if (url && templates.postgresPrefix) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ datname: string }>('select datname from pg_database where starts_with(datname, $1)', [`${templates.postgresPrefix}_`]);
      for (const { datname } of rows) await client.query(`drop database if exists ${client.escapeIdentifier(datname)} with (force)`);
    } finally {
      await client.end();
    }
  }
  await rm(templates.directory, { recursive: true, force: true });
}
