/**
 * A minimal RFC 4180 reader for the code tables: quoted fields may hold commas, doubled quotes and line
 * breaks. No CSV package is installed and these files need nothing more.
 */

/** Splits one complete record into fields; null when a quoted field is still open at the end of the text. */
export function parseCsvRecord(text: string): string[] | null {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  let index = 0;
  while (index < text.length) {
    const character = text[index];
    if (quoted) {
      if (character === '"') {
        if (text[index + 1] === '"') {
          field += '"';
          index += 1;
        } else {
          quoted = false;
        }
      } else {
        field += character;
      }
    } else if (character === '"' && field.length === 0) {
      quoted = true;
    } else if (character === ',') {
      fields.push(field);
      field = '';
    } else if (character !== '\r' || index !== text.length - 1) {
      field += character;
    }
    index += 1;
  }
  if (quoted) return null;
  fields.push(field);
  return fields;
}

/** Records from lines, joining lines while a quoted field spans them. */
export async function* readCsvRecords(lines: AsyncIterable<string>): AsyncGenerator<string[]> {
  let pending: string | null = null;
  for await (const line of lines) {
    const text: string = pending === null ? line : `${pending}\n${line}`;
    const record = parseCsvRecord(text);
    if (record === null) {
      pending = text;
      continue;
    }
    pending = null;
    if (text.length > 0) yield record;
  }
  if (pending !== null) throw new Error('CSV ends inside a quoted field');
}
