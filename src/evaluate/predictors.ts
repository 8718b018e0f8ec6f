/**
 * What the rules and the two baselines predict for a held-out encounter, each learning from the training
 * encounters only. The rules go through the service's own code: the cohort ladder of cohort/matching.ts over
 * an InMemoryCohortSource (the reference the SQL source is tested against) and the card builders of cards/.
 */
import { buildCohortCards, type BuiltCard } from '../cards/cohort-cards.js';
import { rankItems } from '../cards/item-ranking.js';
import { cardUuidFactory } from '../cards/uuid.js';
import { primaryConcept } from '../cohort/complaint.js';
import { InMemoryCohortSource } from '../cohort/in-memory-source.js';
import { selectCohort, type CohortOutcome } from '../cohort/matching.js';
import type { VersionedRules } from '../cohort/rules.js';
import type { BaselineStatistics, ItemCategory, PatientFacts, Sex } from '../cohort/types.js';
import type { EvaluationEncounter } from '../db/evaluation-data.repository.js';

export type EvaluationMode = 'arrival' | 'with-diagnoses';

/** One method's answer for one held-out encounter. */
export interface MethodPrediction {
  /** Item codes, best first, at most the largest k long. */
  readonly workup: readonly string[];
  readonly treatment: readonly string[];
  /** Predicted probabilities. */
  readonly admission: number;
  readonly return72h: number;
  /** True when the probabilities are the training base rates (no card, or nothing to group by). */
  readonly usedBaseRate: boolean;
}

export interface RulesPrediction extends MethodPrediction {
  readonly outcome: CohortOutcome;
  /** The cards the service would have returned. */
  readonly cards: readonly BuiltCard[];
}

const sexes: ReadonlySet<string> = new Set<Sex>(['female', 'male', 'other', 'unknown']);

/**
 * The held-out encounter as the EHR sees it: at ED arrival, its age, sex, chief complaint and concepts,
 * triage acuity and the ICD-10 codes of earlier encounters (the problem list); with `with-diagnoses`, its
 * own diagnoses as well (known late in the visit). Its items and outcomes are never part of the facts.
 */
export function factsForEncounter(encounter: EvaluationEncounter, mode: EvaluationMode): PatientFacts {
  const codes = mode === 'arrival' ? encounter.historyIcd10Codes : [...encounter.icd10Codes, ...encounter.historyIcd10Codes];
  return {
    ageYears: encounter.ageYears,
    sex: sexes.has(encounter.sex) ? (encounter.sex as Sex) : null,
    chiefComplaintText: encounter.chiefComplaintText,
    complaintConcepts: [...encounter.complaintConcepts],
    icd10Codes: [...new Set(codes)],
    acuity: encounter.acuity,
    // At arrival nothing is drafted yet, so nothing is left off the cards as already ordered.
    draftOrders: [],
  };
}

interface ComplaintGroup {
  readonly members: readonly EvaluationEncounter[];
  readonly group: Group;
  readonly ranking: Record<ItemCategory, readonly string[]>;
}

interface Group {
  readonly size: number;
  readonly counts: ReadonlyMap<string, number>;
  readonly admitted: number;
  readonly returned72h: number;
}

function describeGroup(encounters: readonly EvaluationEncounter[]): Group {
  const counts = new Map<string, number>();
  for (const encounter of encounters) {
    for (const item of new Set(encounter.items.map((one) => one.itemCode))) counts.set(item, (counts.get(item) ?? 0) + 1);
  }
  return {
    size: encounters.length,
    counts,
    admitted: encounters.filter((encounter) => encounter.admitted).length,
    returned72h: encounters.filter((encounter) => encounter.returned72h).length,
  };
}

/** What is learnt from the training encounters, once per backtest. */
export class TrainingSet {
  readonly source: InMemoryCohortSource;
  /** Item code → training encounters that received it: the item frequencies for weighted recall. */
  readonly itemCounts: ReadonlyMap<string, number>;
  readonly baseRates: { readonly admission: number; readonly return72h: number };
  private readonly overall: Group;
  private readonly categoryOf = new Map<string, ItemCategory>();
  private readonly overallRanking: Record<ItemCategory, readonly string[]>;
  private readonly complaintGroups = new Map<string, ComplaintGroup>();
  private baseline: Promise<BaselineStatistics> | undefined;

  constructor(
    readonly encounters: readonly EvaluationEncounter[],
    private readonly maxK: number,
  ) {
    if (encounters.length === 0) throw new RangeError('the training set is empty');
    this.source = new InMemoryCohortSource(encounters);
    this.overall = describeGroup(encounters);
    this.itemCounts = this.overall.counts;
    this.baseRates = { admission: this.overall.admitted / this.overall.size, return72h: this.overall.returned72h / this.overall.size };
    for (const encounter of encounters) for (const item of encounter.items) this.categoryOf.set(item.itemCode, item.category);
    this.overallRanking = { workup: this.rank('workup', null), treatment: this.rank('treatment', null) };
  }

  /** All-visit item shares, for lift: computed by the same source that serves the cohorts. */
  describeBaseline(): Promise<BaselineStatistics> {
    this.baseline ??= this.source.describeBaseline();
    return this.baseline;
  }

  /**
   * Items of one category by frequency in `group` (when given), then by frequency in the whole training set,
   * then by code: a small group's ties and its tail are filled from the overall order.
   */
  private rank(category: ItemCategory, group: Group | null): string[] {
    const codes = [...this.overall.counts.keys()].filter((code) => this.categoryOf.get(code) === category);
    const overall = this.overall.counts;
    return codes
      .sort(
        (a, b) =>
          (group ? (group.counts.get(b) ?? 0) - (group.counts.get(a) ?? 0) : 0) ||
          overall.get(b)! - overall.get(a)! ||
          (a < b ? -1 : a > b ? 1 : 0),
      )
      .slice(0, this.maxK);
  }

