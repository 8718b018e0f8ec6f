/**
 * Clinician reputation (docs/reputation.md), after McCoy et al., "Development of a clinician reputation metric to
 * identify appropriate problem-medication pairs in a crowdsourced knowledge base", J Biomed Inform 2014;48:66–72.
 * Pure: encounters in, one reputation per clinician out. No I/O, no clock.
 *
 * Two signals a cohort can measure for every clinician who ordered something:
 * - consensus agreement: for each item a clinician ordered, the share of the *other* encounters with the same
 *   primary complaint concept that received it too (leave-one-out, so an order never agrees with itself);
 * - 72-hour returns: the share of the encounters they ordered in whose patient came back within 72 hours.
 * Each is smoothed towards the cohort mean with a prior worth a fixed number of orders (encounters), so that a
 * clinician seen a few times sits near the mean; the weight is the product of the two ratios to the mean.
 */
import { primaryConcept } from '../cohort/complaint.js';

/** What the reputation reads of an encounter. */
export interface ReputationEncounter {
  readonly complaintConcepts: readonly string[];
  readonly returned72h: boolean;
  /** Distinct item codes the encounter received. */
  readonly items: readonly { readonly itemCode: string }[];
  /** Item code → keyed hash of the clinician who ordered it, for items whose source named one. */
  readonly clinicianByItem?: ReadonlyMap<string, string>;
}

export interface ReputationOptions {
  /** Prior strength of the agreement, in orders: a clinician with this many orders is halfway to their own mean. */
  readonly agreementPriorOrders: number;
  /** Prior strength of the return rate, in encounters. */
  readonly returnPriorEncounters: number;
  /** Bounds of the weight, so that no clinician silences or dominates a cohort. */
  readonly minWeight: number;
  readonly maxWeight: number;
}

export const defaultReputationOptions: ReputationOptions = {
  agreementPriorOrders: 20,
  returnPriorEncounters: 20,
  minWeight: 0.25,
  maxWeight: 4,
};

export interface ClinicianReputation {
  readonly clinicianKey: string;
  /** Orders with a consensus to compare with (their encounter's complaint concept has other encounters). */
  readonly orders: number;
  /** Encounters in which they ordered anything. */
  readonly encounters: number;
  /** Mean agreement of their orders, unsmoothed; null without orders. */
  readonly rawAgreement: number | null;
  /** Agreement smoothed towards the cohort mean. */
  readonly agreement: number;
  /** 72-hour return rate of their encounters, smoothed towards the cohort mean. */
  readonly returnRate72h: number;
  /** (agreement ÷ mean) × ((1 − return rate) ÷ (1 − mean return rate)), within the bounds: 1 is the average clinician. */
  readonly weight: number;
}

export interface ReputationSummary {
  readonly clinicians: readonly ClinicianReputation[];
  /** Mean agreement over every order with a consensus (the prior mean); null when there is none. */
  readonly meanAgreement: number | null;
  /** Mean 72-hour return rate over every clinician–encounter pair; null when there is none. */
  readonly meanReturnRate72h: number | null;
  /** Encounters, items, and items that name a clinician, among the encounters given. */
  readonly encounters: number;
  readonly items: number;
  readonly itemsWithClinician: number;
}

/**
 * What the reputation of one clinician is computed from: integers only, so that however the orders are counted (in
 * memory, a chunk at a time, or in SQL) and in whatever order, the same tallies give the same reputation to the bit.
 */
export interface ClinicianTally {
  readonly clinicianKey: string;
  /** Orders with a consensus to compare with (their encounter's primary complaint concept has other encounters). */
  readonly orders: number;
  /** Encounters in which they ordered anything, and of those, how many returned within 72 hours. */
  readonly encounters: number;
  readonly returns: number;
  /**
   * Per primary complaint concept: the sum over their orders there of the other encounters of the concept that
   * received the item too. Divided by the concept's encounters − 1, summed over the concepts: their agreement sum.
   */
  readonly agreementCounts: ReadonlyMap<string, number>;
}

