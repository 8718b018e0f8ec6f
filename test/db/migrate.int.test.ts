import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { migrateToLatest } from '../../src/db/migrate.js';
import { openTestDatabase } from '../helpers/database.js';

describe('migrations', () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(async () => {
    await database.close();
  });

  it('creates every table, and a second run applies nothing', async () => {
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name`.execute(database.db);
    const names = tables.rows.map((row) => row.table_name);
    expect(names).toEqual(expect.arrayContaining(['cohort_encounter', 'encounter_item', 'rule_set', 'feedback', 'issued_card']));
    const again = await migrateToLatest(database.db);
    expect(again.results).toEqual([]);
  });

  it('allows one active rule set only', async () => {
    const row = { status: 'active' as const, rules: '{}', created_by: 'test' };
    await database.db.insertInto('rule_set').values({ ...row, version: 1 }).execute();
    await expect(database.db.insertInto('rule_set').values({ ...row, version: 2 }).execute()).rejects.toThrow();
  });
});