  /** Baseline 1: the most frequent items of all training encounters, the same list for everyone. */
  predictOverall(): MethodPrediction {
    return { ...this.overallRanking, ...this.baseRates, usedBaseRate: true };
  }

  /** The training encounters with this primary complaint concept (same test as cohort matching), or null. */
  complaintGroup(facts: PatientFacts): readonly EvaluationEncounter[] | null {
    return this.complaint(facts)?.members ?? null;
  }

  private complaint(facts: PatientFacts): ComplaintGroup | null {
    const concept = primaryConcept(facts.complaintConcepts);
    if (concept === null) return null;
    let entry = this.complaintGroups.get(concept);
    if (!entry) {
      const members = this.encounters.filter((encounter) => encounter.complaintConcepts.includes(concept));
      const group = describeGroup(members);
      entry = { members, group, ranking: { workup: this.rank('workup', group), treatment: this.rank('treatment', group) } };
      this.complaintGroups.set(concept, entry);
    }
    return entry.members.length > 0 ? entry : null;
  }

  /**
   * Baseline 2: the most frequent items among training encounters with the same primary complaint concept,
   * and their rates; without a concept, or when no training encounter has it, the overall baseline.
   */
  predictComplaint(facts: PatientFacts): MethodPrediction {
    const entry = this.complaint(facts);
    if (!entry) return this.predictOverall();
    const { group, ranking } = entry;
    return {
      ...ranking,
      admission: group.admitted / group.size,
      return72h: group.returned72h / group.size,
      usedBaseRate: false,
    };
  }

  /**
   * The rules: the cohort the service would select from the training encounters and the cards it would
   * build. A card shows at most `maxItemsPerCard` suggestions; to measure at a larger k the list goes on
   * with the next items of the same ranking (same filters: small cells, minimum share, routine items set
   * apart, order by lift), so its first items are exactly the card's. Routine items (the one-line "routine"
   * part of the card) are not suggestions and are not in the list. Risks are the cohort's rates; an encounter
   * without a card is given the training base rates.
   */
  async predictRules(
    facts: PatientFacts,
    versionedRules: VersionedRules,
    encounter: Pick<EvaluationEncounter, 'encounterKey' | 'startYear'>,
  ): Promise<RulesPrediction> {
    const { rules } = versionedRules;
    // A look-back window counts back from the held-out encounter's own year, as it would have in the EHR then.
    const outcome = await selectCohort(this.source, facts, rules, { referenceYear: encounter.startYear });
    return this.predictFromOutcome(outcome, facts, versionedRules, encounter);
  }

  /**
   * The rules without and with `itemWeighting: 'clinician-reputation'`, from one cohort selection (weighting
   * never changes which cohort is chosen, only the order of its items): the backtest's side-by-side columns.
   * The training encounters' items carry the weights (withReputationWeights); without any, both are the same.
   */
  async predictRulesBothWeightings(
    facts: PatientFacts,
    versionedRules: VersionedRules,
    encounter: Pick<EvaluationEncounter, 'encounterKey' | 'startYear'>,
  ): Promise<{ readonly unweighted: RulesPrediction; readonly weighted: RulesPrediction }> {
    const weightedRules: VersionedRules = { ...versionedRules, rules: { ...versionedRules.rules, itemWeighting: 'clinician-reputation' } };
    const unweightedRules: VersionedRules = { ...versionedRules, rules: { ...versionedRules.rules, itemWeighting: 'none' } };
    const outcome = await selectCohort(this.source, facts, weightedRules.rules, { referenceYear: encounter.startYear });
    return {
      unweighted: await this.predictFromOutcome(outcome, facts, unweightedRules, encounter),
      weighted: await this.predictFromOutcome(outcome, facts, weightedRules, encounter),
    };
  }

  private async predictFromOutcome(
    outcome: CohortOutcome,
    facts: PatientFacts,
    versionedRules: VersionedRules,
    encounter: Pick<EvaluationEncounter, 'encounterKey' | 'startYear'>,
  ): Promise<RulesPrediction> {
    const { version, rules } = versionedRules;
    if (outcome.kind === 'none') {
      return { workup: [], treatment: [], ...this.baseRates, usedBaseRate: true, outcome, cards: [] };
    }
    const { statistics } = outcome.selection;
    const baseline = await this.describeBaseline();
    const cards = buildCohortCards({
      facts,
      selection: outcome.selection,
      baseline,
      rules,
      rulesVersion: version,
      patientId: 'held-out',
      encounterId: undefined,
      uuidFor: cardUuidFactory('evaluate', encounter.encounterKey, version),
      conceptDisplay: (concept) => concept,
    });
    const longer = { ...rules, maxItemsPerCard: Math.max(rules.maxItemsPerCard, this.maxK) };
    const list = (category: ItemCategory): string[] => {
      const onCard = cards.find((card) => card.kind === category)?.suggestedItemCodes ?? [];
      const ranking = rankItems(statistics.items, category, statistics.size, baseline, longer, facts.draftOrders);
      const rest = ranking.distinctive.map((ranked) => ranked.item.itemCode).filter((code) => !onCard.includes(code));
      return [...onCard, ...rest].slice(0, this.maxK);
    };
    return {
      workup: list('workup'),
      treatment: list('treatment'),
      admission: statistics.outcomes.admitted / statistics.size,
      return72h: statistics.outcomes.returned72h / statistics.size,
      usedBaseRate: false,
      outcome,
      cards,
    };
  }
}
