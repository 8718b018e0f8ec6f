import type { CohortSelection } from '../cohort/matching.js';
import { relaxationDescriptions, type Rules } from '../cohort/rules.js';
import { proportion } from '../cohort/statistics.js';
import type { BaselineStatistics, CohortCriteria, PatientFacts } from '../cohort/types.js';
import type { Action, Card, CardKind, Link } from './card.js';
import { describeCountNoise, displayedStatistics } from './count-noise.js';
import { escapeMarkdown, fitSummary, formatDuration, formatPercent, markdownTable } from './format.js';
import { rankItems, type RankedItem, type RankingFactor } from './item-ranking.js';
import { acceptanceFactor, estimateAcceptance, evidenceKey, type AcceptanceEvidence, type AcceptanceEstimate } from '../feedback/acceptance.js';

/** Everything a card builder needs; all of it plain data, so the same input gives the same JSON. */
export interface CardContext {
  readonly facts: PatientFacts;
  readonly selection: CohortSelection;
  readonly baseline: BaselineStatistics;
  readonly rules: Rules;
  readonly rulesVersion: number;
  readonly patientId: string;
  readonly encounterId: string | undefined;
  /** Deterministic uuid for a name (e.g. "workup" or "workup/lab:50912"). */
  readonly uuidFor: (name: string) => string;
  /** Display of a complaint concept id. */
  readonly conceptDisplay: (concept: string) => string;
  /** A link to the page that explains this card's cohort, when the service offers one. */
  readonly explanationLink?: (kind: CardKind) => Link | undefined;
  /**
   * Key of the noise on displayed counts (rules `countNoise`; count-noise.ts), so that the same cohort shows the
   * same counts in every process; without it a random key of this process is used.
   */
  readonly countNoiseKey?: string;
  /** Feedback outcomes per complaint concept and item (rules `feedbackRanking`); none: no evidence yet. */
  readonly acceptance?: AcceptanceEvidence;
}

/**
 * The context with the cohort's counts as cards show them: noisy under the rules' `countNoise`, unchanged
 * otherwise. Every number, share and interval on a card is computed from these, so they agree with each other.
 */
function withDisplayedCounts(context: CardContext): CardContext {
  const { countNoise } = context.rules;
  if (countNoise.kind === 'none') return context;
  const statistics = displayedStatistics(context.selection.statistics, context.selection.plan.criteria, countNoise, context.countNoiseKey);
  return { ...context, selection: { ...context.selection, statistics } };
}

const serviceName = 'Cohort CDS';

/** Source label: who says it, on how many visits, under which rules (CDS Hooks 2.0 §Source). */
function sourceLabel(context: CardContext): string {
  // Joined: a flat string, kept by every template of the card cache (a template literal keeps a tree of concatenations).
  return [serviceName, ' · ', String(context.selection.statistics.size), ' similar ED visits · rules v', String(context.rulesVersion)].join('');
}

