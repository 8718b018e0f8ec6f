import { describe, expect, it } from '@jest/globals';
import { parseCsvRecord, readCsvRecords } from '../../src/ingest/csv.js';

async function* linesOf(text: string): AsyncGenerator<string> {
  yield* text.split('\n');
}

describe('CSV', () => {
  it('splits quoted fields with commas and doubled quotes', () => {
    expect(parseCsvRecord('A000,1,"Cholera due to Vibrio cholerae 01, biovar cholerae","say ""hi"""')).toEqual([
      'A000',
      '1',
      'Cholera due to Vibrio cholerae 01, biovar cholerae',
      'say "hi"',
    ]);
    expect(parseCsvRecord('a,,b,')).toEqual(['a', '', 'b', '']);
    expect(parseCsvRecord('a,b\r')).toEqual(['a', 'b']);
  });

  it('joins lines while a quoted field is open', async () => {
    const records: string[][] = [];
    for await (const record of readCsvRecords(linesOf('code,text\nX1,"two\nlines"\nX2,plain'))) records.push(record);
    expect(records).toEqual([['code', 'text'], ['X1', 'two\nlines'], ['X2', 'plain']]);
  });

  it('fails on a quote that never closes', async () => {
    const read = async () => {
      for await (const record of readCsvRecords(linesOf('a,"open'))) void record;
    };
    await expect(read()).rejects.toThrow('quoted field');
  });
});
