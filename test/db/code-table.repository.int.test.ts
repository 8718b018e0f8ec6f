import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Kysely } from 'kysely';
import { listIcd10DescriptionWords, loadCodeTables, loadIcd9ToIcd10Map, searchIcd10Codes } from '../../src/db/code-table.repository.js';
import type { Database } from '../../src/db/database.js';
import { createMigrator } from '../../src/db/migrate.js';
import { icd10CodesFromCodings } from '../../src/fhir/icd.js';
import { codeTablesDirectory } from '../../src/paths.js';
import { openTestDatabase } from '../helpers/database.js';
import { openReferenceDatabase } from '../helpers/test-templates.js';

/** The words of every description, split here in JavaScript: what the stored word list must hold. */
async function wordsOfDescriptions(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('icd10_code').select(['short_description', 'long_description']).execute();
  const words = new Set<string>();
  for (const row of rows) {
    for (const word of `${row.long_description} ${row.short_description}`.toLowerCase().split(/[^a-z0-9]+/)) {
      if (word !== '' && !/^[0-9]+$/.test(word)) words.add(word);
    }
  }
  return [...words].sort();
}

describe('code tables', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database?.close();
  });

  it('loads the bundled ICD-10-CM codes and GEMs into empty tables, and only then', async () => {
    const first = await loadCodeTables(database.db, codeTablesDirectory);
    // 25,342 GEM rows less the 433 "no map" rows.
    expect(first).toEqual({ icd10Codes: 95358, icd9ToIcd10Mappings: 24909 });
    await expect(loadCodeTables(database.db, codeTablesDirectory)).resolves.toEqual({ icd10Codes: 0, icd9ToIcd10Mappings: 0 });
    const chestPain = await database.db.selectFrom('icd10_code').selectAll().where('code', '=', 'R079').executeTakeFirstOrThrow();
    expect(chestPain).toEqual({ code: 'R079', billable: true, short_description: 'Chest pain, unspecified', long_description: 'Chest pain, unspecified' });
  });

  it('keeps the words of the descriptions, numbers left out, for the ingest to read', async () => {
    const words = await listIcd10DescriptionWords(database.db);
    expect([...words].sort()).toEqual(await wordsOfDescriptions(database.db));
    expect(words.has('chest')).toBe(true);
    expect(words.has('2')).toBe(false);
    expect(words.size).toBeGreaterThan(5000);
  });

  it('gives the ICD-9 → ICD-10 map that the ingest and the hooks use', async () => {
    const map = await loadIcd9ToIcd10Map(database.db);
    expect(map.get('78650')).toEqual(['R079']);
    expect(map.get('4019')).toEqual(['I10', 'I169']);
    expect(map.has('36570')).toBe(false);
    const codes = icd10CodesFromCodings([{ system: 'http://hl7.org/fhir/sid/icd-9-cm', code: '786.50' }], map);
    expect(codes).toEqual(['R079']);
  });

  it('searches by code prefix, with or without the dot, and by words', async () => {
    const byCode = await searchIcd10Codes(database.db, 'r07.8', 10);
    expect(byCode.map((row) => row.code)).toEqual(['R078', 'R0781', 'R0782', 'R0789']);
    const byWords = await searchIcd10Codes(database.db, 'chest pain', 5);
    expect(byWords.map((row) => row.code)).toContain('R079');
    expect(byWords.length).toBeLessThanOrEqual(5);
    await expect(searchIcd10Codes(database.db, '   ', 5)).resolves.toEqual([]);
    await expect(searchIcd10Codes(database.db, '100%_', 5)).resolves.toEqual([]);
  });
});

describe('migration 20261202T0004 (ICD-10 description words)', () => {
  it('fills the word table from codes loaded before it, and goes down cleanly', async () => {
    const database = await openReferenceDatabase();
    try {
      const migrator = createMigrator(database.db);
      const expected = await wordsOfDescriptions(database.db);
      expect(expected.length).toBeGreaterThan(5000);
      const down = await migrator.migrateTo('20261202T0003_lab_draw_per_specimen');
      expect(down.error).toBeUndefined();
      expect(down.results?.map((result) => result.migrationName)).toContain('20261202T0004_icd10_description_words');
      await expect(listIcd10DescriptionWords(database.db)).rejects.toThrow(/icd10_description_word/);
      const up = await migrator.migrateToLatest();
      expect(up.error).toBeUndefined();
      expect([...(await listIcd10DescriptionWords(database.db))].sort()).toEqual(expected);
    } finally {
      await database.close();
    }
  });
});
