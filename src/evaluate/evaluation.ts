/**
 * The backtest: hold out encounters, predict each from the others with the rules and two baselines, and
 * compare with what the encounter really received and what became of it.
 */
import type { Kysely } from 'kysely';
import { filterCohort } from '../cohort/matching.js';
import { relaxationDescriptions, type VersionedRules } from '../cohort/rules.js';
import { median, proportion } from '../cohort/statistics.js';
import type { ItemCategory, PatientFacts } from '../cohort/types.js';
import type { Database } from '../db/database.js';
import { loadEvaluationEncounters, type EvaluationEncounter } from '../db/evaluation-data.repository.js';
import {
  auroc,
  bootstrapIntervals,
  brierScore,
  calibrationTable,
  mean,
  precisionAtK,
  recallAtK,
  weightedRecallAtK,
  yieldToEventLoop,
  type Interval,
} from './metrics.js';
import { factsForEncounter, TrainingSet, type MethodPrediction, type RulesPrediction } from './predictors.js';
import { derivedSeed } from './random.js';
import {
  evaluationOptionsSchema,
  type Estimate,
  type EvaluationOptions,
  type EvaluationOptionsInput,
  type EvaluationProgress,
  type EvaluationResult,
  type MethodId,
  type MethodResult,
  type OutcomeMetrics,
} from './result.js';
import { splitEncounters } from './split.js';
import { computeReputation, withReputationWeights, type ReputationSummary } from '../reputation/reputation.js';

/** What one held-out encounter was predicted from and what came out: for tests and debugging, never stored. */
export interface HeldOutTrace {
  readonly encounter: EvaluationEncounter;
  readonly facts: PatientFacts;
  /** The very training set the cohort source and the baselines were built from (the same for every encounter). */
  readonly training: readonly EvaluationEncounter[];
  /** The members of the cohort the rules selected, or null without a card. */
  readonly cohort: readonly EvaluationEncounter[] | null;
  /** The training encounters of the complaint baseline, or null when it fell back to the overall one. */
  readonly complaintGroup: readonly EvaluationEncounter[] | null;
  readonly rules: RulesPrediction;
  readonly overall: MethodPrediction;
  readonly complaint: MethodPrediction;
}

export interface EvaluationHooks {
  readonly onProgress?: (progress: EvaluationProgress) => void;
  readonly inspect?: (trace: HeldOutTrace) => void;
}

const categories: readonly ItemCategory[] = ['workup', 'treatment'];
const outcomes = ['admission', 'return72h'] as const;

const modeLabels: Record<EvaluationOptions['mode'], string> = {
  arrival:
    'At ED arrival: age, sex, chief complaint, triage acuity and the problem list (ICD-10 codes of earlier encounters); ' +
    "the encounter's own diagnoses, orders and outcomes are hidden.",
  'with-diagnoses':
    "With the encounter's own ICD-10 diagnoses added, as at order-sign late in a visit. Optimistic: those codes are final only at discharge.",
};

interface ScoredMethod {
  readonly id: MethodId;
  readonly label: string;
  readonly predictions: MethodPrediction[];
}

/** One figure: its value on all held-out encounters, and how to compute it on a resample of them. */
interface Statistic {
  readonly value: number | null;
  readonly n: number;
  readonly compute: (indices: readonly number[]) => number | null;
}

function meanStatistic(values: ReadonlyArray<number | null>): Statistic {
  return {
    value: mean(values),
    n: values.filter((value) => value !== null).length,
    compute: (indices) => {
      let sum = 0;
      let count = 0;
      for (const index of indices) {
        const value = values[index]!;
        if (value === null) continue;
        sum += value;
        count += 1;
      }
      return count === 0 ? null : sum / count;
    },
  };
}

function outcomeStatistic(
  predicted: readonly number[],
  observed: readonly boolean[],
  measure: (predicted: readonly number[], observed: readonly boolean[]) => number | null,
): Statistic {
  return {
    value: measure(predicted, observed),
    n: predicted.length,
    compute: (indices) =>
      measure(
        indices.map((index) => predicted[index]!),
        indices.map((index) => observed[index]!),
      ),
  };
}

/** Registers figures for the bootstrap and hands back their estimates once it has run. */
class StatisticRegistry {
  private readonly statistics: Statistic[] = [];
  private intervals: Array<Interval | null> = [];

  add(statistic: Statistic): () => Estimate {
    const index = this.statistics.push(statistic) - 1;
    return () => {
      const interval = this.intervals[index] ?? null;
      return { value: statistic.value, lower: interval?.lower ?? null, upper: interval?.upper ?? null, n: statistic.n };
    };
  }