/** A list in words: "a", "a or b", "a, b or c". */
function wordList(values: readonly string[], conjunction: string): string {
  return values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} ${conjunction} ${values.at(-1)}`;
}

/** The ICD-10 part: which codes or categories, and how much of them a similar visit shares. */
function describeIcd10(icd10: NonNullable<CohortCriteria['icd10']>): string {
  const codes = [...new Set(icd10.codes.map((code) => (icd10.level === 'category' ? code.slice(0, 3) : code)))];
  const shown = codes.slice(0, 6).map(escapeMarkdown).join(', ') + (codes.length > 6 ? ` and ${codes.length - 6} more` : '');
  const noun = icd10.level === 'category' ? 'ICD-10 category' : 'ICD-10 code';
  const plural = icd10.level === 'category' ? 'categories' : 'codes';
  switch (icd10.overlap.measure) {
    case 'any':
      return `${noun} ${shown}`;
    case 'all':
      return codes.length === 1 ? `${noun} ${shown}` : `all of ICD-10 ${plural} ${shown}`;
    case 'jaccard':
      return `ICD-10 ${plural} ${shown} with at least ${formatPercent(icd10.overlap.atLeast)} in common (shared ÷ all ${plural} of both visits)`;
  }
}

/** Who counts as similar, in words, with the relaxation applied. */
export function describeCohortCriteria(context: CardContext): string {
  const { criteria, relaxation } = context.selection.plan;
  const parts: string[] = [];
  if (criteria.sex !== null) parts.push(criteria.sex);
  if (criteria.ageMin !== null && criteria.ageMax !== null) parts.push(`age ${criteria.ageMin}–${criteria.ageMax}`);
  if (criteria.acuity !== null) {
    const { min, max } = criteria.acuity;
    parts.push(`triage acuity ESI ${min === max ? min : `${min}–${max}`}`);
  }
  if (criteria.complaintConcept !== null) {
    const concepts = [criteria.complaintConcept, ...criteria.otherComplaintConcepts];
    parts.push(`chief complaint ${wordList(concepts.map((concept) => escapeMarkdown(context.conceptDisplay(concept).toLowerCase())), 'or')}`);
  }
  if (criteria.icd10 !== null) parts.push(describeIcd10(criteria.icd10));
  if (criteria.sites !== null) {
    parts.push(`${criteria.sites.length === 1 ? 'site' : 'sites'} ${wordList(criteria.sites.map(escapeMarkdown), 'or')}`);
  }
  if (criteria.lookback !== null) {
    const { years, referenceYear } = criteria.lookback;
    if (referenceYear === null) parts.push(years === 1 ? 'visits of the latest year on record' : `visits of the last ${years} years on record`);
    // The window is a lower bound: whatever the caller left in after the reference year stays (see CohortCriteria).
    else parts.push(`visits since ${referenceYear - years + 1}`);
  }
  const relaxed =
    relaxation.length === 0
      ? 'No relaxation was needed.'
      : `Relaxed to reach ${context.rules.minCohortSize} visits: ${relaxation.map((step) => relaxationDescriptions[step]).join('; ')}.`;
  return `Similar visits: ${parts.join(', ')}. ${relaxed}`;
}

/**
 * One card as far as its cohort decides it: everything but what is particular to the call (the uuids, which the
 * hookInstance decides, the patient and encounter in the suggested orders, and the explanation link). The same
 * cohort, rules and draft orders give the same template, so a template can serve every call that has them
 * (CohortCardCache); `personalize` finishes it.
 */
export interface CardTemplate {
  readonly kind: CardKind;
  readonly summary: string;
  readonly detail: string;
  readonly indicator: Card['indicator'];
  readonly sourceLabel: string;
  readonly suggestions: readonly SuggestionTemplate[];
  readonly overrideReasons: Card['overrideReasons'];
  readonly suggestedItemCodes: readonly string[];
  readonly suggestedItemDisplays: readonly string[];
}

/** What a suggestion orders, the same for every cohort that suggests the item: one object per item (`suggestedOrder`). */
interface SuggestedOrder {
  /** The name its uuid is derived from. */
  readonly uuidName: string;
  readonly label: string;
  readonly medication: boolean;
  /** The CodeableConcept ordered: shared by every call, never changed. */
  readonly concept: Readonly<Record<string, unknown>>;
}

/** One suggestion without its uuid and without the patient its draft order is for. */
interface SuggestionTemplate {
  readonly order: SuggestedOrder;
  /** The cohort's share, which makes it particular to the template. */
  readonly description: string;
}

/** What a template needs to become the call's card. */
export type CallContext = Pick<CardContext, 'uuidFor' | 'patientId' | 'encounterId' | 'explanationLink'>;

function orderResource(suggestion: SuggestedOrder, call: CallContext): Record<string, unknown> {
  const subject = { reference: `Patient/${call.patientId}` };
  const resource: Record<string, unknown> = suggestion.medication
    ? { resourceType: 'MedicationRequest', status: 'draft', intent: 'proposal', medicationCodeableConcept: suggestion.concept, subject }
    : { resourceType: 'ServiceRequest', status: 'draft', intent: 'proposal', code: suggestion.concept, subject };
  if (call.encounterId) resource['encounter'] = { reference: `Encounter/${call.encounterId}` };
  return resource;
}

/**
 * The card of one call, its fields in the order of the response schema (`cardSchema` in hooks/cds-hooks.schema.ts:
 * uuid, summary, detail, indicator, source, suggestions, selectionBehavior, overrideReasons, links; actions as type,
 * resource, description), so that JSON.stringify of a response gives the bytes the schema-checked serialization gave.
 */
function personalizeCard(template: CardTemplate, call: CallContext): BuiltCard {
  const card: { -readonly [Field in keyof Card]: Card[Field] } = {
    uuid: call.uuidFor(template.kind),
    summary: template.summary,
    detail: template.detail,
    indicator: template.indicator,
    source: { label: template.sourceLabel },
  };
  if (template.suggestions.length > 0) {
    card.suggestions = template.suggestions.map((suggestion) => {
      const { order } = suggestion;
      const action: Action = { type: 'create', resource: orderResource(order, call), description: suggestion.description };
      return { label: order.label, uuid: call.uuidFor(order.uuidName), actions: [action] };
    });
    card.selectionBehavior = 'any';
  }
  if (template.overrideReasons !== undefined) card.overrideReasons = template.overrideReasons;
  const link = call.explanationLink?.(template.kind);
  if (link) card.links = [link];
  return { kind: template.kind, card, suggestedItemCodes: template.suggestedItemCodes, suggestedItemDisplays: template.suggestedItemDisplays };
}

/** The cards of one call from the templates of its cohort. */
export function personalize(templates: readonly CardTemplate[], call: CallContext): BuiltCard[] {
  return templates.map((template) => personalizeCard(template, call));
}

function itemLine(ranked: RankedItem): string {
  return `${ranked.item.display} ${formatPercent(ranked.share)}`;
}

function itemRows(items: readonly RankedItem[], cohortSize: number, acceptance: ((ranked: RankedItem) => AcceptanceEstimate) | null): string[][] {
  return items.map((ranked) => [
    escapeMarkdown(ranked.item.display),
    `${formatPercent(ranked.share)} (${ranked.item.encounters} of ${cohortSize})`,
    formatPercent(ranked.baselineShare),
    `${ranked.lift.toFixed(1)}×`,
    ...(acceptance ? [acceptanceCell(acceptance(ranked))] : []),
  ]);
}

/** The observed rate once there is enough evidence; the prior's smoothing is for ranking, not for display. */
function acceptanceCell(estimate: AcceptanceEstimate): string {
  return estimate.enough && estimate.observedRate !== null ? `${formatPercent(estimate.observedRate)} of ${estimate.outcomes}` : '–';
}

/** Acceptance of each item for the cohort's complaint, under rules `feedbackRanking`; null when it is off. */
function acceptanceRanking(context: CardContext): { estimate: (ranked: RankedItem) => AcceptanceEstimate; factor: RankingFactor } | null {
  const options = context.rules.feedbackRanking;
  if (options.kind === 'none') return null;
  const concept = context.selection.plan.criteria.complaintConcept;
  const evidence = context.acceptance;
  const countsOf = (itemCode: string) => (concept === null || evidence === undefined ? undefined : evidence.get(evidenceKey(concept, itemCode)));
  return {
    estimate: (ranked) => estimateAcceptance(countsOf(ranked.item.itemCode), options),
    factor: (item) => acceptanceFactor(countsOf(item.itemCode), options),
  };
}

/** Most orders kept by `suggestedOrder`: far more than the distinct items of a cohort database (hundreds). */
const maximumSharedOrders = 10_000;
const sharedOrders = new Map<string, SuggestedOrder>();

/**
 * What a suggestion of this kind orders for this item, one object shared by every template that suggests it: a card
 * cache of thousands of templates would otherwise hold its own label, uuid name and concept (five objects and strings)
 * per suggestion for the collector to mark. Never changed (orderResource puts the concept into the call's resource as
 * it is). Emptied when full, which only costs new objects.
 */
function suggestedOrder(kind: CardKind, item: RankedItem['item']): SuggestedOrder {
  // Joined, not a template literal: a flat string rather than a tree of concatenations.
  const key = [kind, item.itemCode, item.kind, item.codeSystem ?? '', item.code ?? '', item.display].join('\u0000');
  let order = sharedOrders.get(key);
  if (order === undefined) {
    const medication = item.kind === 'medication';
    const coding = item.codeSystem && item.code ? [{ system: item.codeSystem, code: item.code, display: item.display }] : undefined;
    order = {
      uuidName: [kind, item.itemCode].join('/'),
      label: [medication ? 'Give' : 'Order', item.display].join(' '),
      medication,
      concept: coding ? { coding, text: item.display } : { text: item.display },
    };
    if (sharedOrders.size >= maximumSharedOrders) sharedOrders.clear();
    sharedOrders.set(key, order);
  }
  return order;
}

/** The rules' override reasons as the cards carry them (code, system, display), once per rules object. */
const cardOverrideReasons = new WeakMap<Rules['overrideReasons'], NonNullable<Card['overrideReasons']>>();

function overrideReasonsOf(rules: Rules): Card['overrideReasons'] {
  const reasons = rules.overrideReasons;
  if (reasons.length === 0) return undefined;
  let codings = cardOverrideReasons.get(reasons);
  if (codings === undefined) cardOverrideReasons.set(reasons, (codings = reasons.map(({ code, system, display }) => ({ code, system, display }))));
  return codings;
}

function suggestionTemplates(kind: CardKind, items: readonly RankedItem[], size: number): SuggestionTemplate[] {
  return items.map((ranked) => {
    const order = suggestedOrder(kind, ranked.item);
    const verb = order.medication ? 'Prescribe' : 'Order';
    // Joined: one flat string per template rather than a tree of concatenations for the collector to walk.
    return { order, description: [verb, ' ', ranked.item.display, ' (', formatPercent(ranked.share), ' of ', String(size), ' similar visits)'].join('') };
  });
}

function itemCardTemplate(context: CardContext, kind: 'workup' | 'treatment'): CardTemplate | null {
  const { statistics } = context.selection;
  const acceptance = acceptanceRanking(context);
  const ranking = rankItems(
    statistics.items,
    kind,
    statistics.size,
    context.baseline,
    context.rules,
    context.facts.draftOrders,
    acceptance ? [acceptance.factor] : [],
  );
  if (ranking.distinctive.length === 0 && ranking.routine.length === 0) return null;
  const noun = kind === 'workup' ? 'Workup' : 'Treatment';
  const headline = ranking.distinctive.length > 0 ? ranking.distinctive : ranking.routine;
  // Three items fit a summary line; the detail and the suggestions hold the rest.
  const summary = fitSummary(`${noun} in ${statistics.size} similar visits: ${headline.slice(0, 3).map(itemLine).join(', ')}`);
  const sections: string[] = [describeCohortCriteria(context)];
  if (ranking.distinctive.length > 0) {
    sections.push(
      markdownTable(
        ['Item', 'Similar visits', 'All visits', 'Lift', ...(acceptance ? ['Accepted by clinicians'] : [])],
        itemRows(ranking.distinctive, statistics.size, acceptance?.estimate ?? null),
      ),
    );
  }
  if (ranking.routine.length > 0) {
    sections.push(`Routine in nearly every ED visit: ${ranking.routine.map((ranked) => escapeMarkdown(itemLine(ranked))).join(', ')}.`);
  }
  if (ranking.alreadyOrdered.length > 0) {
    sections.push(`Already ordered: ${ranking.alreadyOrdered.map((ranked) => escapeMarkdown(itemLine(ranked))).join(', ')}.`);
  }
  sections.push(`Items given to fewer than ${context.rules.minCellSize} visits are not shown.`);
  if (context.rules.feedbackRanking.kind === 'beta') {
    sections.push(
      `Order: lift adjusted by how often clinicians accepted each suggestion for this complaint; a rate is shown from ${context.rules.feedbackRanking.minOutcomes} answers on.`,
    );
  }
  const noise = describeCountNoise(context.rules.countNoise);
  if (noise) sections.push(noise);
  return {
    kind,
    summary,
    detail: sections.join('\n\n'),
    indicator: 'info',
    sourceLabel: sourceLabel(context),
    suggestions: suggestionTemplates(kind, ranking.distinctive, statistics.size),
    // CDS Hooks Codings, in the order of the response schema (code, system, display).
    overrideReasons: overrideReasonsOf(context.rules),
    suggestedItemCodes: ranking.distinctive.map((ranked) => ranked.item.itemCode),
    suggestedItemDisplays: ranking.distinctive.map((ranked) => ranked.item.display),
  };
}

function itemCard(context: CardContext, kind: 'workup' | 'treatment'): BuiltCard | null {
  const template = itemCardTemplate(context, kind);
  return template === null ? null : personalizeCard(template, context);
}

/** Workup card: the labs and imaging that set similar visits apart, with one-click orders. */
export function buildWorkupCard(context: CardContext): Card | null {
  return itemCard(withDisplayedCounts(context), 'workup')?.card ?? null;
}

/** Treatment card: the medications and procedures given in similar visits, by ingredient. */
export function buildTreatmentCard(context: CardContext): Card | null {
  return itemCard(withDisplayedCounts(context), 'treatment')?.card ?? null;
}

/** A rate, or "fewer than N" when its count is a small cell. */
function displayRate(count: number, total: number, minCellSize: number, withInterval: boolean): string {
  if (count > 0 && count < minCellSize) return `fewer than ${minCellSize} visits`;
  const rate = proportion(count, total);
  const interval = withInterval ? ` (95% CI ${Math.round(rate.lower * 100)}–${formatPercent(rate.upper)})` : '';
  return `${formatPercent(rate.rate)}${interval}`;
}

/** Prognosis card: admission with its confidence interval, lengths of stay, 72-hour returns. */
export function buildPrognosisCard(context: CardContext): Card {
  return personalizeCard(prognosisTemplate(withDisplayedCounts(context)), context).card;
}

function prognosisTemplate(context: CardContext): CardTemplate {
  const { statistics } = context.selection;
  const { outcomes, size } = statistics;
  const { rules } = context;
  const admission = displayRate(outcomes.admitted, size, rules.minCellSize, true);
  const returns = displayRate(outcomes.returned72h, size, rules.minCellSize, false);
  const warn = outcomes.admitted / size >= rules.admissionWarningRate || outcomes.returned72h / size >= rules.returnWarningRate;
  const rows: string[][] = [
    ['Admitted', `${admission}`],
    ['Returned to the ED within 72 h', returns],
  ];
  if (outcomes.edLosMedianMinutes !== null && outcomes.edLosKnown >= rules.minCellSize) {
    rows.push(['Median time in the ED', formatDuration(outcomes.edLosMedianMinutes)]);
  }
  if (outcomes.hospitalLosMedianMinutes !== null && outcomes.hospitalLosKnown >= rules.minCellSize) {
    rows.push(['Median hospital stay when admitted', formatDuration(outcomes.hospitalLosMedianMinutes)]);
  }
  const summary = fitSummary(`${size} similar visits: admitted ${admission}; 72-h return ${returns}`);
  const thresholds = `Warning at admission ≥ ${formatPercent(rules.admissionWarningRate)} or 72-h return ≥ ${formatPercent(rules.returnWarningRate)}.`;
  const noise = describeCountNoise(rules.countNoise);
  return {
    kind: 'prognosis',
    summary,
    detail: [describeCohortCriteria(context), markdownTable(['Outcome', `${size} similar visits`], rows), thresholds, ...(noise ? [noise] : [])].join('\n\n'),
    indicator: warn ? 'warning' : 'info',
    sourceLabel: sourceLabel(context),
    suggestions: [],
    overrideReasons: undefined,
    suggestedItemCodes: [],
    suggestedItemDisplays: [],
  };
}

/** A card with what it was built from, for the record of issued cards. */
export interface BuiltCard {
  readonly kind: CardKind;
  readonly card: Card;
  /** Item codes of the card's suggestions, in order. */
  readonly suggestedItemCodes: readonly string[];
  /** Their displays, same order (for the feedback overview). */
  readonly suggestedItemDisplays: readonly string[];
}

/**
 * The cards for a selected cohort, workup first; none when the cohort is below the minimum size, counted as the
 * cards would show it (with noise on, a cohort just at the minimum may show fewer, and then gets no card).
 */
export function buildCohortCards(context: CardContext): BuiltCard[] {
  return personalize(cohortCardTemplates(context), context);
}

/** The templates of buildCohortCards: what the cohort, the rules and the draft orders decide. */
export function cohortCardTemplates(context: CardContext): CardTemplate[] {
  if (context.selection.statistics.size < context.rules.minCohortSize) return [];
  const shown = withDisplayedCounts(context);
  if (shown.selection.statistics.size < shown.rules.minCohortSize) return [];
  const templates: CardTemplate[] = [];
  for (const kind of ['workup', 'treatment'] as const) {
    const template = itemCardTemplate(shown, kind);
    if (template) templates.push(template);
  }
  templates.push(prognosisTemplate(shown));
  return templates;
}
