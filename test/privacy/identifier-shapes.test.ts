import { describe, expect, it } from '@jest/globals';
import { removeIdentifierShapes } from '../../src/ingest/deidentify.js';
import { readMimic } from '../helpers/mimic.js';

describe('removeIdentifierShapes', () => {
  it('removes phone and fax numbers, e-mail, SSN, URLs, IP addresses, dates and record numbers from free text', () => {
    expect(
      removeIdentifierShapes(
        'chest pain since 2151-03-13, callback (413) 555-0199 or cp-family@example.net, ssn 078-05-1120, portal https://portal.example.org/p/zq-4127 10.20.30.40',
      ),
    ).toBe('chest pain since [removed], callback [removed] or [removed], ssn [removed], portal [removed] [removed]');
    expect(removeIdentifierShapes('fall on 3/14/51, MRN 99417723, call 413.555.0177 or +1 413 555 0142')).toBe(
      'fall on [removed], MRN [removed], call [removed] or [removed]',
    );
  });

  it('leaves the demo\'s triage complaints as they were', () => {
    const complaints = readMimic('MimicObservationED.ndjson.gz')
      .filter((observation) => JSON.stringify(observation.code).includes('"8661-1"'))
      .map((observation) => String(observation.valueString ?? ''));
    expect(complaints.length).toBeGreaterThan(200);
    expect(complaints.filter((text) => removeIdentifierShapes(text) !== text)).toEqual([]);
  });
});
