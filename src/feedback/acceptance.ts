/**
 * CDS Hooks feedback as evidence about each suggested item (README "Feedback"). Pure: the counts are loaded in
 * db/feedback.repository.ts and passed in as plain data, so the card builders stay free of the database.
 *
 * What counts, per card and item (https://cds-hooks.hl7.org/2.0/#feedback):
 * - accepted: some `accepted` feedback on the card lists the item's suggestion in `acceptedSuggestions`;
 * - overridden: otherwise, some feedback on the card is `overridden` (the clinician dismissed the whole card);
 * - not chosen: otherwise, the card was accepted for other suggestions only: the item was seen and passed over;
 * - no outcome: the card got no feedback (ignored, or a client that sends none), which says nothing either way.
 * A card counts once per item however many feedback entries it got, so a client that retries cannot add weight.
 */

/** One item's outcomes for one complaint concept. */
export interface ItemOutcomeCounts {
  readonly accepted: number;
  readonly overridden: number;
  readonly notChosen: number;
}

/** Outcomes per (complaint concept, item code), keyed by `evidenceKey`. */
export type AcceptanceEvidence = ReadonlyMap<string, ItemOutcomeCounts>;

export const noAcceptanceEvidence: AcceptanceEvidence = new Map();

/** The key of a complaint concept's item in AcceptanceEvidence. */
export function evidenceKey(complaintConcept: string, itemCode: string): string {
  return `${complaintConcept}\u0000${itemCode}`;
}

/** Accepted, overridden and not chosen together: the times the item was acted on. */
export function outcomeCount(counts: ItemOutcomeCounts): number {
  return counts.accepted + counts.overridden + counts.notChosen;
}

/** The Beta prior and the threshold of `feedbackRanking: beta` (src/cohort/rules.ts). */
export interface AcceptancePrior {
  /** Prior mean: the acceptance that leaves an item's rank unchanged. */
  readonly priorAcceptance: number;
  /** α + β: how many outcomes the prior is worth. */
  readonly priorStrength: number;
  /** Fewer outcomes than this: no adjustment and no rate shown. */
  readonly minOutcomes: number;
}

export interface AcceptanceEstimate {
  readonly outcomes: number;
  readonly accepted: number;
  /** accepted ÷ outcomes, as observed (null without outcomes). */
  readonly observedRate: number | null;
  /** Posterior mean under Beta(α = m·s, β = (1 − m)·s): (accepted + α) / (outcomes + s). */
  readonly posteriorRate: number;
  /** At least `minOutcomes` outcomes. */
  readonly enough: boolean;
}

/** The smoothed acceptance of an item (counts undefined: no feedback yet, the prior alone). */
export function estimateAcceptance(counts: ItemOutcomeCounts | undefined, prior: AcceptancePrior): AcceptanceEstimate {
  const accepted = counts?.accepted ?? 0;
  const outcomes = counts ? outcomeCount(counts) : 0;
  const alpha = prior.priorAcceptance * prior.priorStrength;
  return {
    outcomes,
    accepted,
    observedRate: outcomes > 0 ? accepted / outcomes : null,
    posteriorRate: (accepted + alpha) / (outcomes + prior.priorStrength),
    enough: outcomes >= prior.minOutcomes,
  };
}

/**
 * The factor on an item's ranking score: posterior ÷ prior mean, so an item accepted as often as the prior
 * expects keeps its rank, and 1 below `minOutcomes`. It lies between s ÷ (n + s) (never accepted in n outcomes)
 * and (n + m·s) ÷ (m·(n + s)) (always accepted): a few clicks move it little, and only past the threshold.
 */
export function acceptanceFactor(counts: ItemOutcomeCounts | undefined, prior: AcceptancePrior): number {
  const estimate = estimateAcceptance(counts, prior);
  return estimate.enough ? estimate.posteriorRate / prior.priorAcceptance : 1;
}

/** What the feedback on one issued card says about each of its items (see the module comment). */
export type ItemOutcome = 'accepted' | 'overridden' | 'not-chosen';

/** One feedback entry reduced to what item outcomes need. */
export interface CardFeedback {
  readonly outcome: 'accepted' | 'overridden';
  readonly acceptedSuggestionIds: readonly string[];
}

/**
 * Each item's outcome on one card, given all feedback for it; null for an item without one. `suggestionUuids`
 * and `itemCodes` are the card's, in the same order.
 */
export function itemOutcomesOfCard(
  card: { readonly suggestionUuids: readonly string[]; readonly itemCodes: readonly string[] },
  feedback: readonly CardFeedback[],
): Array<{ readonly itemCode: string; readonly outcome: ItemOutcome | null }> {
  const accepted = new Set(feedback.filter((entry) => entry.outcome === 'accepted').flatMap((entry) => entry.acceptedSuggestionIds));
  const anyOverridden = feedback.some((entry) => entry.outcome === 'overridden');
  const anyAccepted = feedback.some((entry) => entry.outcome === 'accepted');
  return card.itemCodes.map((itemCode, index) => {
    const uuid = card.suggestionUuids[index];
    let outcome: ItemOutcome | null = null;
    if (uuid !== undefined && accepted.has(uuid)) outcome = 'accepted';
    else if (anyOverridden) outcome = 'overridden';
    else if (anyAccepted) outcome = 'not-chosen';
    return { itemCode, outcome };
  });
}
