/**
 * Feedback checked against the card it names (https://cds-hooks.hl7.org/2.0/#feedback): an accepted suggestion
 * must be one of the card's, and an override reason "from the overrideReasons of the card". Pure: the issued
 * cards come from the caller.
 */

export interface OfferedCoding {
  readonly system?: string;
  readonly code: string;
  readonly display?: string;
}

/** What the service remembers of an issued card, as far as feedback is concerned. */
export interface IssuedCardOffer {
  readonly suggestionUuids: readonly string[];
  readonly overrideReasons: readonly OfferedCoding[];
}

/** A feedback entry as the request schema reads it. */
export interface FeedbackEntry {
  readonly card: string;
  readonly acceptedSuggestions?: ReadonlyArray<{ readonly id: string }> | undefined;
  readonly overrideReason?: { readonly reason?: OfferedCoding | undefined; readonly userComment?: string | undefined } | undefined;
}

export interface FeedbackProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * Whether a reason the client sent is one the card offered: same code, and the same system when the client
 * names one (the request schema reads a Coding without system leniently).
 */
export function isOfferedReason(reason: OfferedCoding, offered: readonly OfferedCoding[]): boolean {
  return offered.some((candidate) => candidate.code === reason.code && (reason.system === undefined || reason.system === candidate.system));
}

/** Problems of each entry against its card; cards not in `issued` are the caller's 404, not checked here. */
export function findFeedbackProblems(entries: readonly FeedbackEntry[], issued: ReadonlyMap<string, IssuedCardOffer>): FeedbackProblem[] {
  const problems: FeedbackProblem[] = [];
  entries.forEach((entry, index) => {
    const card = issued.get(entry.card);
    if (!card) return;
    const suggestions = new Set(card.suggestionUuids);
    (entry.acceptedSuggestions ?? []).forEach((accepted, suggestionIndex) => {
      if (!suggestions.has(accepted.id)) {
        problems.push({
          path: `feedback.${index}.acceptedSuggestions.${suggestionIndex}.id`,
          message: `card ${entry.card} has no suggestion ${accepted.id}`,
        });
      }
    });
    const reason = entry.overrideReason?.reason;
    if (reason !== undefined && !isOfferedReason(reason, card.overrideReasons)) {
      const offered = card.overrideReasons.map((candidate) => candidate.code);
      problems.push({
        path: `feedback.${index}.overrideReason.reason`,
        message:
          offered.length === 0
            ? `card ${entry.card} offered no override reasons; send a userComment instead`
            : `card ${entry.card} offered the override reasons ${offered.join(', ')}, not ${reason.code}`,
      });
    }
  });
  return problems;
}
