import { z } from 'zod';

/** The relaxation steps, each applied on top of the ones before it. */
export const relaxationSteps = ['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex', 'ignore-acuity'] as const;
export type RelaxationStep = (typeof relaxationSteps)[number];

/** What each step says on a card, in words a clinician reads. */
export const relaxationDescriptions: Record<RelaxationStep, string> = {
  'icd10-category': 'ICD-10 matched by category instead of full code',
  'ignore-icd10': 'diagnoses not matched',
  'widen-age': 'age band widened',
  'ignore-sex': 'sex not matched',
  'ignore-acuity': 'triage acuity not matched',
};

/** How the patient's triage acuity (ESI 1–5) constrains the cohort when the EHR sends one. */
export const acuityMatches = ['ignore', 'exact', 'within-1'] as const;
/** How much of the patient's ICD-10 codes (or categories) a prior encounter must share. */
export const icd10Overlaps = ['any', 'all', 'jaccard'] as const;
/** How prior encounters' items weigh in the counts that rank them (see `itemWeighting`). */
export const itemWeightings = ['none', 'clinician-reputation'] as const;
/** Which of the patient's chief-complaint concepts a prior encounter must have. */
export const complaintMatches = ['primary', 'any'] as const;

/**
 * i2b2-style obfuscation of the counts a card shows (docs/privacy.md, "Noise"): `none`, or Gaussian noise of
 * standard deviation `sigma`, rounded, with results at or below `zeroAtOrBelow` shown as 0. i2b2 uses σ ≈ 1.3 and 3.
 */
export const countNoiseSchema = z
  .discriminatedUnion(
    'kind',
    [
      z.strictObject({ kind: z.literal('none') }),
      z.strictObject({
        kind: z.literal('gaussian'),
        sigma: z.number({ error: 'a standard deviation' }).gt(0, 'must be above 0').max(10, 'at most 10').default(1.3),
        zeroAtOrBelow: z.number({ error: 'a count' }).int('a whole count').min(0, 'at least 0').max(1000, 'at most 1000').default(3),
      }),
    ],
    { error: "kind is one of 'none', 'gaussian'" },
  )
  .default({ kind: 'none' });
export type CountNoise = z.output<typeof countNoiseSchema>;

/**
 * Why a clinician dismissed a card, offered on the workup and treatment cards as CDS Hooks 2.0 `overrideReasons`
 * (https://cds-hooks.hl7.org/2.0/#overridereasons-and-feedback); feedback may only pick one of these.
 * `suggestedOverrideReasons` is a starting list; default none: what versions without this field offered.
 */
export const overrideReasonSchema = z.strictObject({
  system: z.url({ error: 'an absolute URI naming the code system' }).max(2048, 'at most 2048 characters'),
  code: z.string({ error: 'a code' }).min(1, 'a code may not be empty').max(256, 'at most 256 characters'),
  display: z.string({ error: 'the text a clinician picks' }).min(1, 'a display may not be empty').max(200, 'at most 200 characters'),
});
export const overrideReasonsSchema = z
  .array(overrideReasonSchema)
  .max(20, 'at most 20 reasons')
  .refine((reasons) => new Set(reasons.map((reason) => `${reason.system}|${reason.code}`)).size === reasons.length, 'a code may appear once')
  .default([]);
export const suggestedOverrideReasons = [
  { system: 'https://cohort-cds.example.org/override-reason', code: 'already-done', display: 'Already done elsewhere' },
  { system: 'https://cohort-cds.example.org/override-reason', code: 'not-indicated', display: 'Not indicated for this patient' },
  { system: 'https://cohort-cds.example.org/override-reason', code: 'patient-declined', display: 'Patient declined' },
] as const;

/**
 * Acceptance evidence from CDS Hooks feedback (src/feedback/acceptance.ts): `none`, or the item's lift times
 * posterior acceptance ÷ `priorAcceptance`, under a Beta prior of mean `priorAcceptance` worth `priorStrength`
 * outcomes, once the item has at least `minOutcomes` outcomes for the complaint; the card then also shows the rate.
 */
export const feedbackRankingSchema = z
  .discriminatedUnion(
    'kind',
    [
      z.strictObject({ kind: z.literal('none') }),
      z.strictObject({
        kind: z.literal('beta'),
        priorAcceptance: z.number({ error: 'a share between 0 and 1' }).gt(0, 'must be above 0').lt(1, 'must be below 1').default(0.5),
        priorStrength: z.number({ error: 'a number of outcomes' }).gt(0, 'must be above 0').max(10000, 'at most 10000').default(20),
        minOutcomes: z.number({ error: 'a number of outcomes' }).int('a whole number').min(1, 'at least 1').max(100000, 'at most 100000').default(20),
      }),
    ],
    { error: "kind is one of 'none', 'beta'" },
  )
  .default({ kind: 'none' });
export type FeedbackRanking = z.output<typeof feedbackRankingSchema>;

const oneOf = (values: readonly string[]) => ({ error: `one of ${values.map((value) => `'${value}'`).join(', ')}` });

/**
 * Everything that shapes a cohort and its cards. Stored as JSON in `rule_set.rules` with a version;
 * the defaults here seed version 1 and fill fields that an older stored version lacks.
 *
 * A stored version is immutable, so a field added later must default to what versions without it did:
 * a new matching option defaults to "off" (acuity ignored, any ICD-10 overlap, the primary complaint,
 * no look-back window, every site), and a version that wants it says so explicitly.
 */
