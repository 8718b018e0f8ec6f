import { describe, expect, it } from '@jest/globals';
import {
  conceptsForComplaint,
  defaultComplaintConcepts,
  normalizeComplaintPhrase,
  primaryConcept,
} from '../../src/cohort/complaint.js';

const vocabulary = new Map<string, string>();
for (const [concept, [, ...phrases]] of Object.entries(defaultComplaintConcepts)) {
  for (const phrase of phrases) vocabulary.set(normalizeComplaintPhrase(phrase), concept);
}

describe('chief complaint normalization', () => {
  it.each(['abd pain', 'Abdominal pain', 'ABD PN', '  abd   pain.', 'RLQ abdominal pain', 'Right sided abdominal pain'])(
    '%s is abdominal pain',
    (text) => {
      expect(primaryConcept(conceptsForComplaint(text, vocabulary).concepts)).toBe('abdominal-pain');
    },
  );

  it('puts a transfer after the clinical concept', () => {
    const result = conceptsForComplaint('Transfer, chest pain', vocabulary);
    expect(result.concepts).toEqual(['chest-pain', 'transfer']);
    expect(primaryConcept(result.concepts)).toBe('chest-pain');
  });

  it('strips laterality and status-post prefixes', () => {
    expect(conceptsForComplaint('L Leg pain, s/p Fall', vocabulary).concepts).toEqual(['limb-pain', 'fall']);
    expect(conceptsForComplaint('R FOOT ULCER/CELLULITIS', vocabulary).concepts).toEqual(['skin-infection']);
  });

  it('reports what it could not map, and a transfer alone has no primary concept', () => {
    const result = conceptsForComplaint('Transfer, zygomatic whatsit', vocabulary);
    expect(result.unmapped).toEqual(['zygomatic whatsit']);
    expect(primaryConcept(result.concepts)).toBeNull();
  });

  it('ignores control characters and markup', () => {
    expect(conceptsForComplaint('chest\u0000 pain<script>', vocabulary).unmapped).toEqual(['chest pain script']);
    expect(conceptsForComplaint('chest\u0007pain', vocabulary).concepts).toEqual(['chest-pain']);
    expect(conceptsForComplaint(null, vocabulary)).toEqual({ concepts: [], unmapped: [] });
  });
});
