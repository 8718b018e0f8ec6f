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

/** Which prior encounters count as "similar". A null field is not constrained. */
export interface CohortCriteria {
  readonly sex: Sex | null;
  readonly ageMin: number | null;
  readonly ageMax: number | null;
  readonly complaintConcept: string | null;
  readonly icd10: { readonly level: Icd10Level; readonly codes: readonly string[] } | null;
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
  describeCohort(criteria: CohortCriteria): Promise<CohortStatistics>;
  describeBaseline(): Promise<BaselineStatistics>;
}