export const rulesSchema = z
  .object({
    /** Prior encounters within ± this many years of the patient's age. */
    ageWindowYears: z.number().int().min(0).max(120).default(10),
    /** The window once the `widen-age` step has been applied. */
    widenedAgeWindowYears: z.number().int().min(0).max(120).default(20),
    matchSex: z.boolean().default(true),
    /**
     * Triage acuity (ESI), applied only when the EHR sent one: `exact` keeps prior encounters of the same
     * level, `within-1` those one level either side; prior encounters without a recorded acuity are then
     * left out. The `ignore-acuity` relaxation step drops it. Default `ignore`: what versions without this
     * field did, so that a stored version keeps its meaning. Acuity alone ranks the demo's admissions well
     * (AUROC 0.68), but as a cohort filter it barely helps there: leave-one-patient-out at arrival, the cohort
     * admission rate ranked with AUROC 0.585 (ignore), 0.592 (within-1), 0.572 (exact), 69 visits with a card.
     * A version that turns it on should show its backtest first.
     */
    acuityMatch: z.enum(acuityMatches, oneOf(acuityMatches)).default('ignore'),
    /** Match ICD-10 codes on the full code or on the 3-character category. */
    icd10Level: z.enum(['full', 'category']).default('category'),
    /**
     * How the patient's ICD-10 codes (at `icd10Level`, as sets) must overlap a prior encounter's:
     * `any` shares at least one; `all` has every one of the patient's; `jaccard` shares at least
     * `icd10MinJaccard` of the union of both sets (|patient ∩ encounter| / |patient ∪ encounter|).
     */
    icd10Overlap: z.enum(icd10Overlaps, oneOf(icd10Overlaps)).default('any'),
    /** The least Jaccard index with `icd10Overlap: 'jaccard'` (ignored otherwise); 0.5 ≈ half the codes in common. */
    icd10MinJaccard: z
      .number({ error: 'a share between 0 and 1' })
      .gt(0, 'must be above 0 (0 would match encounters sharing nothing)')
      .max(1, 'must be at most 1')
      .default(0.5),
    /**
     * `primary`: the prior encounter has the patient's primary complaint concept among its concepts;
     * `any`: it has any of the patient's complaint concepts (modifiers such as "transfer" never count).
     * The phrase → concept vocabulary itself is not part of a version: it lives in complaint_synonym and
     * was applied to the prior encounters at ingest, so a per-version synonym list would map the patient
     * and the cohort differently. Synonym edits are shared reference data; this chooses how concepts match.
     */
    complaintMatch: z.enum(complaintMatches, oneOf(complaintMatches)).default('primary'),
    /**
     * Only prior encounters that started in the last N calendar years, counting the reference year
     * (1 = the reference year only); null: no limit. The reference year is the one the caller passes (a
     * backtest passes the held-out encounter's year) or else the newest start_year on record: start years
     * are de-identified and shifted (MIMIC's lie in the 2100s), so today's date says nothing about them.
     */
    lookbackYears: z
      .number({ error: 'a whole number of years, or null for no limit' })
      .int('a whole number of years')
      .min(1, 'at least 1 (the reference year only), or null for no limit')
      .max(200, 'at most 200 years')
      .nullable()
      .default(null),
    /** Only prior encounters from these sites (cohort_encounter.site, as given at ingest); null: every site. */
    sites: z
      .array(z.string({ error: 'a site name' }).min(1, 'a site name may not be empty').max(200, 'at most 200 characters'))
      .min(1, 'list at least one site, or null for every site')
      .refine((sites) => new Set(sites).size === sites.length, 'a site may appear once')
      .nullable()
      .default(null),
    relaxationOrder: z
      .array(z.enum(relaxationSteps, oneOf(relaxationSteps)))
      .refine((steps) => new Set(steps).size === steps.length, 'a step may appear once')
      // Acuity last: it is the strongest sign of how sick the patient is, so it is kept the longest. A step
      // with nothing to relax adds no rung, so while acuity is ignored this order behaves as the one before.
      .default(['icd10-category', 'ignore-icd10', 'widen-age', 'ignore-sex', 'ignore-acuity']),
    /** No card for a cohort smaller than this (CMS cell-size rule: 11). */
    minCohortSize: z.number().int().min(1).default(11),
    /** No item shown whose count is below this. */
    minCellSize: z.number().int().min(1).default(11),
    /** An item must reach this share of the cohort to be suggested. */
    minItemShare: z.number().min(0).max(1).default(0.1),
    /**
     * Noise on the counts a card shows (cohort size, item counts, outcome counts), the same for the same cohort
     * every time. Default `none`: what versions without this field did. The cohort is still chosen, and the
     * minimum sizes checked, on the true counts first; the noisy counts then face the same minimums again.
     */
    countNoise: countNoiseSchema,
    /** Override reasons offered on the workup and treatment cards; default none (what versions without it offered). */
    overrideReasons: overrideReasonsSchema,
    /** Rank suggestions with the feedback's acceptance evidence; default `none`: lift alone, as before. */
    feedbackRanking: feedbackRankingSchema,
    /**
     * `clinician-reputation`: rank a cohort's items by counts in which each prior encounter's item weighs the
     * reputation of the clinician who ordered it (docs/reputation.md; McCoy et al. 2014); the counts shown and the
     * minimum cell sizes stay the true ones. Default `none`: what versions without this field did.
     */
    itemWeighting: z.enum(itemWeightings, oneOf(itemWeightings)).default('none'),
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
export type AcuityMatch = Rules['acuityMatch'];
export type ComplaintMatch = Rules['complaintMatch'];

/** A rules version as the engine sees it. */
export interface VersionedRules {
  readonly version: number;
  readonly rules: Rules;
}

export const defaultRules: Rules = rulesSchema.parse({});
