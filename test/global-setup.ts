/** Fails fast, before any suite runs, when the PostgreSQL named by DATABASE_URL cannot be reached. */
export default async function globalSetup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    throw new Error(`DATABASE_URL is set but PostgreSQL cannot be reached: ${String(error)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}
