/**
 * The backtest's options and result as zod schemas: stored as JSON in evaluation_run (options, progress,
 * result) and rendered by the CLI, the admin API and the console. Every share is a number in [0, 1].
 */
import { z } from 'zod';
import { relaxationSteps } from '../cohort/rules.js';

export const evaluationSplits = ['patient', 'temporal'] as const;
export const evaluationModes = ['arrival', 'with-diagnoses'] as const;
export const itemLevels = ['panel', 'analyte'] as const;

export const evaluationOptionsSchema = z.object({
  /**
   * `patient`: whole patients are held out, none of their encounters in the training set. `temporal`: the
   * latest start years are held out and the training set is every encounter of an earlier year.
   */
  split: z.enum(evaluationSplits).default('patient'),
  /**
   * Share of encounters to hold out. Whole patients (patient split) or whole years (temporal split) move, so
   * the held-out share is the first reached at or above this.
   */
  holdout: z.number().gt(0, 'must be above 0').lt(1, 'must be below 1').default(0.2),
  /** Seeds the patient split and the bootstrap. */
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  /**
   * `arrival`: the held-out encounter as the EHR sees it at ED arrival (age, sex, chief complaint, triage
   * acuity, the problem list = ICD-10 codes of earlier encounters). `with-diagnoses`: also its own ICD-10
   * diagnoses, as late in a visit at order-sign (optimistic: those codes are final only at discharge).
   */
  mode: z.enum(evaluationModes).default('arrival'),
  /** The list lengths that precision and recall are measured at. */
  k: z
    .array(z.number().int().min(1).max(100))
    .min(1)
    .max(10)
    .default([5, 10])
    .transform((values) => [...new Set(values)].sort((a, b) => a - b)),
  /** Bootstrap resamples of the held-out encounters for the 95% intervals; 0 leaves the intervals out. */
  bootstrapResamples: z.number().int().min(0).max(100000).default(1000),
  /**
   * `panel` (what the cards suggest): lab analytes counted as the panel they were drawn in, as the SQL
   * cohort source does. `analyte`: every analyte on its own — only to compare with analyte-level measurements;
   * the cards the service shows are built from panels.
   */
  itemLevel: z.enum(itemLevels).default('panel'),
});

export type EvaluationOptions = z.output<typeof evaluationOptionsSchema>;
/** Options as a caller gives them: every field may be left out for its default. */
export type EvaluationOptionsInput = z.input<typeof evaluationOptionsSchema>;

/** A measure over the held-out encounters, with its percentile-bootstrap 95% interval (null without resamples). */
export const estimateSchema = z.object({
  value: z.number().nullable(),
  lower: z.number().nullable(),
  upper: z.number().nullable(),
  /** Held-out encounters the value is computed over. */
  n: z.number().int(),
});
export type Estimate = z.infer<typeof estimateSchema>;

export const itemMetricsAtKSchema = z.object({
  k: z.number().int(),
  precision: estimateSchema,
  recall: estimateSchema,
  /** Recall with each item weighted by 1 / its training frequency (Chen et al.; see metrics.ts). */
  weightedRecall: estimateSchema,
});

export const itemMetricsSchema = z.object({
  /** Held-out encounters that received at least one item of this category: recall is measured over these. */
  evaluated: z.number().int(),
  atK: z.array(itemMetricsAtKSchema),
});
export type ItemMetrics = z.infer<typeof itemMetricsSchema>;

export const calibrationRowSchema = z.object({
  /** 1 = the lowest predicted risk. */
  group: z.number().int(),
  n: z.number().int(),
  meanPredicted: z.number(),
  observedRate: z.number(),
});

export const outcomeMetricsSchema = z.object({
  n: z.number().int(),
  observedRate: z.number().nullable(),
  auroc: estimateSchema,
  brier: estimateSchema,
  /** Deciles of predicted risk (ties kept together, so there can be fewer rows). */
  calibration: z.array(calibrationRowSchema),
});
export type OutcomeMetrics = z.infer<typeof outcomeMetricsSchema>;

