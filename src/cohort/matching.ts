import { modifierConcepts, primaryConcept } from './complaint.js';
import type { AcuityMatch, RelaxationStep, Rules } from './rules.js';
import type { CohortCriteria, CohortSource, CohortStatistics, Icd10Level, Icd10Overlap, PatientFacts } from './types.js';

/** One rung of the relaxation ladder: the criteria and the steps applied to reach them. */
export interface CohortPlan {
  readonly criteria: CohortCriteria;
  readonly relaxation: readonly RelaxationStep[];
}

/** The cohort chosen for a patient, with how it was reached. */
export interface CohortSelection {
  readonly plan: CohortPlan;
  readonly statistics: CohortStatistics;
  /** Cohort sizes of every rung tried, strictest first. */
  readonly sizesTried: readonly number[];
}

export type NoCohortReason = 'nothing-to-match' | 'cohort-too-small';

export type CohortOutcome =
  | { readonly kind: 'selected'; readonly selection: CohortSelection }
  | { readonly kind: 'none'; readonly reason: NoCohortReason; readonly sizesTried: readonly number[] };

/** What the caller knows beyond the patient's facts. */
export interface MatchingOptions {
  /**
   * The year a look-back window counts back from, on the cohort's (de-identified, shifted) scale: a backtest
   * passes the held-out encounter's start year. Absent: the newest start year on record.
   */
  readonly referenceYear?: number;
}

function ageRange(age: number | null, window: number): Pick<CohortCriteria, 'ageMin' | 'ageMax'> {
  if (age === null) return { ageMin: null, ageMax: null };
  return { ageMin: Math.max(0, age - window), ageMax: age + window };
}

const lowestAcuity = 1;
const highestAcuity = 5;

function acuityRange(acuity: number | null, match: AcuityMatch): CohortCriteria['acuity'] {
  // Applied only when the EHR sent an acuity: without one there is nothing to compare.
  if (acuity === null || match === 'ignore') return null;
  const spread = match === 'within-1' ? 1 : 0;
  return { min: Math.max(lowestAcuity, acuity - spread), max: Math.min(highestAcuity, acuity + spread) };
}

function icd10Overlap(rules: Rules): Icd10Overlap {
  return rules.icd10Overlap === 'jaccard' ? { measure: 'jaccard', atLeast: rules.icd10MinJaccard } : { measure: rules.icd10Overlap };
}

/** The strictest criteria for these facts under these rules. */
export function strictestCriteria(facts: PatientFacts, rules: Rules, options: MatchingOptions = {}): CohortCriteria {
  const sex = rules.matchSex && (facts.sex === 'female' || facts.sex === 'male') ? facts.sex : null;
  const complaintConcept = primaryConcept(facts.complaintConcepts);
  const otherComplaintConcepts =
    rules.complaintMatch === 'any'
      ? [...new Set(facts.complaintConcepts.filter((concept) => concept !== complaintConcept && !modifierConcepts.has(concept)))]
      : [];
  return {
    sex,
    ...ageRange(facts.ageYears, rules.ageWindowYears),
    acuity: acuityRange(facts.acuity, rules.acuityMatch),
    complaintConcept,
    otherComplaintConcepts,
    icd10:
      facts.icd10Codes.length > 0 ? { level: rules.icd10Level, codes: [...facts.icd10Codes], overlap: icd10Overlap(rules) } : null,
    sites: rules.sites === null ? null : [...rules.sites],
    lookback: rules.lookbackYears === null ? null : { years: rules.lookbackYears, referenceYear: options.referenceYear ?? null },
  };
}

function relax(criteria: CohortCriteria, step: RelaxationStep, facts: PatientFacts, rules: Rules): CohortCriteria | null {
  switch (step) {
    case 'icd10-category':
      return criteria.icd10?.level === 'full' ? { ...criteria, icd10: { ...criteria.icd10, level: 'category' } } : null;
    case 'ignore-icd10':
      return criteria.icd10 !== null ? { ...criteria, icd10: null } : null;
    case 'widen-age':
      return facts.ageYears !== null && rules.widenedAgeWindowYears > rules.ageWindowYears
        ? { ...criteria, ...ageRange(facts.ageYears, rules.widenedAgeWindowYears) }
        : null;
    case 'ignore-sex':
      return criteria.sex !== null ? { ...criteria, sex: null } : null;
    case 'ignore-acuity':
      return criteria.acuity !== null ? { ...criteria, acuity: null } : null;
  }
}

/**
 * The relaxation ladder: the strictest criteria, then one rung per declared step that changes something.
 * Steps are cumulative, in the order the rules declare; a step with nothing to relax adds no rung.
 */
export function buildCohortLadder(facts: PatientFacts, rules: Rules, options: MatchingOptions = {}): CohortPlan[] {
  const ladder: CohortPlan[] = [{ criteria: strictestCriteria(facts, rules, options), relaxation: [] }];
  for (const step of rules.relaxationOrder) {
    const previous = ladder[ladder.length - 1]!;
    const relaxed = relax(previous.criteria, step, facts, rules);
    if (relaxed !== null) ladder.push({ criteria: relaxed, relaxation: [...previous.relaxation, step] });
  }
  return ladder;
}

