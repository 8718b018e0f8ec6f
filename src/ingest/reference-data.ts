import type { Kysely } from 'kysely';
import { loadCodeTables, type CodeTableLoad } from '../db/code-table.repository.js';
import { seedComplaintVocabulary } from '../db/complaint.repository.js';
import type { Database } from '../db/database.js';
import { codeTablesDirectory } from '../paths.js';

export interface ReferenceDataLoad extends CodeTableLoad {
  readonly complaintPhrases: number;
}

/** Seeds the complaint vocabulary and loads the bundled code tables where the tables are still empty. */
export async function ensureReferenceData(db: Kysely<Database>, directory: string = codeTablesDirectory): Promise<ReferenceDataLoad> {
  const complaintPhrases = await seedComplaintVocabulary(db);
  const codeTables = await loadCodeTables(db, directory);
  return { complaintPhrases, ...codeTables };
}
