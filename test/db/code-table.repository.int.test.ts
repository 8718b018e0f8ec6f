import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadCodeTables, loadIcd9ToIcd10Map, searchIcd10Codes } from '../../src/db/code-table.repository.js';
import { icd10CodesFromCodings } from '../../src/fhir/icd.js';
import { codeTablesDirectory } from '../../src/paths.js';
import { openTestDatabase } from '../helpers/database.js';

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
