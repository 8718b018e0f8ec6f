/**
 * The page behind the link on every card (README "Explanation links"): what the card's cohort is, in words, and
 * the counts behind each percentage, with the same small-cell rule as the cards. Pure: plain data in, HTML out.
 * It names no patient: the signed link carries only the cohort's criteria, and counts below the rules'
 * minCellSize are shown as "fewer than N", exactly as the cards do.
 */
import { z } from 'zod';
import type { CardKind } from '../cards/card.js';
import { formatDuration, formatPercent } from '../cards/format.js';
import { rankItems, type RankedItem } from '../cards/item-ranking.js';
import { relaxationDescriptions, relaxationSteps, type RelaxationStep, type Rules } from '../cohort/rules.js';
import { proportion } from '../cohort/statistics.js';
import type { BaselineStatistics, CohortCriteria, CohortStatistics } from '../cohort/types.js';
import { html, type Html } from './html.js';

const sexes = ['female', 'male', 'other', 'unknown'] as const;

/**
 * The criteria as a link carries them. The link is signed by this service, so this is not a trust boundary;
 * it fills what a link signed by an older release lacks (a field added later defaults to "not constrained", as
 * the rules do) so the SQL never sees an undefined.
 */
const criteriaSchema = z.object({
  sex: z.enum(sexes).nullable().default(null),
  ageMin: z.number().int().nullable().default(null),
  ageMax: z.number().int().nullable().default(null),
  acuity: z.object({ min: z.number().int(), max: z.number().int() }).nullable().default(null),
  complaintConcept: z.string().nullable().default(null),
  otherComplaintConcepts: z.array(z.string()).default([]),
  icd10: z
    .object({
      level: z.enum(['full', 'category']),
      codes: z.array(z.string()),
      overlap: z
        .discriminatedUnion('measure', [
          z.object({ measure: z.literal('any') }),
          z.object({ measure: z.literal('all') }),
          z.object({ measure: z.literal('jaccard'), atLeast: z.number() }),
        ])
        .default({ measure: 'any' }),
    })
    .nullable()
    .default(null),
  sites: z.array(z.string()).nullable().default(null),
  lookback: z.object({ years: z.number().int(), referenceYear: z.number().int().nullable() }).nullable().default(null),
});

/** The payload of an explanation link, checked and completed. */
export const explanationPayloadSchema = z.object({
  serviceId: z.string().max(128),
  kind: z.enum(['workup', 'treatment', 'prognosis']),
  rulesVersion: z.number().int().min(1),
  criteria: criteriaSchema,
  relaxation: z.array(z.string()).default([]),
});
export type CheckedExplanationPayload = z.output<typeof explanationPayloadSchema>;

// A compile-time check that the completed criteria are what the cohort source takes.
const asCriteria = (criteria: CheckedExplanationPayload['criteria']): CohortCriteria => criteria;

/** The cohort's criteria in a form the cohort source takes. */
export function criteriaOf(payload: CheckedExplanationPayload): CohortCriteria {
  return asCriteria(payload.criteria);
}

export interface ExplanationInput {
  readonly payload: CheckedExplanationPayload;
  /** The rules of the version the card was built under. */
  readonly rules: Rules;
  readonly statistics: CohortStatistics;
  readonly baseline: BaselineStatistics;
  readonly conceptDisplay: (concept: string) => string;
  /** Where the shared stylesheet and icon are served. */
  readonly stylesheetUrl: string;
  readonly faviconUrl: string;
}

interface CriterionLine {
  readonly label: string;
  readonly value: string;
  /** False when this criterion does not constrain the cohort (shown muted). */
  readonly constrains: boolean;
}

const kindTitles: Record<CardKind, string> = { workup: 'Workup', treatment: 'Treatment', prognosis: 'Prognosis' };

