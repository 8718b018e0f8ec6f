import type { Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';
import { countMatchesInColumn, listStoredColumns } from '../../src/db/privacy-scan.repository.js';

export interface StoredTextScan {
  /** `table.column` of every column scanned: every column of every table of the schema, cast to text. */
  readonly columnsScanned: readonly string[];
  /** `table.column` of the columns where some row holds the text (case-insensitive), with how many rows. */
  readonly found: ReadonlyArray<{ readonly column: string; readonly rows: number }>;
}

/** Where `text` is stored: every column of every table in the current schema, whatever its type, cast to text. */
export async function findStoredText(db: Kysely<Database>, text: string): Promise<StoredTextScan> {
  const columns = await listStoredColumns(db);
  const found: { column: string; rows: number }[] = [];
  for (const column of columns) {
    const rows = (await countMatchesInColumn(db, column, [{ name: 'text', literal: text }])).get('text') ?? 0;
    if (rows > 0) found.push({ column: `${column.table}.${column.column}`, rows });
  }
  return { columnsScanned: columns.map((column) => `${column.table}.${column.column}`), found };
}
