import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { countEvaluationEncounters, hasItemWithClinician, readEvaluationEncounterChunks } from '../db/evaluation-data.repository.js';
import { replaceClinicianReputations } from '../db/reputation.repository.js';
import { ReputationAccumulator, type ReputationSummary } from './reputation.js';

export interface RecomputeReputationOptions {
  /** Encounters read at a time (default 5,000): what bounds the memory of a recompute, whatever the cohort's size. */
  readonly chunkSize?: number;
}

/**
 * Computes every clinician's reputation from the stored cohort (items as the cards count them: lab analytes folded
 * into panels) and replaces the stored ones: after an ingest or an opt-out, or on demand (`cli reputation`).
 * The cohort is read in chunks, twice (consensus, then tallies), inside one repeatable-read transaction so that an
 * opt-out committed in between cannot make the two passes read different cohorts.
 */
export async function recomputeClinicianReputation(db: Kysely<Database>, options: RecomputeReputationOptions = {}): Promise<ReputationSummary> {
  const summary = await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx): Promise<ReputationSummary> => {
      // No clinician on any item: no one to rate, and the counts of the summary come from the database alone.
      if (!(await hasItemWithClinician(trx))) {
        const counts = await countEvaluationEncounters(trx, { foldLabPanels: true });
        return { clinicians: [], meanAgreement: null, meanReturnRate72h: null, encounters: counts.encounters, items: counts.items, itemsWithClinician: 0 };
      }
      const accumulator = new ReputationAccumulator();
      const chunks = { foldLabPanels: true, ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }) };
      for await (const chunk of readEvaluationEncounterChunks(trx, chunks)) {
        for (const encounter of chunk) accumulator.addToConsensus(encounter);
      }
      for await (const chunk of readEvaluationEncounterChunks(trx, { ...chunks, clinicianItemsOnly: true })) {
        for (const encounter of chunk) accumulator.addToTallies(encounter);
      }
      return accumulator.finish();
    });
  await replaceClinicianReputations(db, summary.clinicians);
  return summary;
}
