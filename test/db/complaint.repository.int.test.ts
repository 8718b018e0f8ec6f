import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { conceptsForComplaint, defaultComplaintConcepts } from '../../src/cohort/complaint.js';
import {
  listComplaintConcepts,
  loadComplaintVocabulary,
  saveComplaintSynonym,
  seedComplaintVocabulary,
} from '../../src/db/complaint.repository.js';
import { AppError } from '../../src/errors.js';
import { openTestDatabase } from '../helpers/database.js';

describe('complaint vocabulary', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  it('seeds the default concepts once', async () => {
    const added = await seedComplaintVocabulary(database.db);
    expect(added).toBeGreaterThan(200);
    await expect(seedComplaintVocabulary(database.db)).resolves.toBe(0);
    const concepts = await listComplaintConcepts(database.db);
    expect(concepts.map((concept) => concept.concept).sort()).toEqual(Object.keys(defaultComplaintConcepts).sort());
    expect(concepts.find((concept) => concept.concept === 'chest-pain')).toEqual({
      concept: 'chest-pain',
      display: 'Chest pain',
      phrases: ['chest pain', 'chest pressure', 'chest tightness', 'cp', 'nstemi', 'stemi'],
    });
  });

  it('loads the vocabulary that conceptsForComplaint matches against', async () => {
    const vocabulary = await loadComplaintVocabulary(database.db);
    expect(conceptsForComplaint('Abd pain, N/V', vocabulary).concepts).toEqual(['abdominal-pain', 'nausea-vomiting']);
  });

  it('saves a synonym normalized, replacing an earlier mapping of the phrase', async () => {
    await expect(saveComplaintSynonym(database.db, '  Aortic DISSECTION?? ', 'chest-pain', 'dr-a')).resolves.toEqual({
      phrase: 'aortic dissection',
      concept: 'chest-pain',
      createdBy: 'dr-a',
    });
    await saveComplaintSynonym(database.db, 'aortic dissection', 'back-pain', 'dr-b');
    const vocabulary = await loadComplaintVocabulary(database.db);
    expect(vocabulary.get('aortic dissection')).toBe('back-pain');
    const row = await database.db.selectFrom('complaint_synonym').selectAll().where('phrase', '=', 'aortic dissection').executeTakeFirstOrThrow();
    expect(row.created_by).toBe('dr-b');
  });

  it('refuses an unknown concept or an empty phrase', async () => {
    await expect(saveComplaintSynonym(database.db, 'itchy', 'no-such-concept', 'dr-a')).rejects.toBeInstanceOf(AppError);
    await expect(saveComplaintSynonym(database.db, '???', 'rash', 'dr-a')).rejects.toMatchObject({ statusCode: 422, code: 'invalid_phrase' });
  });
});
