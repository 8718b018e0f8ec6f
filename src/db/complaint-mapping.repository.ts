import { sql, type Kysely } from 'kysely';
import { conceptsForComplaint, type ComplaintVocabulary } from '../cohort/complaint.js';
import type { Database } from './database.js';

export interface UnmappedComplaint {
  /** A normalized part of a chief complaint that no synonym maps. */
  readonly phrase: string;
  /** How many cohort encounters carry it. */
  readonly encounters: number;
  /** Whether those encounters have no concept at all (so they never join a complaint cohort). */
  readonly unmatchedEncounters: number;
}

/** The most frequent complaint phrases the vocabulary does not map, read from the stored cohort. */
export async function listUnmappedComplaints(db: Kysely<Database>, vocabulary: ComplaintVocabulary, limit: number): Promise<UnmappedComplaint[]> {
  const texts = await distinctComplaintTexts(db);
  const phrases = new Map<string, { encounters: number; unmatched: number }>();
  for (const { text, encounters } of texts) {
    const { concepts, unmapped } = conceptsForComplaint(text, vocabulary);
    for (const phrase of new Set(unmapped)) {
      const entry = phrases.get(phrase) ?? { encounters: 0, unmatched: 0 };
      entry.encounters += encounters;
      if (concepts.length === 0) entry.unmatched += encounters;
      phrases.set(phrase, entry);
    }
  }
  return [...phrases.entries()]
    .map(([phrase, entry]) => ({ phrase, encounters: entry.encounters, unmatchedEncounters: entry.unmatched }))
    .sort((a, b) => b.encounters - a.encounters || a.phrase.localeCompare(b.phrase))
    .slice(0, limit);
}

/**
 * Recomputes the stored complaint concepts of every encounter under the current vocabulary (one update per
 * distinct complaint text whose concepts changed), so a new synonym reaches the cohort without a re-ingest.
 */
export async function remapComplaintConcepts(db: Kysely<Database>, vocabulary: ComplaintVocabulary): Promise<{ readonly texts: number; readonly encounters: number }> {
  const texts = await db
    .selectFrom('cohort_encounter')
    .select(['chief_complaint_text', 'complaint_concepts'])
    .select((eb) => eb.fn.countAll<string>().as('encounters'))
    .where('chief_complaint_text', 'is not', null)
    .groupBy(['chief_complaint_text', 'complaint_concepts'])
    .execute();
  let changedTexts = 0;
  let changedEncounters = 0;
  for (const row of texts) {
    const text = row.chief_complaint_text as string;
    const { concepts } = conceptsForComplaint(text, vocabulary);
    if (concepts.length === row.complaint_concepts.length && concepts.every((concept, index) => concept === row.complaint_concepts[index])) continue;
    const result = await db.updateTable('cohort_encounter').set({ complaint_concepts: concepts }).where('chief_complaint_text', '=', text).executeTakeFirst();
    changedTexts += 1;
    changedEncounters += Number(result.numUpdatedRows);
  }
  return { texts: changedTexts, encounters: changedEncounters };
}

async function distinctComplaintTexts(db: Kysely<Database>): Promise<Array<{ text: string; encounters: number }>> {
  const rows = await db
    .selectFrom('cohort_encounter')
    .select('chief_complaint_text')
    .select((eb) => eb.fn.countAll<string>().as('encounters'))
    .where('chief_complaint_text', 'is not', null)
    .groupBy('chief_complaint_text')
    .execute();
  return rows.map((row) => ({ text: row.chief_complaint_text as string, encounters: Number(row.encounters) }));
}

export interface CohortCell {
  readonly complaintConcept: string | null;
  readonly ageBand: string;
  readonly sex: string;
  /** null when the count is below the minimum cell size (shown as "fewer than N"). */
  readonly encounters: number | null;
}

/** Age bands of the cohort browser (the cards' own bands are per patient; these are for an overview). */
export const ageBands = [
  { label: '0–17', min: 0, max: 17 },
  { label: '18–39', min: 18, max: 39 },
  { label: '40–64', min: 40, max: 64 },
  { label: '65–79', min: 65, max: 79 },
  { label: '80+', min: 80, max: 200 },
] as const;

/** Encounter counts by primary complaint concept, age band and sex, with cells below `minCellSize` suppressed. */
export async function summarizeCohort(db: Kysely<Database>, minCellSize: number): Promise<{ readonly total: number; readonly cells: CohortCell[] }> {
  const rows = await db
    .selectFrom('cohort_encounter')
    .select((eb) => [
      sql<string | null>`complaint_concepts[1]`.as('concept'),
      'sex',
      eb
        .case()
        .when('age_years', '<=', 17)
        .then('0–17')
        .when('age_years', '<=', 39)
        .then('18–39')
        .when('age_years', '<=', 64)
        .then('40–64')
        .when('age_years', '<=', 79)
        .then('65–79')
        .else('80+')
        .end()
        .as('age_band'),
      eb.fn.countAll<string>().as('encounters'),
    ])
    .groupBy(['concept', 'sex', 'age_band'])
    .execute();
  let total = 0;
  const cells = rows.map((row) => {
    const count = Number(row.encounters);
    total += count;
    return {
      complaintConcept: (row.concept as string | null) ?? null,
      ageBand: String(row.age_band),
      sex: row.sex,
      encounters: count < minCellSize ? null : count,
    };
  });
  cells.sort(
    (a, b) =>
      (a.complaintConcept ?? '~').localeCompare(b.complaintConcept ?? '~') ||
      ageBands.findIndex((band) => band.label === a.ageBand) - ageBands.findIndex((band) => band.label === b.ageBand) ||
      a.sex.localeCompare(b.sex),
  );
  return { total, cells };
}