  async bootstrap(n: number, resamples: number, seed: number, onResample: (done: number) => void): Promise<void> {
    if (resamples === 0 || n === 0) return;
    this.intervals = await bootstrapIntervals(n, resamples, seed, (indices) => this.statistics.map((statistic) => statistic.compute(indices)), {
      onResample,
    });
  }
}

function methodResult(
  method: ScoredMethod,
  registry: StatisticRegistry,
  actual: ReadonlyArray<Record<ItemCategory, ReadonlySet<string>>>,
  observed: Record<(typeof outcomes)[number], readonly boolean[]>,
  options: EvaluationOptions,
  itemCounts: ReadonlyMap<string, number>,
): () => MethodResult {
  const items = categories.map((category) => {
    const received = actual.map((sets) => sets[category]);
    const lists = method.predictions.map((prediction) => prediction[category]);
    const atK = options.k.map((k) => {
      // Precision is measured where something was both received and suggested; recall wherever something was received.
      const precision = lists.map((list, index) => (received[index]!.size === 0 ? null : precisionAtK(list, received[index]!, k)));
      const recall = lists.map((list, index) => recallAtK(list, received[index]!, k));
      const weighted = lists.map((list, index) => weightedRecallAtK(list, received[index]!, k, itemCounts));
      return {
        k,
        precision: registry.add(meanStatistic(precision)),
        recall: registry.add(meanStatistic(recall)),
        weightedRecall: registry.add(meanStatistic(weighted)),
      };
    });
    return { category, evaluated: received.filter((set) => set.size > 0).length, atK };
  });
  const prognosis = outcomes.map((outcome) => {
    const predicted = method.predictions.map((prediction) => prediction[outcome]);
    const seen = observed[outcome];
    return {
      outcome,
      auroc: registry.add(outcomeStatistic(predicted, seen, auroc)),
      brier: registry.add(outcomeStatistic(predicted, seen, brierScore)),
      calibration: calibrationTable(predicted, seen),
      n: predicted.length,
      observedRate: predicted.length === 0 ? null : seen.filter(Boolean).length / predicted.length,
    };
  });
  return () => {
    const itemMetrics = (category: ItemCategory) => {
      const entry = items.find((one) => one.category === category)!;
      return {
        evaluated: entry.evaluated,
        atK: entry.atK.map((one) => ({ k: one.k, precision: one.precision(), recall: one.recall(), weightedRecall: one.weightedRecall() })),
      };
    };
    const outcomeMetrics = (outcome: (typeof outcomes)[number]): OutcomeMetrics => {
      const entry = prognosis.find((one) => one.outcome === outcome)!;
      return { n: entry.n, observedRate: entry.observedRate, auroc: entry.auroc(), brier: entry.brier(), calibration: entry.calibration };
    };
    return {
      id: method.id,
      label: method.label,
      suggested: method.predictions.filter((prediction) => prediction.workup.length + prediction.treatment.length > 0).length,
      usedBaseRate: method.predictions.filter((prediction) => prediction.usedBaseRate).length,
      workup: itemMetrics('workup'),
      treatment: itemMetrics('treatment'),
      admission: outcomeMetrics('admission'),
      return72h: outcomeMetrics('return72h'),
    };
  };
}

function itemSets(encounter: EvaluationEncounter): Record<ItemCategory, ReadonlySet<string>> {
  return {
    workup: new Set(encounter.items.filter((item) => item.category === 'workup').map((item) => item.itemCode)),
    treatment: new Set(encounter.items.filter((item) => item.category === 'treatment').map((item) => item.itemCode)),
  };
}

function hasCard(prediction: RulesPrediction): boolean {
  return prediction.cards.length > 0;
}

/** What the training set says about its clinicians: how much the weighted column can differ at all. */
function reputationSection(summary: ReputationSummary): EvaluationResult['reputation'] {
  const weights = summary.clinicians.map((clinician) => clinician.weight);
  return {
    clinicians: summary.clinicians.length,
    trainingItems: summary.items,
    trainingItemsWithClinician: summary.itemsWithClinician,
    meanAgreement: summary.meanAgreement,
    weight: weights.length === 0 ? null : { min: Math.min(...weights), median: median(weights)!, max: Math.max(...weights) },
  };
}