function wordList(values: readonly string[], conjunction: string): string {
  return values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} ${conjunction} ${values.at(-1)}`;
}

/** Each criterion of the cohort in words, whether or not it constrains. */
export function describeCriteria(criteria: CohortCriteria, conceptDisplay: (concept: string) => string): CriterionLine[] {
  const lines: CriterionLine[] = [];
  lines.push(criteria.sex === null ? { label: 'Sex', value: 'any (not matched)', constrains: false } : { label: 'Sex', value: criteria.sex, constrains: true });
  if (criteria.ageMin !== null && criteria.ageMax !== null) lines.push({ label: 'Age', value: `${criteria.ageMin}–${criteria.ageMax} years`, constrains: true });
  else if (criteria.ageMin !== null) lines.push({ label: 'Age', value: `${criteria.ageMin} years or older`, constrains: true });
  else if (criteria.ageMax !== null) lines.push({ label: 'Age', value: `${criteria.ageMax} years or younger`, constrains: true });
  else lines.push({ label: 'Age', value: 'any (not matched)', constrains: false });
  if (criteria.acuity === null) lines.push({ label: 'Triage acuity', value: 'any (not matched)', constrains: false });
  else {
    const { min, max } = criteria.acuity;
    lines.push({ label: 'Triage acuity', value: `ESI ${min === max ? min : `${min}–${max}`}`, constrains: true });
  }
  if (criteria.complaintConcept === null) lines.push({ label: 'Chief complaint', value: 'any (not matched)', constrains: false });
  else {
    const concepts = [criteria.complaintConcept, ...criteria.otherComplaintConcepts].map((concept) => conceptDisplay(concept).toLowerCase());
    lines.push({ label: 'Chief complaint', value: wordList(concepts, 'or'), constrains: true });
  }
  if (criteria.icd10 === null) lines.push({ label: 'Diagnoses (ICD-10-CM)', value: 'not matched', constrains: false });
  else {
    const { level, overlap } = criteria.icd10;
    const codes = [...new Set(criteria.icd10.codes.map((code) => (level === 'category' ? code.slice(0, 3) : code)))];
    const noun = level === 'category' ? (codes.length === 1 ? 'category' : 'categories') : codes.length === 1 ? 'code' : 'codes';
    const how =
      overlap.measure === 'any'
        ? codes.length === 1
          ? 'the visit has it'
          : 'the visit has at least one of them'
        : overlap.measure === 'all'
          ? codes.length === 1
            ? 'the visit has it'
            : 'the visit has all of them'
          : `at least ${formatPercent(overlap.atLeast)} of the ${level === 'category' ? 'categories' : 'codes'} of both visits in common`;
    lines.push({ label: 'Diagnoses (ICD-10-CM)', value: `${noun} ${codes.join(', ')}: ${how}`, constrains: true });
  }
  lines.push(
    criteria.sites === null
      ? { label: 'Sites', value: 'every site', constrains: false }
      : { label: criteria.sites.length === 1 ? 'Site' : 'Sites', value: wordList(criteria.sites, 'or'), constrains: true },
  );
  if (criteria.lookback === null) lines.push({ label: 'Period', value: 'every year on record', constrains: false });
  else {
    const { years, referenceYear } = criteria.lookback;
    const value =
      referenceYear !== null
        ? `visits since ${referenceYear - years + 1}`
        : years === 1
          ? 'visits of the latest year on record'
          : `visits of the last ${years} years on record`;
    lines.push({ label: 'Period', value, constrains: true });
  }
  return lines;
}

function relaxationText(step: string): string {
  return (relaxationSteps as readonly string[]).includes(step) ? relaxationDescriptions[step as RelaxationStep] : step;
}

/** "12 of 40 (30%)", or "fewer than 11" for a small cell, as the cards show it. */
function countOf(count: number, total: number, minCellSize: number, withInterval: boolean): Html {
  if (count > 0 && count < minCellSize) return html`<span class="suppressed">fewer than ${minCellSize}</span> of ${total}`;
  const rate = proportion(count, total);
  const interval = withInterval ? html`, 95% CI ${Math.round(rate.lower * 100)}–${formatPercent(rate.upper)}` : '';
  return html`<strong>${count}</strong> of ${total} <span class="muted">(${formatPercent(rate.rate)}${interval})</span>`;
}

function itemRows(items: readonly RankedItem[], cohortSize: number, role: string): Html[] {
  return items.map(
    (ranked) => html`<tr>
      <td>${ranked.item.display}</td>
      <td class="num"><strong>${ranked.item.encounters}</strong> of ${cohortSize}</td>
      <td class="num">${formatPercent(ranked.share)}</td>
      <td class="num">${formatPercent(ranked.baselineShare)}</td>
      <td class="num">${`${ranked.lift.toFixed(1)}×`}</td>
      <td>${role}</td>
    </tr>`,
  );
}

function itemSection(input: ExplanationInput, category: 'workup' | 'treatment'): Html {
  const { statistics, rules } = input;
  const ranking = rankItems(statistics.items, category, statistics.size, input.baseline, rules, []);
  const title = category === 'workup' ? 'Workup: labs and imaging' : 'Treatment: medications and procedures';
  const rows = [
    ...itemRows(ranking.distinctive, statistics.size, 'suggested'),
    ...itemRows(ranking.routine, statistics.size, 'routine line'),
  ];
  const body =
    rows.length === 0
      ? html`<p>No item reached ${rules.minCellSize} visits and ${formatPercent(rules.minItemShare)} of the cohort.</p>`
      : html`<table>
          <thead><tr><th>Item</th><th class="num">Similar visits with it</th><th class="num">Share</th><th class="num">Share of all ED visits</th><th class="num">Lift</th><th>On the card</th></tr></thead>
          <tbody>${rows}</tbody>
        </table>`;
  return html`<section id="${category}">
    <h2>${title}</h2>
    ${body}
    <p class="muted">Shown: items given to at least ${rules.minCellSize} similar visits and at least ${formatPercent(rules.minItemShare)} of them;
    at most ${rules.maxItemsPerCard} suggestions, the most distinctive first (lift = share in the cohort ÷ share in all ED visits);
    items given to ${formatPercent(rules.routineBaselineShare)} or more of all ED visits are routine. Items given to fewer than
    ${rules.minCellSize} visits are not shown. Orders already drafted in the EHR were left out of the card itself.</p>
  </section>`;
}

function durationRow(label: string, medianMinutes: number | null, known: number, minCellSize: number, of: string): Html {
  const value =
    medianMinutes !== null && known >= minCellSize
      ? html`<strong>${formatDuration(medianMinutes)}</strong> <span class="muted">(median over ${known} ${of})</span>`
      : html`<span class="suppressed">not shown</span> <span class="muted">(${known === 0 ? 'no' : `fewer than ${minCellSize}`} ${of})</span>`;
  return html`<tr><th scope="row">${label}</th><td>${value}</td></tr>`;
}

function prognosisSection(input: ExplanationInput): Html {
  const { statistics, rules } = input;
  const { outcomes, size } = statistics;
  return html`<section id="prognosis">
    <h2>Prognosis: what became of similar visits</h2>
    <table class="facts">
      <tbody>
        <tr><th scope="row">Admitted</th><td>${countOf(outcomes.admitted, size, rules.minCellSize, true)}</td></tr>
        <tr><th scope="row">Returned to the ED within 72 h</th><td>${countOf(outcomes.returned72h, size, rules.minCellSize, false)}</td></tr>
        ${durationRow('Median time in the ED', outcomes.edLosMedianMinutes, outcomes.edLosKnown, rules.minCellSize, 'visits with a recorded time')}
        ${durationRow('Median hospital stay when admitted', outcomes.hospitalLosMedianMinutes, outcomes.hospitalLosKnown, rules.minCellSize, 'admissions with a recorded stay')}
      </tbody>
    </table>
    <p class="muted">The card warns at admission ≥ ${formatPercent(rules.admissionWarningRate)} or 72-hour return ≥ ${formatPercent(rules.returnWarningRate)}.
    Intervals are 95% Wilson score intervals. Counts under ${rules.minCellSize} are shown as "fewer than ${rules.minCellSize}".</p>
  </section>`;
}

/** The whole page for one card's link. */
export function renderExplanationPage(input: ExplanationInput): string {
  const { payload, statistics, rules } = input;
  const criteria = criteriaOf(payload);
  const lines = describeCriteria(criteria, input.conceptDisplay);
  const sections: Record<CardKind, () => Html> = {
    workup: () => itemSection(input, 'workup'),
    treatment: () => itemSection(input, 'treatment'),
    prognosis: () => prognosisSection(input),
  };
  // The card's own figures first, then the cohort's other figures for context.
  const order: CardKind[] = [payload.kind, ...(['workup', 'treatment', 'prognosis'] as const).filter((kind) => kind !== payload.kind)];
  const tooSmall = statistics.size < rules.minCohortSize;
  const relaxation =
    payload.relaxation.length === 0
      ? html`<p>None: the strictest criteria already found at least ${rules.minCohortSize} visits.</p>`
      : html`<p>The strictest criteria found fewer than ${rules.minCohortSize} visits, so the rules relaxed them, in this order:</p>
          <ol>${payload.relaxation.map((step) => html`<li>${relaxationText(step)}</li>`)}</ol>`;
  const body = tooSmall
    ? html`<section><p class="notice">Today this cohort has fewer than ${rules.minCohortSize} visits (the data has changed since the card was made), so no figures are shown.</p></section>`
    : order.map((kind) => sections[kind]());
  return `<!doctype html>${html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <meta name="referrer" content="no-referrer">
  <title>${kindTitles[payload.kind]} card: how this cohort was chosen · Cohort CDS</title>
  <link rel="icon" href="${input.faviconUrl}" type="image/svg+xml">
  <link rel="stylesheet" href="${input.stylesheetUrl}">
</head>
<body class="explanation">
  <header class="topbar"><span class="brand"><span class="brand-mark" aria-hidden="true"></span>Cohort CDS</span><span class="topbar-note">Explanation of a card</span></header>
  <main class="page narrow">
    <h1>How this cohort was chosen</h1>
    <p class="lead"><span class="badge kind-${payload.kind}">${kindTitles[payload.kind]} card</span>
      service <code>${payload.serviceId}</code> · rules version <strong>v${payload.rulesVersion}</strong></p>
    <section class="cohort-size">
      <div class="big-number">${tooSmall ? `< ${rules.minCohortSize}` : statistics.size}</div>
      <div>similar prior ED visits made up this card's cohort${tooSmall ? '' : '; every percentage on the card is a share of them'}.</div>
    </section>
    <section id="criteria">
      <h2>Who counts as similar</h2>
      <table class="facts"><tbody>
        ${lines.map((line) => html`<tr class="${line.constrains ? '' : 'muted'}"><th scope="row">${line.label}</th><td>${line.value}</td></tr>`)}
      </tbody></table>
    </section>
    <section id="relaxation">
      <h2>Relaxation applied</h2>
      ${relaxation}
    </section>
    ${body}
    <footer class="privacy">
      These are counts of prior ED visits in this hospital's own data, read now; they can differ slightly from the card if
      data was loaded since. The page names no patient and no visit: the link carries only the cohort's criteria and the
      rules version, and counts under ${rules.minCellSize} are not shown.
    </footer>
  </main>
</body>
</html>`.value}`;
}

/** A refusal (bad, tampered or expired link; unknown version) as a plain page. */
export function renderRefusalPage(input: { readonly title: string; readonly message: string; readonly stylesheetUrl: string; readonly faviconUrl: string }): string {
  return `<!doctype html>${html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>${input.title} · Cohort CDS</title>
  <link rel="icon" href="${input.faviconUrl}" type="image/svg+xml">
  <link rel="stylesheet" href="${input.stylesheetUrl}">
</head>
<body class="explanation">
  <header class="topbar"><span class="brand"><span class="brand-mark" aria-hidden="true"></span>Cohort CDS</span><span class="topbar-note">Explanation of a card</span></header>
  <main class="page narrow">
    <h1>${input.title}</h1>
    <p class="notice">${input.message}</p>
  </main>
</body>
</html>`.value}`;
}
