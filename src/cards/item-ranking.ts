import type { Rules } from '../cohort/rules.js';
import type { BaselineStatistics, DraftOrder, ItemCategory, ItemCount } from '../cohort/types.js';
import { reputationFactor } from './reputation-weighting.js';

/** An item with its share of the cohort and of all visits. */
export interface RankedItem {
  readonly item: ItemCount;
  /** Share of the cohort that received it. */
  readonly share: number;
  /** Share of all visits that received it. */
  readonly baselineShare: number;
  /** share / baselineShare: how much more this cohort gets it than visits at large. */
  readonly lift: number;
  /** What the suggestions are ordered by: lift times every ranking factor (lift alone without factors). */
  readonly score: number;
}

/**
 * A multiplicative adjustment of an item's ranking score: 1 leaves it, above 1 raises it. Independent inputs
 * (feedback acceptance, src/feedback/acceptance.ts; others to come) are separate factors and compose by product.
 */
export type RankingFactor = (item: ItemCount) => number;

export interface ItemRanking {
  /** What sets this cohort apart, most distinctive first: the suggestions. */
  readonly distinctive: readonly RankedItem[];
  /** What nearly every visit gets, whatever the complaint: one compact line. */
  readonly routine: readonly RankedItem[];
  /** Items left out because the draft orders already hold them. */
  readonly alreadyOrdered: readonly RankedItem[];
}

function normalizeText(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
}

/** Whether a draft order already asks for this item: same coding, or the same words. */
export function isAlreadyOrdered(item: ItemCount, draftOrders: readonly DraftOrder[]): boolean {
  const coding = item.codeSystem && item.code ? `${item.codeSystem}|${item.code}` : null;
  const display = normalizeText(item.display);
  return draftOrders.some(
    (order) =>
      (coding !== null && order.codes.includes(coding)) ||
      order.texts.some((raw) => {
        const text = normalizeText(raw);
        // A draft "morphine sulfate 4 mg iv" covers the ingredient "morphine", and "ct" alone covers nothing.
        return text.length >= 3 && (text === display || (display.length >= 4 && ` ${text} `.includes(` ${display} `)));
      }),
  );
}

/**
 * Ranks one category of a cohort's items for a card. Only items that pass the small-cell rule and the minimum
 * share are shown; those that are routine across all visits are set apart; the rest are ordered by lift, times
 * the ranking factors when there are any (factors reorder the suggestions; they never make an item eligible).
 */
export function rankItems(
  items: readonly ItemCount[],
  category: ItemCategory,
  cohortSize: number,
  baseline: BaselineStatistics,
  rules: Rules,
  draftOrders: readonly DraftOrder[],
  factors: readonly RankingFactor[] = [],
): ItemRanking {
  const eligible: RankedItem[] = [];
  for (const item of items) {
    if (item.category !== category || item.encounters < rules.minCellSize) continue;
    const share = item.encounters / cohortSize;
    if (share < rules.minItemShare) continue;
    const baselineCount = baseline.items.get(item.itemCode) ?? item.encounters;
    const baselineShare = baseline.size > 0 ? Math.max(baselineCount / baseline.size, Number.EPSILON) : share;
    const lift = share / baselineShare;
    const score = factors.reduce((product, factor) => product * factor(item), lift * reputationFactor(item, rules));
    eligible.push({ item, share, baselineShare, lift, score });
  }
  const alreadyOrdered = eligible.filter((ranked) => isAlreadyOrdered(ranked.item, draftOrders));
  const open = eligible.filter((ranked) => !alreadyOrdered.includes(ranked));
  const byShare = (a: RankedItem, b: RankedItem) => b.share - a.share || a.item.display.localeCompare(b.item.display);
  const routine = open.filter((ranked) => ranked.baselineShare >= rules.routineBaselineShare).sort(byShare);
  const distinctive = open
    .filter((ranked) => ranked.baselineShare < rules.routineBaselineShare)
    .sort((a, b) => b.score - a.score || b.lift - a.lift || byShare(a, b))
    .slice(0, rules.maxItemsPerCard);
  return { distinctive, routine, alreadyOrdered };
}
