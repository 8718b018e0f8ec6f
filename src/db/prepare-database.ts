import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import { createKeyHasher } from '../ingest/deidentify.js';
import { ensureDemoCohort } from '../ingest/demo-cohort.js';
import { ensureReferenceData } from '../ingest/reference-data.js';
import { resolvePatientHashSecret } from '../ingest/secret.js';
import type { Database } from './database.js';
import { migrateToLatest } from './migrate.js';
import { seedDefaultRuleSet } from './rule-set.repository.js';
import { ensureDemoApiKey } from './demo-api-key.js';

export interface PreparedDatabase {
  readonly migrationsApplied: number;
  /** Encounters loaded from the bundled demo at this start; 0 when the cohort already had some. */
  readonly demoEncountersLoaded: number;
  /** The file the demo API key was written to at this start, if one was made. */
  readonly demoApiKeyFile?: string;
}

/** Start-up: migrations, the seed data a new database needs, and the demo cohort when the cohort is empty. */
export async function prepareDatabase(
  db: Kysely<Database>,
  config: Config,
  progress: (message: string) => void,
): Promise<PreparedDatabase> {
  const migrations = await migrateToLatest(db);
  const migrationsApplied = migrations.results?.length ?? 0;
  if (migrationsApplied > 0) progress(`applied ${migrationsApplied} migration(s)`);
  await seedDefaultRuleSet(db);
  await ensureReferenceData(db);
  let demoEncountersLoaded = 0;
  if (config.loadDemoCohort) {
    const hasher = createKeyHasher(await resolvePatientHashSecret(config));
    const report = await ensureDemoCohort(db, { hasher, log: progress });
    if (report) {
      demoEncountersLoaded = report.loaded.encounters;
      progress(`loaded the bundled MIMIC-IV ED demo cohort: ${demoEncountersLoaded} encounters`);
    }
  }
  const demoApiKeyFile = config.createDemoApiKey && config.loadDemoCohort ? await ensureDemoApiKey(db, config.dataDirectory) : undefined;
  if (demoApiKeyFile) progress(`made the demo informaticist API key for the console: it is in ${demoApiKeyFile}`);
  return { migrationsApplied, demoEncountersLoaded, ...(demoApiKeyFile ? { demoApiKeyFile } : {}) };
}
