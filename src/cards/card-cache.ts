import { cohortCriteriaKey } from '../cohort/cached-source.js';
import type { DraftOrder } from '../cohort/types.js';
import { cohortCardTemplates, describeCohortCriteria, personalize, type BuiltCard, type CardContext, type CardTemplate } from './cohort-cards.js';

/** What a template was built from, compared by identity: new statistics, rules or evidence mean a new template. */
interface Entry {
  readonly statistics: CardContext['selection']['statistics'];
  readonly baseline: CardContext['baseline'];
  readonly rules: CardContext['rules'];
  readonly rulesVersion: number;
  readonly acceptance: CardContext['acceptance'];
  readonly countNoiseKey: string | undefined;
  readonly templates: readonly CardTemplate[];
}

/** Rules by content: the reference data reads the active version again every TTL, as a new but equal object. */
const rulesContent = new WeakMap<CardContext['rules'], string>();

function contentOf(rules: CardContext['rules']): string {
  let content = rulesContent.get(rules);
  if (content === undefined) rulesContent.set(rules, (content = JSON.stringify(rules)));
  return content;
}

/** Draft orders as far as the cards see them (isAlreadyOrdered reads their codes and texts). */
function draftOrdersKey(draftOrders: readonly DraftOrder[]): string {
  return draftOrders.length === 0 ? '' : JSON.stringify(draftOrders.map((order) => [order.codes, order.texts]));
}

/**
 * The card templates of recent cohorts (a bounded LRU), so that the patients who share a cohort share the work of
 * ranking its items and writing its cards; each call still gets its own uuids, orders and links (`personalize`).
 *
 * Keyed by the cohort (its criteria key, which also keys the count noise), the cohort as the cards describe it (which
 * holds the relaxation and the concept displays) and the draft orders. An entry is used only when the call brings the
 * very cohort statistics and baseline objects it was built from (an ingest or an opt-out gives new ones), rules of the
 * same version and content, the same noise key and, when the rules rank by feedback, the same evidence object (a
 * reference reload gives a new one): so the cards are always those buildCohortCards gives.
 */
export class CohortCardCache {
  private readonly entries = new Map<string, Entry>();
  private hits = 0;
  private misses = 0;

  constructor(private readonly maxEntries: number) {}

  /** buildCohortCards(context), from a remembered template when one fits. */
  build(context: CardContext): BuiltCard[] {
    if (this.maxEntries <= 0) return personalize(cohortCardTemplates(context), context);
    // Joined: a flat key (a template literal would keep a tree of concatenations for as long as the entry lives).
    const key = [cohortCriteriaKey(context.selection.plan.criteria), describeCohortCriteria(context), draftOrdersKey(context.facts.draftOrders)].join('\u0000');
    const entry = this.entries.get(key);
    if (entry !== undefined && this.fits(entry, context)) {
      // Re-inserted: most recently used.
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.hits += 1;
      return personalize(entry.templates, context);
    }
    const templates = cohortCardTemplates(context);
    this.misses += 1;
    this.entries.delete(key);
    this.entries.set(key, {
      statistics: context.selection.statistics,
      baseline: context.baseline,
      rules: context.rules,
      rulesVersion: context.rulesVersion,
      acceptance: context.acceptance,
      countNoiseKey: context.countNoiseKey,
      templates,
    });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return personalize(templates, context);
  }

  private fits(entry: Entry, context: CardContext): boolean {
    return (
      entry.statistics === context.selection.statistics &&
      entry.baseline === context.baseline &&
      entry.rulesVersion === context.rulesVersion &&
      (entry.rules === context.rules || contentOf(entry.rules) === contentOf(context.rules)) &&
      // The evidence is read only when the rules rank by feedback (acceptanceRanking in cohort-cards.ts).
      (context.rules.feedbackRanking.kind === 'none' || entry.acceptance === context.acceptance) &&
      entry.countNoiseKey === context.countNoiseKey
    );
  }

  clear(): void {
    this.entries.clear();
  }

  /** Builds answered from a remembered template, and those that made theirs, since the start (as CachedCohortSource.lookups). */
  lookups(): { readonly hits: number; readonly misses: number } {
    return { hits: this.hits, misses: this.misses };
  }

  get size(): number {
    return this.entries.size;
  }
}