/** Finds the strictest rung that reaches the minimum cohort size and describes that cohort. */
export async function selectCohort(
  source: CohortSource,
  facts: PatientFacts,
  rules: Rules,
  options: MatchingOptions = {},
): Promise<CohortOutcome> {
  const strictest = strictestCriteria(facts, rules, options);
  // Age and sex alone would make every patient "similar": a complaint or a diagnosis is required.
  if (strictest.complaintConcept === null && strictest.icd10 === null) {
    return { kind: 'none', reason: 'nothing-to-match', sizesTried: [] };
  }
  const ladder = buildCohortLadder(facts, rules, options);
  const sizes = await source.countCohorts(ladder.map((plan) => plan.criteria));
  const index = sizes.findIndex((size) => size >= rules.minCohortSize);
  if (index < 0) return { kind: 'none', reason: 'cohort-too-small', sizesTried: sizes };
  const plan = ladder[index]!;
  const statistics =
    rules.itemWeighting === 'none'
      ? await source.describeCohort(plan.criteria)
      : await source.describeCohort(plan.criteria, { itemWeighting: rules.itemWeighting });
  return { kind: 'selected', selection: { plan, statistics, sizesTried: sizes.slice(0, index + 1) } };
}

/** A prior encounter as matching sees it (the cohort_encounter columns that criteria test). */
export interface MatchableEncounter {
  readonly sex: string;
  readonly ageYears: number;
  /** ESI 1–5; null when triage recorded none. */
  readonly acuity: number | null;
  /** Concepts of the encounter's complaint, primary first. */
  readonly complaintConcepts: readonly string[];
  readonly icd10Codes: readonly string[];
  readonly site: string;
  /** The year the visit started, de-identified (shifted) as stored. */
  readonly startYear: number;
}

/** The newest start year among these encounters: what a look-back window without a reference year counts from. */
export function newestStartYear(encounters: readonly Pick<MatchableEncounter, 'startYear'>[]): number | null {
  return encounters.reduce<number | null>((newest, encounter) => (newest === null || encounter.startYear > newest ? encounter.startYear : newest), null);
}

function codeSet(codes: readonly string[], level: Icd10Level): Set<string> {
  return new Set(codes.map((code) => (level === 'category' ? code.slice(0, 3) : code)));
}

function overlaps(own: ReadonlySet<string>, wanted: ReadonlySet<string>, overlap: Icd10Overlap): boolean {
  const shared = [...wanted].filter((code) => own.has(code)).length;
  switch (overlap.measure) {
    case 'any':
      return shared > 0;
    case 'all':
      return shared === wanted.size;
    case 'jaccard':
      // Both sides divide two integers in IEEE double precision, so the SQL source agrees to the last bit.
      return shared > 0 && shared / (own.size + wanted.size - shared) >= overlap.atLeast;
  }
}

/**
 * Whether an encounter belongs to the cohort: the reference semantics of the SQL. `newestYear` is the newest
 * start year among all the encounters considered (null: none), needed only by a look-back window without a
 * reference year; `filterCohort` works it out.
 */
export function matchesCriteria(encounter: MatchableEncounter, criteria: CohortCriteria, newestYear?: number | null): boolean {
  if (criteria.sex !== null && encounter.sex !== criteria.sex) return false;
  if (criteria.ageMin !== null && encounter.ageYears < criteria.ageMin) return false;
  if (criteria.ageMax !== null && encounter.ageYears > criteria.ageMax) return false;
  if (criteria.acuity !== null) {
    if (encounter.acuity === null || encounter.acuity < criteria.acuity.min || encounter.acuity > criteria.acuity.max) return false;
  }
  if (criteria.complaintConcept !== null) {
    const wanted = [criteria.complaintConcept, ...criteria.otherComplaintConcepts];
    if (!wanted.some((concept) => encounter.complaintConcepts.includes(concept))) return false;
  }
  if (criteria.icd10 !== null) {
    const { level, codes, overlap } = criteria.icd10;
    if (!overlaps(codeSet(encounter.icd10Codes, level), codeSet(codes, level), overlap)) return false;
  }
  if (criteria.sites !== null && !criteria.sites.includes(encounter.site)) return false;
  if (criteria.lookback !== null) {
    const { years, referenceYear } = criteria.lookback;
    if (referenceYear === null && newestYear === undefined) {
      throw new RangeError('a look-back window without a reference year needs the newest start year (use filterCohort)');
    }
    const reference = referenceYear ?? newestYear ?? null;
    if (reference === null || encounter.startYear <= reference - years) return false;
  }
  return true;
}

/** The encounters of a cohort, from all the encounters on record. */
export function filterCohort<T extends MatchableEncounter>(encounters: readonly T[], criteria: CohortCriteria): T[] {
  const newest = newestStartYear(encounters);
  return encounters.filter((encounter) => matchesCriteria(encounter, criteria, newest));
}
