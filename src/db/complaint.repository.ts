import { sql, type Kysely, type Transaction } from 'kysely';
import { defaultComplaintConcepts, normalizeComplaintPhrase, type ComplaintVocabulary } from '../cohort/complaint.js';
import { AppError } from '../errors.js';
import type { Database } from './database.js';

export interface ComplaintConceptWithSynonyms {
  readonly concept: string;
  readonly display: string;
  /** Normalized phrases that map to the concept, sorted. */
  readonly phrases: readonly string[];
}

export interface SavedComplaintSynonym {
  readonly phrase: string;
  readonly concept: string;
  readonly createdBy: string;
}

/** Fills the complaint vocabulary from `defaultComplaintConcepts` when it is empty; returns the phrases added. */
export async function seedComplaintVocabulary(db: Kysely<Database>): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const present = await trx.selectFrom('complaint_concept').select(sql<number>`1`.as('present')).limit(1).executeTakeFirst();
    if (present) return 0;
    const concepts = Object.entries(defaultComplaintConcepts).map(([concept, [display]]) => ({ concept, display }));
    await trx.insertInto('complaint_concept').values(concepts).onConflict((oc) => oc.column('concept').doNothing()).execute();
    // A phrase listed under two concepts keeps the first, as the in-memory vocabulary would.
    const synonyms = new Map<string, string>();
    for (const [concept, [, ...phrases]] of Object.entries(defaultComplaintConcepts)) {
      for (const phrase of phrases) {
        const normalized = normalizeComplaintPhrase(phrase);
        if (normalized && !synonyms.has(normalized)) synonyms.set(normalized, concept);
      }
    }
    const rows = [...synonyms].map(([phrase, concept]) => ({ phrase, concept, created_by: 'seed' }));
    await trx.insertInto('complaint_synonym').values(rows).onConflict((oc) => oc.column('phrase').doNothing()).execute();
    return rows.length;
  });
}

/** Normalized phrase → concept, as `conceptsForComplaint` takes it. */
export async function loadComplaintVocabulary(db: Kysely<Database> | Transaction<Database>): Promise<ComplaintVocabulary> {
  const rows = await db.selectFrom('complaint_synonym').select(['phrase', 'concept']).orderBy('phrase').execute();
  return new Map(rows.map((row) => [row.phrase, row.concept]));
}

/** Every concept with its display name and phrases, by concept id. */
export async function listComplaintConcepts(db: Kysely<Database>): Promise<ComplaintConceptWithSynonyms[]> {
  const rows = await db
    .selectFrom('complaint_concept as concept')
    .leftJoin('complaint_synonym as synonym', 'synonym.concept', 'concept.concept')
    .select(['concept.concept', 'concept.display', 'synonym.phrase'])
    .orderBy('concept.concept')
    .orderBy('synonym.phrase')
    .execute();
  const concepts = new Map<string, { concept: string; display: string; phrases: string[] }>();
  for (const row of rows) {
    let entry = concepts.get(row.concept);
    if (!entry) {
      entry = { concept: row.concept, display: row.display, phrases: [] };
      concepts.set(row.concept, entry);
    }
    if (row.phrase !== null) entry.phrases.push(row.phrase);
  }
  return [...concepts.values()];
}

/** Maps a phrase (normalized first) to a concept, replacing any earlier mapping of that phrase. */
export async function saveComplaintSynonym(
  db: Kysely<Database> | Transaction<Database>,
  phrase: string,
  concept: string,
  createdBy: string,
): Promise<SavedComplaintSynonym> {
  const normalized = normalizeComplaintPhrase(phrase);
  if (normalized.length === 0) throw new AppError(422, 'invalid_phrase', 'the phrase has no letters or digits');
  const known = await db.selectFrom('complaint_concept').select('concept').where('concept', '=', concept).executeTakeFirst();
  if (!known) throw new AppError(422, 'unknown_concept', `no complaint concept "${concept}"`);
  await db
    .insertInto('complaint_synonym')
    .values({ phrase: normalized, concept, created_by: createdBy })
    .onConflict((oc) => oc.column('phrase').doUpdateSet({ concept, created_by: createdBy }))
    .execute();
  return { phrase: normalized, concept, createdBy };
}