function notesFor(options: EvaluationOptions, versionedRules: VersionedRules, heldOut: number): string[] {
  const { rules } = versionedRules;
  const notes = [
    `Rules' item lists: the card's suggestions (at most ${rules.maxItemsPerCard}: items given to at least ${rules.minCellSize} ` +
      `and ${Math.round(rules.minItemShare * 100)}% of the cohort, not routine, by lift), continued up to k with the next items ` +
      'of the same ranking. Routine items (one line on the card, not suggestions) are not in the list.',
    'Precision@k: suggested items among the first k that the encounter received, divided by the number suggested (k, or fewer ' +
      'when the list is shorter); over held-out encounters that received at least one item of the category and were suggested ' +
      'at least one. Recall@k: over held-out encounters that received at least one item of the category; no suggestion is a recall of 0.',
    'Weighted recall@k: each received item weighs 1 / (training encounters that received it), 0.5 in place of 0 for an item ' +
      'never seen in training (Chen et al.; HealthRex/CDSS RecommendationClassificationAnalysis.py).',
    'Prognosis: the predicted risk is the cohort\'s rate; a held-out encounter without a card is given the training base rate ' +
      '(the overall baseline gives everyone the base rate, so its AUROC is 0.5).',
    'Weighted by clinician reputation: the same rules and cohorts, with the items ranked by counts in which each training ' +
      "encounter's item weighs its ordering clinician's reputation (docs/reputation.md), computed from the training encounters " +
      'only; an item without a known clinician weighs 1. The shown counts and the small-cell rules are unchanged, so only the ' +
      'order of the suggestions can differ from the unweighted rules.',
    'Complaint baseline: items by frequency among training encounters with the same primary complaint concept, then by ' +
      'overall frequency; an encounter without a concept, or whose concept no training encounter has, gets the overall baseline.',
    options.itemLevel === 'panel'
      ? 'Items: lab analytes counted as the panel they were drawn in, as on the cards.'
      : 'Items: every lab analyte on its own (not as the cards show them: for comparison with analyte-level measurements).',
  ];
  if (options.bootstrapResamples > 0) {
    notes.push(
      `95% intervals: percentile bootstrap, ${options.bootstrapResamples} resamples of the held-out encounters (seed ${options.seed}); ` +
        'the rules and the baselines are measured on the same resamples.',
    );
  }
  if (options.split === 'temporal') {
    notes.push(
      'Temporal split on start years only: a source that shifts each patient\'s dates by its own offset (MIMIC does) orders ' +
        'encounters across patients arbitrarily, so there the split tests robustness more than a real change over time.',
    );
  }
  if (heldOut < 100) notes.push(`Only ${heldOut} held-out encounters: the intervals are wide.`);
  return notes;
}

/**
 * The backtest on encounters already loaded: pure apart from the clock (durationMs). The same encounters,
 * rules and options give the same result.
 */
