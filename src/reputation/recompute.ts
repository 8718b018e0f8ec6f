import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { loadEvaluationEncounters } from '../db/evaluation-data.repository.js';
import { replaceClinicianReputations } from '../db/reputation.repository.js';
import { computeReputation, type ReputationSummary } from './reputation.js';

/**
 * Computes every clinician's reputation from the stored cohort (items as the cards count them: lab analytes folded
 * into panels) and replaces the stored ones: after an ingest or an opt-out, or on demand (`cli reputation`).
 */
export async function recomputeClinicianReputation(db: Kysely<Database>): Promise<ReputationSummary> {
  const encounters = await loadEvaluationEncounters(db, { foldLabPanels: true });
  const summary = computeReputation(encounters);
  await replaceClinicianReputations(db, summary.clinicians);
  return summary;
}
