/**
 * The feedback overview of the admin API and the console (GET /admin/feedback): per item (per complaint concept),
 * per service and per period, how often suggestions were shown, accepted, overridden or passed over, and with
 * which override reasons. Pure: the rows come from db/feedback.repository.ts. Free-text `userComment`s are never
 * part of it: a comment may name the patient, and the overview is for every viewer.
 */
import { itemOutcomesOfCard, type CardFeedback } from './acceptance.js';
import type { OfferedCoding } from './validate-feedback.js';

export type FeedbackBucket = 'day' | 'week';

export interface ShownItemRow {
  readonly serviceId: string;
  readonly complaintConcept: string | null;
  readonly itemCode: string;
  readonly display: string | null;
  readonly shown: number;
}

export interface IssuedPeriodRow {
  readonly serviceId: string;
  /** YYYY-MM-DD: the UTC day, or the Monday of the ISO week. */
  readonly period: string;
  readonly cards: number;
  readonly items: number;
}

export interface CardFeedbackInput {
  readonly serviceId: string;
  readonly complaintConcept: string | null;
  readonly issuedAt: Date;
  readonly suggestionUuids: readonly string[];
  readonly itemCodes: readonly string[];
  readonly itemDisplays: readonly string[];
  readonly feedback: ReadonlyArray<CardFeedback & { readonly reason: OfferedCoding | null }>;
}

export interface ReasonCount {
  readonly system: string | null;
  readonly code: string;
  readonly display: string;
  readonly count: number;
}

export interface OutcomeCounts {
  readonly accepted: number;
  readonly overridden: number;
  readonly notChosen: number;
  /** accepted ÷ (accepted + overridden + not chosen); null without any. */
  readonly acceptanceRate: number | null;
}

export interface FeedbackSummary {
  readonly totals: OutcomeCounts & { readonly cardsShown: number; readonly cardsWithFeedback: number; readonly itemsShown: number };
  readonly services: ReadonlyArray<
    OutcomeCounts & {
      readonly serviceId: string;
      readonly cardsShown: number;
      readonly cardsAccepted: number;
      readonly cardsOverridden: number;
      readonly itemsShown: number;
      readonly overrideReasons: readonly ReasonCount[];
    }
  >;
  readonly items: ReadonlyArray<
    OutcomeCounts & {
      readonly complaintConcept: string | null;
      readonly itemCode: string;
      readonly display: string;
      readonly shown: number;
      readonly overrideReasons: readonly ReasonCount[];
    }
  >;
  readonly periods: ReadonlyArray<
    OutcomeCounts & {
      readonly period: string;
      readonly serviceId: string;
      readonly cardsShown: number;
      readonly cardsAccepted: number;
      readonly cardsOverridden: number;
      readonly itemsShown: number;
    }
  >;
}

/** The start of a date's period, as the SQL side computes it (date_trunc in UTC; weeks start on Monday). */
export function periodOf(date: Date, bucket: FeedbackBucket): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  if (bucket === 'week') day.setUTCDate(day.getUTCDate() - ((day.getUTCDay() + 6) % 7));
  return day.toISOString().slice(0, 10);
}

class Tally {
  accepted = 0;
  overridden = 0;
  notChosen = 0;
  readonly reasons = new Map<string, { system: string | null; code: string; display: string; count: number }>();

  add(outcome: 'accepted' | 'overridden' | 'not-chosen'): void {
    if (outcome === 'accepted') this.accepted += 1;
    else if (outcome === 'overridden') this.overridden += 1;
    else this.notChosen += 1;
  }

  addReason(reason: OfferedCoding): void {
    const key = `${reason.system ?? ''}|${reason.code}`;
    const entry = this.reasons.get(key) ?? { system: reason.system ?? null, code: reason.code, display: reason.display ?? reason.code, count: 0 };
    entry.count += 1;
    this.reasons.set(key, entry);
  }

  outcomes(): OutcomeCounts {
    const total = this.accepted + this.overridden + this.notChosen;
    return { accepted: this.accepted, overridden: this.overridden, notChosen: this.notChosen, acceptanceRate: total > 0 ? this.accepted / total : null };
  }

  reasonCounts(): ReasonCount[] {
    return [...this.reasons.values()].sort((a, b) => b.count - a.count || a.code.localeCompare(b.code));
  }
}

/** Distinct reasons of a card's overridden feedback (a retried entry counts once). */
function overrideReasonsOf(card: CardFeedbackInput): OfferedCoding[] {
  const seen = new Map<string, OfferedCoding>();
  for (const entry of card.feedback) {
    if (entry.outcome === 'overridden' && entry.reason) seen.set(`${entry.reason.system ?? ''}|${entry.reason.code}`, entry.reason);
  }
  return [...seen.values()];
}