/** `rules-reputation-weighted`: the same rules with `itemWeighting: 'clinician-reputation'` (docs/reputation.md). */
export const methodIds = ['rules', 'rules-reputation-weighted', 'overall-baseline', 'complaint-baseline'] as const;
export type MethodId = (typeof methodIds)[number];

export const methodResultSchema = z.object({
  id: z.enum(methodIds),
  label: z.string(),
  /** Held-out encounters for which this method suggested at least one item (workup or treatment). */
  suggested: z.number().int(),
  /** Held-out encounters whose predicted risks are the training base rates (no card, or no complaint group). */
  usedBaseRate: z.number().int(),
  workup: itemMetricsSchema,
  treatment: itemMetricsSchema,
  admission: outcomeMetricsSchema,
  return72h: outcomeMetricsSchema,
});
export type MethodResult = z.infer<typeof methodResultSchema>;

export const evaluationResultSchema = z.object({
  /** Bumped when the shape changes, so a reader can tell old stored results apart. */
  formatVersion: z.literal(1),
  rulesVersion: z.number().int(),
  options: evaluationOptionsSchema,
  mode: z.object({ id: z.enum(evaluationModes), label: z.string() }),
  split: z.object({
    kind: z.enum(evaluationSplits),
    description: z.string(),
    heldOutEncounters: z.number().int(),
    heldOutPatients: z.number().int(),
    trainingEncounters: z.number().int(),
    trainingPatients: z.number().int(),
    /** Temporal split: held-out encounters start in this year or later, training encounters before it. */
    cutoffYear: z.number().int().nullable(),
  }),
  /** Rates in the training set: the prediction for an encounter that gets no card. */
  baseRates: z.object({ admission: z.number(), return72h: z.number() }),
  /** The rules first, then the baselines, all measured on the same held-out encounters and resamples. */
  methods: z.array(methodResultSchema),
  coverage: z.object({
    heldOutEncounters: z.number().int(),
    /** Share of held-out encounters that got any card, with a Wilson 95% interval. */
    withCard: estimateSchema,
    noCard: z.object({ nothingToMatch: z.number().int(), cohortTooSmall: z.number().int() }),
    /** Encounters with a card that needed no relaxation. */
    withoutRelaxation: z.number().int(),
    /** For each step the rules declare: encounters with a card whose cohort needed it (steps are cumulative). */
    relaxation: z.array(
      z.object({ step: z.enum(relaxationSteps), description: z.string(), encounters: z.number().int(), share: z.number().nullable() }),
    ),
    cohortSize: z.object({ median: z.number(), min: z.number(), max: z.number() }).nullable(),
  }),
  /**
   * The clinician reputation behind the weighted rules, from the training encounters (absent in results stored
   * before it existed): with no item naming a clinician, every weight is 1 and both rules columns are the same.
   */
  reputation: z
    .object({
      clinicians: z.number().int(),
      trainingItems: z.number().int(),
      trainingItemsWithClinician: z.number().int(),
      meanAgreement: z.number().nullable(),
      weight: z.object({ min: z.number(), median: z.number(), max: z.number() }).nullable(),
    })
    .optional(),
  /** How to read the figures: the decisions behind them, in sentences. */
  notes: z.array(z.string()),
  durationMs: z.number(),
});
export type EvaluationResult = z.infer<typeof evaluationResultSchema>;

export const evaluationPhases = ['queued', 'loading', 'predicting', 'bootstrapping', 'done'] as const;

/** What a running backtest reports (stored in evaluation_run.progress, throttled). */
export const evaluationProgressSchema = z.object({
  phase: z.enum(evaluationPhases),
  /** Units done and to do in this phase: held-out encounters while predicting, resamples while bootstrapping. */
  done: z.number().int(),
  total: z.number().int(),
});
export type EvaluationProgress = z.infer<typeof evaluationProgressSchema>;
