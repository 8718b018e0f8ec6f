import { primaryConcept } from './complaint.js';
import type { RelaxationStep, Rules } from './rules.js';
import type { CohortCriteria, CohortSource, CohortStatistics, PatientFacts } from './types.js';

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

function ageRange(age: number | null, window: number): Pick<CohortCriteria, 'ageMin' | 'ageMax'> {
  if (age === null) return { ageMin: null, ageMax: null };
  return { ageMin: Math.max(0, age - window), ageMax: age + window };
}

/** The strictest criteria for these facts under these rules. */
export function strictestCriteria(facts: PatientFacts, rules: Rules): CohortCriteria {
  const sex = rules.matchSex && (facts.sex === 'female' || facts.sex === 'male') ? facts.sex : null;
  return {
    sex,
    ...ageRange(facts.ageYears, rules.ageWindowYears),
    complaintConcept: primaryConcept(facts.complaintConcepts),
    icd10: facts.icd10Codes.length > 0 ? { level: rules.icd10Level, codes: [...facts.icd10Codes] } : null,
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
  }
}

/**
 * The relaxation ladder: the strictest criteria, then one rung per declared step that changes something.
 * Steps are cumulative, in the order the rules declare; a step with nothing to relax adds no rung.
 */
export function buildCohortLadder(facts: PatientFacts, rules: Rules): CohortPlan[] {
  const ladder: CohortPlan[] = [{ criteria: strictestCriteria(facts, rules), relaxation: [] }];
  for (const step of rules.relaxationOrder) {
    const previous = ladder[ladder.length - 1]!;
    const relaxed = relax(previous.criteria, step, facts, rules);
    if (relaxed !== null) ladder.push({ criteria: relaxed, relaxation: [...previous.relaxation, step] });
  }
  return ladder;
}

/** Finds the strictest rung that reaches the minimum cohort size and describes that cohort. */
export async function selectCohort(source: CohortSource, facts: PatientFacts, rules: Rules): Promise<CohortOutcome> {
  const strictest = strictestCriteria(facts, rules);
  // Age and sex alone would make every patient "similar": a complaint or a diagnosis is required.
  if (strictest.complaintConcept === null && strictest.icd10 === null) {
    return { kind: 'none', reason: 'nothing-to-match', sizesTried: [] };
  }
  const ladder = buildCohortLadder(facts, rules);
  const sizes = await source.countCohorts(ladder.map((plan) => plan.criteria));
  const index = sizes.findIndex((size) => size >= rules.minCohortSize);
  if (index < 0) return { kind: 'none', reason: 'cohort-too-small', sizesTried: sizes };
  const plan = ladder[index]!;
  const statistics = await source.describeCohort(plan.criteria);
  return { kind: 'selected', selection: { plan, statistics, sizesTried: sizes.slice(0, index + 1) } };
}

/** Whether an encounter with these attributes belongs to the cohort: the reference semantics of the SQL. */
export function matchesCriteria(
  encounter: {
    readonly sex: string;
    readonly ageYears: number;
    readonly complaintConcepts: readonly string[];
    readonly icd10Codes: readonly string[];
  },
  criteria: CohortCriteria,
): boolean {
  if (criteria.sex !== null && encounter.sex !== criteria.sex) return false;
  if (criteria.ageMin !== null && encounter.ageYears < criteria.ageMin) return false;
  if (criteria.ageMax !== null && encounter.ageYears > criteria.ageMax) return false;
  if (criteria.complaintConcept !== null && !encounter.complaintConcepts.includes(criteria.complaintConcept)) return false;
  if (criteria.icd10 !== null) {
    const level = criteria.icd10.level;
    const wanted = new Set(criteria.icd10.codes.map((code) => (level === 'category' ? code.slice(0, 3) : code)));
    const own = encounter.icd10Codes.map((code) => (level === 'category' ? code.slice(0, 3) : code));
    if (!own.some((code) => wanted.has(code))) return false;
  }
  return true;
}