/** Everything `summarizeReputation` needs, from one pass (in memory) or a few aggregating queries (SQL). */
export interface ReputationTallies {
  /** Every clinician named on an item of the cohort, in any order. */
  readonly clinicians: readonly ClinicianTally[];
  /** Encounters per primary complaint concept. */
  readonly conceptSizes: ReadonlyMap<string, number>;
  readonly encounters: number;
  readonly items: number;
  readonly itemsWithClinician: number;
}

interface Tally {
  orders: number;
  agreementCounts: Map<string, number>;
  encounters: number;
  returns: number;
}

function byKey<T>(entries: Iterable<readonly [string, T]>): (readonly [string, T])[] {
  return [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The reputations and summary of these tallies: floating-point sums in key order (concepts, then clinicians), so
 * that the result depends on the tallies alone.
 */
export function summarizeReputation(tallies: ReputationTallies, options: ReputationOptions = defaultReputationOptions): ReputationSummary {
  const clinicians = [...tallies.clinicians].sort((x, y) => (x.clinicianKey < y.clinicianKey ? -1 : x.clinicianKey > y.clinicianKey ? 1 : 0));
  const agreementSums = clinicians.map((tally) => {
    let sum = 0;
    for (const [concept, count] of byKey(tally.agreementCounts)) sum += count / (tallies.conceptSizes.get(concept)! - 1);
    return sum;
  });
  let orders = 0;
  let agreementSum = 0;
  let clinicianEncounters = 0;
  let returns = 0;
  clinicians.forEach((tally, index) => {
    orders += tally.orders;
    agreementSum += agreementSums[index]!;
    clinicianEncounters += tally.encounters;
    returns += tally.returns;
  });
  const meanAgreement = orders === 0 ? null : agreementSum / orders;
  const meanReturnRate72h = clinicianEncounters === 0 ? null : returns / clinicianEncounters;

  const reputations = clinicians.map((tally, index): ClinicianReputation => {
    const tallySum = agreementSums[index]!;
    const priorAgreement = meanAgreement ?? 0;
    const agreement = (tallySum + options.agreementPriorOrders * priorAgreement) / (tally.orders + options.agreementPriorOrders);
    const priorReturn = meanReturnRate72h ?? 0;
    const returnRate72h = (tally.returns + options.returnPriorEncounters * priorReturn) / (tally.encounters + options.returnPriorEncounters);
    const agreementRatio = meanAgreement === null || meanAgreement === 0 ? 1 : agreement / meanAgreement;
    const returnRatio = meanReturnRate72h === null || meanReturnRate72h === 1 ? 1 : (1 - returnRate72h) / (1 - meanReturnRate72h);
    const weight = Math.min(options.maxWeight, Math.max(options.minWeight, agreementRatio * returnRatio));
    return {
      clinicianKey: tally.clinicianKey,
      orders: tally.orders,
      encounters: tally.encounters,
      rawAgreement: tally.orders === 0 ? null : tallySum / tally.orders,
      agreement,
      returnRate72h,
      weight,
    };
  });
  return {
    clinicians: reputations,
    meanAgreement,
    meanReturnRate72h,
    encounters: tallies.encounters,
    items: tallies.items,
    itemsWithClinician: tallies.itemsWithClinician,
  };
}

/** One reputation per clinician named in the encounters' items, sorted by clinician key. */
export function computeReputation(encounters: readonly ReputationEncounter[], options: ReputationOptions = defaultReputationOptions): ReputationSummary {
  const accumulator = new ReputationAccumulator(options);
  for (const encounter of encounters) accumulator.addToConsensus(encounter);
  for (const encounter of encounters) accumulator.addToTallies(encounter);
  return accumulator.finish();
}

/**
 * `computeReputation` in two streamed passes, so that a cohort too large for memory can be read a chunk at a time:
 * first every encounter into the consensus of its complaint concept (`addToConsensus`), then, in the same order,
 * the encounters into the clinicians' tallies (`addToTallies`). An encounter without a clinician adds nothing to the
 * tallies, so the second pass may skip it, and may give only the items that name a clinician. Memory grows with
 * the complaint concepts × items and with the clinicians, never with the encounters.
 */
export class ReputationAccumulator {
  /** Consensus per complaint concept: how many encounters, and how many received each item. */
  private readonly concepts = new Map<string, { size: number; items: Map<string, number> }>();
  private readonly tallies = new Map<string, Tally>();
  private encounters = 0;
  private items = 0;
  private itemsWithClinician = 0;
  private tallying = false;

  constructor(private readonly options: ReputationOptions = defaultReputationOptions) {}

  /** Pass 1: every encounter of the cohort, each once. */
  addToConsensus(encounter: Pick<ReputationEncounter, 'complaintConcepts' | 'items'>): void {
    if (this.tallying) throw new Error('The consensus is complete once the tallies have begun');
    this.encounters += 1;
    this.items += encounter.items.length;
    const concept = primaryConcept(encounter.complaintConcepts);
    if (concept === null) return;
    let group = this.concepts.get(concept);
    if (!group) this.concepts.set(concept, (group = { size: 0, items: new Map() }));
    group.size += 1;
    for (const code of new Set(encounter.items.map((item) => item.itemCode))) group.items.set(code, (group.items.get(code) ?? 0) + 1);
  }

  /** Pass 2: the encounters again, in the order of pass 1; those without a clinician may be left out. */
  addToTallies(encounter: ReputationEncounter): void {
    this.tallying = true;
    const clinicians = encounter.clinicianByItem;
    if (!clinicians || clinicians.size === 0) return;
    const concept = primaryConcept(encounter.complaintConcepts);
    const group = concept === null ? undefined : this.concepts.get(concept);
    const seenHere = new Set<string>();
    for (const { itemCode } of encounter.items) {
      const clinician = clinicians.get(itemCode);
      if (clinician === undefined) continue;
      this.itemsWithClinician += 1;
      let tally = this.tallies.get(clinician);
      if (!tally) this.tallies.set(clinician, (tally = { orders: 0, agreementCounts: new Map(), encounters: 0, returns: 0 }));
      if (!seenHere.has(clinician)) {
        seenHere.add(clinician);
        tally.encounters += 1;
        if (encounter.returned72h) tally.returns += 1;
      }
      if (group && group.size >= 2) {
        // Leave this encounter out: the other encounters of the complaint that received the item (÷ size − 1 at the end).
        tally.orders += 1;
        tally.agreementCounts.set(concept!, (tally.agreementCounts.get(concept!) ?? 0) + (group.items.get(itemCode) ?? 1) - 1);
      }
    }
  }

  /** The summary of both passes. */
  finish(): ReputationSummary {
    return summarizeReputation(
      {
        clinicians: [...this.tallies].map(([clinicianKey, tally]) => ({ clinicianKey, ...tally })),
        conceptSizes: new Map([...this.concepts].map(([concept, group]) => [concept, group.size])),
        encounters: this.encounters,
        items: this.items,
        itemsWithClinician: this.itemsWithClinician,
      },
      this.options,
    );
  }
}

/**
 * The encounters with each item's `weight` set to the reputation weight of the clinician who ordered it there
 * (1 for an item without a known clinician): what an InMemoryCohortSource sums under `clinician-reputation`.
 */
export function withReputationWeights<T extends ReputationEncounter & { readonly items: readonly object[] }>(
  encounters: readonly T[],
  reputations: readonly Pick<ClinicianReputation, 'clinicianKey' | 'weight'>[],
): T[] {
  const weights = new Map(reputations.map((reputation) => [reputation.clinicianKey, reputation.weight]));
  return encounters.map((encounter) => {
    const clinicians = encounter.clinicianByItem;
    if (!clinicians || clinicians.size === 0) return encounter;
    return {
      ...encounter,
      items: encounter.items.map((item) => {
        const clinician = clinicians.get((item as { itemCode: string }).itemCode);
        return clinician === undefined ? item : { ...item, weight: weights.get(clinician) ?? 1 };
      }),
    };
  });
}