export async function evaluateEncounters(
  encounters: readonly EvaluationEncounter[],
  versionedRules: VersionedRules,
  optionsInput: EvaluationOptionsInput = {},
  hooks: EvaluationHooks = {},
): Promise<EvaluationResult> {
  const startedAt = performance.now();
  const options = evaluationOptionsSchema.parse(optionsInput);
  // In key order, so that the order the encounters came in changes nothing (the resamples index them).
  const ordered = [...encounters].sort((a, b) => (a.encounterKey < b.encounterKey ? -1 : a.encounterKey > b.encounterKey ? 1 : 0));
  const split = splitEncounters(ordered, options);
  const maxK = Math.max(...options.k);
  // Reputation from the training encounters only: a held-out visit's orders and outcome never shape the weights.
  const reputation = computeReputation(split.training);
  const training = new TrainingSet(withReputationWeights(split.training, reputation.clinicians), maxK);
  const heldOut = split.heldOut;

  const rulesPredictions: RulesPrediction[] = [];
  const weightedPredictions: RulesPrediction[] = [];
  const overallPredictions: MethodPrediction[] = [];
  const complaintPredictions: MethodPrediction[] = [];
  hooks.onProgress?.({ phase: 'predicting', done: 0, total: heldOut.length });
  for (const [index, encounter] of heldOut.entries()) {
    const facts = factsForEncounter(encounter, options.mode);
    const { unweighted: rules, weighted } = await training.predictRulesBothWeightings(facts, versionedRules, encounter);
    const overall = training.predictOverall();
    const complaint = training.predictComplaint(facts);
    rulesPredictions.push(rules);
    weightedPredictions.push(weighted);
    overallPredictions.push(overall);
    complaintPredictions.push(complaint);
    if (hooks.inspect) {
      const criteria = rules.outcome.kind === 'selected' ? rules.outcome.selection.plan.criteria : null;
      hooks.inspect({
        encounter,
        facts,
        training: training.encounters,
        cohort: criteria === null ? null : filterCohort(training.encounters, criteria),
        complaintGroup: training.complaintGroup(facts),
        rules,
        overall,
        complaint,
      });
    }
    hooks.onProgress?.({ phase: 'predicting', done: index + 1, total: heldOut.length });
    if ((index + 1) % 25 === 0) await yieldToEventLoop();
  }

  const actual = heldOut.map(itemSets);
  const observed = {
    admission: heldOut.map((encounter) => encounter.admitted),
    return72h: heldOut.map((encounter) => encounter.returned72h),
  };
  const methods: ScoredMethod[] = [
    {
      id: 'rules',
      label: `Rules v${versionedRules.version}${versionedRules.rules.itemWeighting === 'none' ? '' : ', items unweighted'}`,
      predictions: rulesPredictions,
    },
    { id: 'rules-reputation-weighted', label: `Rules v${versionedRules.version}, weighted by clinician reputation`, predictions: weightedPredictions },
    { id: 'overall-baseline', label: 'Most frequent items overall', predictions: overallPredictions },
    { id: 'complaint-baseline', label: 'Most frequent items for the chief complaint', predictions: complaintPredictions },
  ];
  const registry = new StatisticRegistry();
  const pending = methods.map((method) => methodResult(method, registry, actual, observed, options, training.itemCounts));
  const resamples = options.bootstrapResamples;
  hooks.onProgress?.({ phase: 'bootstrapping', done: 0, total: resamples });
  await registry.bootstrap(heldOut.length, resamples, derivedSeed(options.seed, 'bootstrap'), (done) =>
    hooks.onProgress?.({ phase: 'bootstrapping', done, total: resamples }),
  );

  const carded = rulesPredictions.filter(hasCard);
  const withCard = heldOut.length > 0 ? proportion(carded.length, heldOut.length) : null;
  const sizes = carded.flatMap((prediction) => (prediction.outcome.kind === 'selected' ? [prediction.outcome.selection.statistics.size] : []));
  const relaxationOf = (prediction: RulesPrediction) =>
    prediction.outcome.kind === 'selected' ? prediction.outcome.selection.plan.relaxation : [];
  const noCard = (reason: string) =>
    rulesPredictions.filter((prediction) => prediction.outcome.kind === 'none' && prediction.outcome.reason === reason).length;

  const result: EvaluationResult = {
    formatVersion: 1,
    rulesVersion: versionedRules.version,
    options,
    mode: { id: options.mode, label: modeLabels[options.mode] },
    split: {
      kind: options.split,
      description: split.description,
      heldOutEncounters: heldOut.length,
      heldOutPatients: new Set(heldOut.map((encounter) => encounter.patientKey)).size,
      trainingEncounters: split.training.length,
      trainingPatients: new Set(split.training.map((encounter) => encounter.patientKey)).size,
      cutoffYear: split.cutoffYear,
    },
    baseRates: training.baseRates,
    methods: pending.map((finish) => finish()),
    coverage: {
      heldOutEncounters: heldOut.length,
      withCard: {
        value: withCard?.rate ?? null,
        lower: withCard?.lower ?? null,
        upper: withCard?.upper ?? null,
        n: heldOut.length,
      },
      noCard: { nothingToMatch: noCard('nothing-to-match'), cohortTooSmall: noCard('cohort-too-small') },
      withoutRelaxation: carded.filter((prediction) => relaxationOf(prediction).length === 0).length,
      relaxation: versionedRules.rules.relaxationOrder.map((step) => {
        const encounters = carded.filter((prediction) => relaxationOf(prediction).includes(step)).length;
        return { step, description: relaxationDescriptions[step], encounters, share: carded.length === 0 ? null : encounters / carded.length };
      }),
      cohortSize: sizes.length === 0 ? null : { median: median(sizes)!, min: Math.min(...sizes), max: Math.max(...sizes) },
    },
    reputation: reputationSection(reputation),
    notes: notesFor(options, versionedRules, heldOut.length),
    durationMs: 0,
  };
  hooks.onProgress?.({ phase: 'done', done: heldOut.length, total: heldOut.length });
  return { ...result, durationMs: Math.round(performance.now() - startedAt) };
}

/** Loads the cohort once and runs the backtest of one rules version on it. */
export async function runEvaluation(
  db: Kysely<Database>,
  versionedRules: VersionedRules,
  options: EvaluationOptionsInput = {},
  onProgress?: (progress: EvaluationProgress) => void,
  inspect?: (trace: HeldOutTrace) => void,
): Promise<EvaluationResult> {
  const startedAt = performance.now();
  const parsed = evaluationOptionsSchema.parse(options);
  onProgress?.({ phase: 'loading', done: 0, total: 0 });
  const encounters = await loadEvaluationEncounters(db, { foldLabPanels: parsed.itemLevel === 'panel' });
  const result = await evaluateEncounters(encounters, versionedRules, parsed, {
    ...(onProgress ? { onProgress } : {}),
    ...(inspect ? { inspect } : {}),
  });
  return { ...result, durationMs: Math.round(performance.now() - startedAt) };
}
