import { z } from 'zod';

/** The relaxation steps, each applied on top of the ones before it. */
export const relaxationSteps = ['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex'] as const;
export type RelaxationStep = (typeof relaxationSteps)[number];

/** What each step says on a card, in words a clinician reads. */
export const relaxationDescriptions: Record<RelaxationStep, string> = {
  'icd10-category': 'ICD-10 matched by category instead of full code',
  'ignore-icd10': 'diagnoses not matched',
  'widen-age': 'age band widened',
  'ignore-sex': 'sex not matched',
};

/**
 * Everything that shapes a cohort and its cards. Stored as JSON in `rule_set.rules` with a version;
 * the defaults here seed version 1 and fill fields that an older stored version lacks.
 */
export const rulesSchema = z
  .object({
    /** Prior encounters within ± this many years of the patient's age. */
    ageWindowYears: z.number().int().min(0).max(120).default(10),
    /** The window once the `widen-age` step has been applied. */
    widenedAgeWindowYears: z.number().int().min(0).max(120).default(20),
    matchSex: z.boolean().default(true),
    /** Match ICD-10 codes on the full code or on the 3-character category. */
    icd10Level: z.enum(['full', 'category']).default('category'),
    relaxationOrder: z
      .array(z.enum(relaxationSteps))
      .refine((steps) => new Set(steps).size === steps.length, 'a step may appear once')
      .default(['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex']),
    /** No card for a cohort smaller than this (CMS cell-size rule: 11). */
    minCohortSize: z.number().int().min(1).default(11),
    /** No item shown whose count is below this. */
    minCellSize: z.number().int().min(1).default(11),
    /** An item must reach this share of the cohort to be suggested. */
    minItemShare: z.number().min(0).max(1).default(0.1),
    /** Items at or above this share of all visits are routine: one compact line, not suggestions. */
    routineBaselineShare: z.number().min(0).max(1).default(0.85),
    maxItemsPerCard: z.number().int().min(1).max(20).default(5),
    /** Admission rate at or above which the prognosis card warns. */
    admissionWarningRate: z.number().min(0).max(1).default(0.5),
    /** 72-hour return rate at or above which the prognosis card warns. */
    returnWarningRate: z.number().min(0).max(1).default(0.1),
  })
  .refine((rules) => rules.widenedAgeWindowYears >= rules.ageWindowYears, {
    message: 'must be at least ageWindowYears',
    path: ['widenedAgeWindowYears'],
  })
  .refine((rules) => rules.minCellSize <= rules.minCohortSize, {
    message: 'must not exceed minCohortSize',
    path: ['minCellSize'],
  });

export type Rules = z.infer<typeof rulesSchema>;

/** A rules version as the engine sees it. */
export interface VersionedRules {
  readonly version: number;
  readonly rules: Rules;
}

export const defaultRules: Rules = rulesSchema.parse({});