/** Builds the overview from the shown counts, the cards per period and the cards that got feedback (same window). */
export function summarizeFeedback(input: {
  readonly shownItems: readonly ShownItemRow[];
  readonly issuedPeriods: readonly IssuedPeriodRow[];
  readonly cards: readonly CardFeedbackInput[];
  readonly bucket: FeedbackBucket;
}): FeedbackSummary {
  const itemKey = (concept: string | null, itemCode: string) => `${concept ?? ''}\u0000${itemCode}`;
  const items = new Map<string, { concept: string | null; itemCode: string; display: string; shown: number; tally: Tally }>();
  const itemEntry = (concept: string | null, itemCode: string, display: string | null) => {
    const key = itemKey(concept, itemCode);
    let entry = items.get(key);
    if (!entry) {
      entry = { concept, itemCode, display: display ?? itemCode, shown: 0, tally: new Tally() };
      items.set(key, entry);
    }
    if (entry.display === itemCode && display) entry.display = display;
    return entry;
  };
  const services = new Map<string, { cardsShown: number; itemsShown: number; cardsAccepted: number; cardsOverridden: number; tally: Tally }>();
  const serviceEntry = (serviceId: string) => {
    let entry = services.get(serviceId);
    if (!entry) {
      entry = { cardsShown: 0, itemsShown: 0, cardsAccepted: 0, cardsOverridden: 0, tally: new Tally() };
      services.set(serviceId, entry);
    }
    return entry;
  };
  const periods = new Map<string, { period: string; serviceId: string; cardsShown: number; itemsShown: number; cardsAccepted: number; cardsOverridden: number; tally: Tally }>();
  const periodEntry = (period: string, serviceId: string) => {
    const key = `${period}\u0000${serviceId}`;
    let entry = periods.get(key);
    if (!entry) {
      entry = { period, serviceId, cardsShown: 0, itemsShown: 0, cardsAccepted: 0, cardsOverridden: 0, tally: new Tally() };
      periods.set(key, entry);
    }
    return entry;
  };

  for (const row of input.shownItems) itemEntry(row.complaintConcept, row.itemCode, row.display).shown += row.shown;
  for (const row of input.issuedPeriods) {
    const service = serviceEntry(row.serviceId);
    service.cardsShown += row.cards;
    service.itemsShown += row.items;
    const period = periodEntry(row.period, row.serviceId);
    period.cardsShown += row.cards;
    period.itemsShown += row.items;
  }

  const total = new Tally();
  for (const card of input.cards) {
    const service = serviceEntry(card.serviceId);
    const period = periodEntry(periodOf(card.issuedAt, input.bucket), card.serviceId);
    const accepted = card.feedback.some((entry) => entry.outcome === 'accepted');
    const overridden = !accepted && card.feedback.some((entry) => entry.outcome === 'overridden');
    if (accepted) {
      service.cardsAccepted += 1;
      period.cardsAccepted += 1;
    }
    if (overridden) {
      service.cardsOverridden += 1;
      period.cardsOverridden += 1;
    }
    const reasons = overrideReasonsOf(card);
    for (const reason of reasons) service.tally.addReason(reason);
    itemOutcomesOfCard(card, card.feedback).forEach(({ itemCode, outcome }, index) => {
      if (outcome === null) return;
      const item = itemEntry(card.complaintConcept, itemCode, card.itemDisplays[index] ?? null);
      item.tally.add(outcome);
      if (outcome === 'overridden') for (const reason of reasons) item.tally.addReason(reason);
      service.tally.add(outcome);
      period.tally.add(outcome);
      total.add(outcome);
    });
  }

  const serviceRows = [...services.entries()]
    .map(([serviceId, entry]) => ({
      serviceId,
      cardsShown: entry.cardsShown,
      cardsAccepted: entry.cardsAccepted,
      cardsOverridden: entry.cardsOverridden,
      itemsShown: entry.itemsShown,
      ...entry.tally.outcomes(),
      overrideReasons: entry.tally.reasonCounts(),
    }))
    .sort((a, b) => a.serviceId.localeCompare(b.serviceId));
  return {
    totals: {
      cardsShown: serviceRows.reduce((sum, row) => sum + row.cardsShown, 0),
      cardsWithFeedback: input.cards.length,
      itemsShown: serviceRows.reduce((sum, row) => sum + row.itemsShown, 0),
      ...total.outcomes(),
    },
    services: serviceRows,
    items: [...items.values()]
      .map((entry) => ({
        complaintConcept: entry.concept,
        itemCode: entry.itemCode,
        display: entry.display,
        shown: entry.shown,
        ...entry.tally.outcomes(),
        overrideReasons: entry.tally.reasonCounts(),
      }))
      .sort((a, b) => b.shown - a.shown || (a.complaintConcept ?? '').localeCompare(b.complaintConcept ?? '') || a.itemCode.localeCompare(b.itemCode)),
    periods: [...periods.values()]
      .map((entry) => ({
        period: entry.period,
        serviceId: entry.serviceId,
        cardsShown: entry.cardsShown,
        cardsAccepted: entry.cardsAccepted,
        cardsOverridden: entry.cardsOverridden,
        itemsShown: entry.itemsShown,
        ...entry.tally.outcomes(),
      }))
      .sort((a, b) => a.period.localeCompare(b.period) || a.serviceId.localeCompare(b.serviceId)),
  };
}
