import { describe, expect, it } from '@jest/globals';
import { SplitError, splitEncounters } from '../../src/evaluate/split.js';
import { makeEncounter, makeSyntheticCohort } from './fixtures.js';

describe('splitEncounters', () => {
  const cohort = makeSyntheticCohort();

  it('patient split: held-out patients have no encounter in the training set', () => {
    const split = splitEncounters(cohort, { split: 'patient', holdout: 0.2, seed: 1 });
    const heldOutPatients = new Set(split.heldOut.map((encounter) => encounter.patientKey));
    expect(split.training.some((encounter) => heldOutPatients.has(encounter.patientKey))).toBe(false);
    expect(split.training.length + split.heldOut.length).toBe(cohort.length);
    expect(split.heldOut.length).toBeGreaterThanOrEqual(0.2 * cohort.length);
    // Whole patients: stops at the first patient that reaches the share.
    expect(split.heldOut.length).toBeLessThan(0.2 * cohort.length + 6);
    expect(split.cutoffYear).toBeNull();
  });

  it('patient split: the same seed gives the same split whatever the input order; another seed another one', () => {
    const first = splitEncounters(cohort, { split: 'patient', holdout: 0.2, seed: 1 });
    const reversed = splitEncounters([...cohort].reverse(), { split: 'patient', holdout: 0.2, seed: 1 });
    const other = splitEncounters(cohort, { split: 'patient', holdout: 0.2, seed: 2 });
    const keys = (encounters: readonly { encounterKey: string }[]) => encounters.map((encounter) => encounter.encounterKey).sort();
    expect(keys(reversed.heldOut)).toEqual(keys(first.heldOut));
    expect(keys(other.heldOut)).not.toEqual(keys(first.heldOut));
  });

  it('temporal split: whole years, every training encounter strictly earlier than every held-out one', () => {
    const split = splitEncounters(cohort, { split: 'temporal', holdout: 0.2, seed: 1 });
    const newestTraining = Math.max(...split.training.map((encounter) => encounter.startYear));
    const oldestHeldOut = Math.min(...split.heldOut.map((encounter) => encounter.startYear));
    expect(newestTraining).toBeLessThan(oldestHeldOut);
    expect(split.cutoffYear).toBe(oldestHeldOut);
    // 25 encounters a year: the last three years (75) are the first to reach 60.
    expect(split.heldOut).toHaveLength(75);
    expect(split.description).toContain('2109 or later');
  });

  it('temporal split: a year is never split, even when that overshoots the share', () => {
    const encounters = [
      ...Array.from({ length: 8 }, (_, index) => makeEncounter({ encounterKey: `old${index}`, startYear: 2100 })),
      ...Array.from({ length: 5 }, (_, index) => makeEncounter({ encounterKey: `new${index}`, startYear: 2101 })),
    ];
    const split = splitEncounters(encounters, { split: 'temporal', holdout: 0.1, seed: 1 });
    expect(split.heldOut.map((encounter) => encounter.startYear)).toEqual([2101, 2101, 2101, 2101, 2101]);
    expect(split.training).toHaveLength(8);
  });

  it('refuses what cannot be split', () => {
    const oneYear = [makeEncounter({ encounterKey: 'a' }), makeEncounter({ encounterKey: 'b' })];
    expect(() => splitEncounters(oneYear, { split: 'temporal', holdout: 0.2, seed: 1 })).toThrow(SplitError);
    const onePatient = oneYear.map((encounter) => ({ ...encounter, patientKey: 'same' }));
    expect(() => splitEncounters(onePatient, { split: 'patient', holdout: 0.2, seed: 1 })).toThrow(SplitError);
    // A training set is always left, however large the share.
    const split = splitEncounters(oneYear, { split: 'patient', holdout: 0.99, seed: 1 });
    expect(split.training).toHaveLength(1);
  });
});
