/**
 * Which encounters a backtest holds out and which it learns from. Pure: the seed makes it repeatable.
 */
import { derivedSeed, seededRandom, shuffled } from './random.js';

/** What a split needs of an encounter. */
export interface SplittableEncounter {
  readonly encounterKey: string;
  readonly patientKey: string;
  readonly startYear: number;
}

export interface EncounterSplit<T extends SplittableEncounter> {
  /** What the rules and the baselines learn from: every held-out encounter's cohort is drawn from these only. */
  readonly training: readonly T[];
  readonly heldOut: readonly T[];
  /** Temporal split: the first held-out year (every training encounter started before it); else null. */
  readonly cutoffYear: number | null;
  readonly description: string;
}

export interface SplitOptions {
  readonly split: 'patient' | 'temporal';
  readonly holdout: number;
  readonly seed: number;
}

export class SplitError extends Error {
  override name = 'SplitError';
}

function countPatients(encounters: readonly SplittableEncounter[]): number {
  return new Set(encounters.map((encounter) => encounter.patientKey)).size;
}

/**
 * Patient split: patients in a seeded random order are held out, all their encounters with them, until at
 * least `holdout` of the encounters are; the training set is every encounter of every other patient, so no
 * held-out patient's other visits can be in any cohort.
 */
function splitByPatient<T extends SplittableEncounter>(encounters: readonly T[], options: SplitOptions): EncounterSplit<T> {
  const byPatient = new Map<string, T[]>();
  for (const encounter of encounters) {
    const list = byPatient.get(encounter.patientKey) ?? [];
    list.push(encounter);
    byPatient.set(encounter.patientKey, list);
  }
  if (byPatient.size < 2) throw new SplitError('a patient split needs encounters of at least two patients');
  const target = Math.max(1, Math.ceil(options.holdout * encounters.length));
  // Sorted first, so that the order the encounters came in does not change the split.
  const order = shuffled([...byPatient.keys()].sort(), seededRandom(derivedSeed(options.seed, 'split')));
  const heldOutPatients = new Set<string>();
  let heldOutCount = 0;
  for (const patient of order) {
    if (heldOutCount >= target || heldOutPatients.size === byPatient.size - 1) break;
    heldOutPatients.add(patient);
    heldOutCount += byPatient.get(patient)!.length;
  }
  const heldOut = encounters.filter((encounter) => heldOutPatients.has(encounter.patientKey));
  const training = encounters.filter((encounter) => !heldOutPatients.has(encounter.patientKey));
  return {
    training,
    heldOut,
    cutoffYear: null,
    description:
      `${heldOutPatients.size} patients held out at random (seed ${options.seed}) with all ${heldOut.length} of their encounters; ` +
      `cohorts are drawn from the ${training.length} encounters of the other ${countPatients(training)} patients.`,
  };
}

/**
 * Temporal split: the latest start years are held out, whole years at a time, until at least `holdout` of the
 * encounters are; the training set is every encounter of an earlier year. start_year is the only time kept
 * (de-identified, year only), so encounters of the same year cannot be ordered: a year is never split, and
 * no encounter learns from another of its own year. A held-out patient's encounters of earlier years are in
 * the training set, as they would be in the EHR's history.
 */
function splitByTime<T extends SplittableEncounter>(encounters: readonly T[], options: SplitOptions): EncounterSplit<T> {
  const years = [...new Set(encounters.map((encounter) => encounter.startYear))].sort((a, b) => b - a);
  if (years.length < 2) throw new SplitError('a temporal split needs encounters of at least two start years');
  const target = Math.max(1, Math.ceil(options.holdout * encounters.length));
  let cutoffYear = years[0]!;
  let heldOutCount = 0;
  for (const year of years.slice(0, -1)) {
    cutoffYear = year;
    heldOutCount += encounters.filter((encounter) => encounter.startYear === year).length;
    if (heldOutCount >= target) break;
  }
  const heldOut = encounters.filter((encounter) => encounter.startYear >= cutoffYear);
  const training = encounters.filter((encounter) => encounter.startYear < cutoffYear);
  return {
    training,
    heldOut,
    cutoffYear,
    description:
      `the ${heldOut.length} encounters that started in ${cutoffYear} or later are held out; cohorts are drawn from the ` +
      `${training.length} encounters that started before ${cutoffYear} (start years only: a year is never split).`,
  };
}

/** Splits encounters into a training set and held-out encounters as the options say. */
export function splitEncounters<T extends SplittableEncounter>(encounters: readonly T[], options: SplitOptions): EncounterSplit<T> {
  if (encounters.length < 2) throw new SplitError('a backtest needs at least two encounters');
  return options.split === 'patient' ? splitByPatient(encounters, options) : splitByTime(encounters, options);
}
