import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import { countEvaluationEncounters, hasItemWithClinician, readEvaluationEncounterChunks } from '../db/evaluation-data.repository.js';
import { replaceClinicianReputations, tallyClinicianReputations } from '../db/reputation.repository.js';
import { modifierConcepts } from '../cohort/complaint.js';
import { ReputationAccumulator, summarizeReputation, type ReputationSummary } from './reputation.js';

export interface RecomputeReputationOptions {
  /**
   * `sql` (default): tallied in the database by a few aggregating statements; `chunks`: the cohort read a chunk of
   * `chunkSize` encounters at a time, twice, and tallied here. Both give the same tallies, hence the same reputations.
   */
  readonly method?: 'sql' | 'chunks';
  /** Encounters read at a time by `chunks` (default 5,000): what bounds its memory, whatever the cohort's size. */
  readonly chunkSize?: number;
  /**
   * `sql` only: false leaves the summary's `items` uncounted (0). The one count that folds every item of the cohort
   * (measured: ~4 s of a recompute at 100,000 encounters); the reputations do not depend on it.
   */
  readonly countItems?: boolean;
}

/**
 * Computes every clinician's reputation from the stored cohort (items as the cards count them: lab analytes folded
 * into panels) and replaces the stored ones: after an ingest or an opt-out, or on demand (`cli reputation`).
 * Inside one repeatable-read transaction, so that an opt-out committed meanwhile cannot make two steps read different
 * cohorts. In SQL it is a few scans of the cohort instead of a per-chunk item join (measured at 100,000 encounters: 63 s).
 */
export async function recomputeClinicianReputation(db: Kysely<Database>, options: RecomputeReputationOptions = {}): Promise<ReputationSummary> {
  const summary = await db
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx): Promise<ReputationSummary> => {
      if ((options.method ?? (options.chunkSize === undefined ? 'sql' : 'chunks')) === 'sql') {
        return summarizeReputation(await tallyClinicianReputations(trx, [...modifierConcepts], { countItems: options.countItems ?? true }));
      }
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
