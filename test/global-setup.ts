import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Where global setup leaves what it built for the workers (they start after it and inherit its environment). */
const templatesVariable = 'COHORT_TEST_TEMPLATES';

/**
 * Once per jest run, before any suite: fails fast when the PostgreSQL named by DATABASE_URL cannot be reached, then
 * builds the database states the suites copy (test/helpers/test-templates.ts), in a child process because jest loads
 * this file as CommonJS, without the module mapping the app's `.js` imports need. Global teardown removes them.
 */
export default async function globalSetup(_globalConfig: unknown, projectConfig: { readonly rootDir: string }): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (url) {
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
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', './test/helpers/run-typescript.mjs', 'test/helpers/test-templates.ts', 'prepare'],
    { cwd: projectConfig.rootDir, maxBuffer: 16 * 1024 * 1024 },
  );
  process.env[templatesVariable] = stdout.trim().split('\n').at(-1)!;
}
