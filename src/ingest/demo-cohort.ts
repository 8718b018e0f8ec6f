import type { Kysely } from 'kysely';
import { countCohortEncounters } from '../db/cohort-encounter.repository.js';
import type { Database } from '../db/database.js';
import { demoCohortDirectory } from '../paths.js';
import { ingestPaths, type IngestOptions, type IngestReport } from './ingest.js';

export interface DemoCohortOptions extends IngestOptions {
  /** The bundled MIMIC-IV ED demo unless given. */
  readonly directory?: string;
}

/**
 * Loads the bundled MIMIC-IV-ED demo when cohort_encounter is empty, so that a fresh service has a cohort
 * to show; returns null when the cohort already holds encounters. Seed reference data first
 * (ensureReferenceData), or pass the vocabulary and ICD-9 map.
 */
export async function ensureDemoCohort(db: Kysely<Database>, options: DemoCohortOptions): Promise<IngestReport | null> {
  if ((await countCohortEncounters(db)) > 0) return null;
  const { directory = demoCohortDirectory, ...ingestOptions } = options;
  return ingestPaths(db, [directory], { source: 'bundled MIMIC-IV-ED demo', ...ingestOptions });
}
