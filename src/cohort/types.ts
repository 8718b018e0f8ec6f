/** Plain data shared by the matching engine, the card builders and their sources. No I/O here. */

export type Sex = 'female' | 'male' | 'other' | 'unknown';

/** An order already drafted in the EHR (order-select / order-sign `draftOrders`). */
export interface DraftOrder {
  readonly resourceType: string;
  /** `system|code` of each coding, and the lower-cased text or display. */
  readonly codes: readonly string[];
  readonly texts: readonly string[];
}

/** What the service knows about the patient in front of the clinician. */
export interface PatientFacts {
  readonly ageYears: number | null;
  readonly sex: Sex | null;
  readonly chiefComplaintText: string | null;
  /** Normalized complaint concepts, primary first. */
  readonly complaintConcepts: readonly string[];
  /** ICD-10-CM codes without dots, upper case (ICD-9 already mapped). */
  readonly icd10Codes: readonly string[];
  /** ESI triage acuity 1–5 when the EHR sends it. */
  readonly acuity: number | null;
  readonly draftOrders: readonly DraftOrder[];
}

export type Icd10Level = 'full' | 'category';

/**
 * How the patient's ICD-10 set (codes or categories, as `level` says) must overlap a prior encounter's set:
 * at least one in common, all of the patient's, or a Jaccard index |A ∩ B| / |A ∪ B| of at least `atLeast`.
 */
export type Icd10Overlap =
  | { readonly measure: 'any' }
  | { readonly measure: 'all' }
  | { readonly measure: 'jaccard'; readonly atLeast: number };

/** Which prior encounters count as "similar". A null field is not constrained. */
export interface CohortCriteria {
  readonly sex: Sex | null;
  readonly ageMin: number | null;
  readonly ageMax: number | null;
  /** ESI range, both ends included; an encounter without a recorded acuity is outside any range. */
  readonly acuity: { readonly min: number; readonly max: number } | null;
  /** The patient's primary complaint concept. */
  readonly complaintConcept: string | null;
  /**
   * Further concepts of the patient, any of which qualifies an encounter as well (rules `complaintMatch: 'any'`);
   * empty under `'primary'`, and only ever set beside a primary concept.
   */
  readonly otherComplaintConcepts: readonly string[];
  readonly icd10: { readonly level: Icd10Level; readonly codes: readonly string[]; readonly overlap: Icd10Overlap } | null;
  /** cohort_encounter.site values to include. */
  readonly sites: readonly string[] | null;
  /**
   * Encounters that started in the last `years` calendar years, the reference year included: start_year >
   * referenceYear − years. A lower bound only: leaving out encounters after the reference year (a temporal
   * backtest) is the caller's business. A null referenceYear is the newest start_year among all the source's
   * encounters (every site), so the live service counts back from its newest data, whatever today's date.
   */
  readonly lookback: { readonly years: number; readonly referenceYear: number | null } | null;
}

export type ItemCategory = 'workup' | 'treatment';

/** How many encounters of a cohort received one item (a lab panel, an imaging study, a medication ingredient). */
export interface ItemCount {
  readonly itemCode: string;
  readonly category: ItemCategory;
  readonly kind: string;
  readonly display: string;
  /** The coding a suggestion orders it by; null when the source had none. */
  readonly codeSystem: string | null;
  readonly code: string | null;
  readonly encounters: number;
  /**
   * With `itemWeighting: 'clinician-reputation'` only: the sum over those encounters of the reputation weight of
   * the clinician who ordered the item there (1 when none is known; docs/reputation.md). Ranks, never shown.
   */
  readonly weightedEncounters?: number;
}

/** How a cohort's item counts are weighted (rules `itemWeighting`). */
export type ItemWeighting = 'none' | 'clinician-reputation';

export interface DescribeCohortOptions {
  /** `clinician-reputation` adds `weightedEncounters` to each item; absent or `none`: plain counts. */
  readonly itemWeighting?: ItemWeighting;
}

export interface OutcomeStatistics {
  readonly admitted: number;
  readonly returned72h: number;
  readonly edLosMedianMinutes: number | null;
  /** How many encounters have an ED length of stay (the median's base). */
  readonly edLosKnown: number;
  /** Median hospital length of stay over the admitted encounters that have one. */
  readonly hospitalLosMedianMinutes: number | null;
  readonly hospitalLosKnown: number;
}

export interface CohortStatistics {
  readonly size: number;
  readonly items: readonly ItemCount[];
  readonly outcomes: OutcomeStatistics;
}

/** Item shares across every encounter, for lift against the cohort. */
export interface BaselineStatistics {
  readonly size: number;
  /** item code → number of encounters that received it. */
  readonly items: ReadonlyMap<string, number>;
}

/** Where the engine gets its numbers: SQL, a cache, or an array in a test. */
export interface CohortSource {
  /** Cohort sizes for each criteria, in order. */
  countCohorts(criteria: readonly CohortCriteria[]): Promise<number[]>;
  describeCohort(criteria: CohortCriteria, options?: DescribeCohortOptions): Promise<CohortStatistics>;
  describeBaseline(): Promise<BaselineStatistics>;
}
