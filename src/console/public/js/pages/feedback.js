// @ts-check
/**
 * What clinicians did with the suggestions (GET /admin/feedback): acceptance and override reasons per service,
 * per item for each complaint, and over time. Feeds the rules option `feedbackRanking`.
 */
import { get, query } from '../api.js';
import { barChart } from '../charts.js';
import { h, replaceChildren } from '../dom.js';
import { dateTime, percent } from '../format.js';
import { dataTable, pageHeading, panel } from '../widgets.js';

/** @typedef {{ system: string | null, code: string, display: string, count: number }} ReasonCount */
/** @typedef {{ accepted: number, overridden: number, notChosen: number, acceptanceRate: number | null }} OutcomeCounts */
/** @typedef {OutcomeCounts & { serviceId: string, cardsShown: number, cardsAccepted: number, cardsOverridden: number, itemsShown: number, overrideReasons: ReasonCount[] }} ServiceRow */
/** @typedef {OutcomeCounts & { complaintConcept: string | null, itemCode: string, display: string, shown: number, overrideReasons: ReasonCount[] }} ItemRow */
/** @typedef {OutcomeCounts & { period: string, serviceId: string, cardsShown: number, cardsAccepted: number, cardsOverridden: number, itemsShown: number }} PeriodRow */
/**
 * @typedef {object} FeedbackOverview
 * @property {string} since
 * @property {'day' | 'week'} bucket
 * @property {string | null} serviceId
 * @property {OutcomeCounts & { cardsShown: number, cardsWithFeedback: number, itemsShown: number }} totals
 * @property {ServiceRow[]} services
 * @property {ItemRow[]} items
 * @property {PeriodRow[]} periods
 */

/** @param {ReasonCount[]} reasons */
function reasonList(reasons) {
  if (reasons.length === 0) return h('span', { class: 'muted' }, '–');
  return h('span', { class: 'details' }, reasons.map((reason) => `${reason.display} (${reason.count})`).join(' · '));
}

/** @param {{ accepted: number, overridden: number, notChosen: number }} counts */
function outcomes(counts) {
  return counts.accepted + counts.overridden + counts.notChosen;
}

/**
 * The periods of every service added up, oldest first.
 * @param {PeriodRow[]} rows
 */
function pooledPeriods(rows) {
  /** @type {Map<string, { period: string, cardsShown: number, accepted: number, overridden: number, notChosen: number }>} */
  const periods = new Map();
  for (const row of rows) {
    const entry = periods.get(row.period) ?? { period: row.period, cardsShown: 0, accepted: 0, overridden: 0, notChosen: 0 };
    entry.cardsShown += row.cardsShown;
    entry.accepted += row.accepted;
    entry.overridden += row.overridden;
    entry.notChosen += row.notChosen;
    periods.set(row.period, entry);
  }
  return [...periods.values()].sort((a, b) => a.period.localeCompare(b.period));
}

/** @type {import('../main.js').Page} */
export async function feedbackPage(main, context) {
  const days = Number(context.query.get('days') ?? 90);
  const bucket = context.query.get('bucket') === 'day' ? 'day' : 'week';
  const serviceId = context.query.get('service') ?? '';
  /** @type {FeedbackOverview} */
  const overview = await get(`/admin/feedback${query({ sinceDays: days, bucket, ...(serviceId ? { serviceId } : {}) })}`);
  if (!context.isCurrent()) return;

  /** @param {Record<string, string | number>} change */
  const go = (change) => {
    const next = new URLSearchParams({ days: String(days), bucket, ...(serviceId ? { service: serviceId } : {}) });
    for (const [key, value] of Object.entries(change)) {
      if (value === '') next.delete(key);
      else next.set(key, String(value));
    }
    context.navigate(`/console/feedback?${next.toString()}`, { replace: true });
  };
  const range = h(
    'select',
    { id: 'feedback-days', 'aria-label': 'Period' },
    [7, 30, 90, 365].map((value) => h('option', { value, selected: value === days }, `last ${value} days`)),
  );
  range.addEventListener('change', () => go({ days: range.value }));
  const buckets = h('select', { id: 'feedback-bucket', 'aria-label': 'Per' }, ['week', 'day'].map((value) => h('option', { value, selected: value === bucket }, `per ${value}`)));
  buckets.addEventListener('change', () => go({ bucket: buckets.value }));
  const services = h(
    'select',
    { id: 'feedback-service', 'aria-label': 'Service' },
    h('option', { value: '', selected: serviceId === '' }, 'every service'),
    [...new Set([...overview.services.map((row) => row.serviceId), ...(serviceId ? [serviceId] : [])])].map((id) => h('option', { value: id, selected: id === serviceId }, id)),
  );
  services.addEventListener('change', () => go({ service: services.value }));

  const periods = pooledPeriods(overview.periods);
  const { totals } = overview;
  replaceChildren(
    main,
    pageHeading(
      'Feedback',
      'What clinicians did with the suggestions: accepted, passed over (the card was accepted for other suggestions) or overridden, with the reasons they picked. Counted on the cards issued in the period; comments are never shown.',
    ),
    h('p', { class: 'muted' }, 'Cards issued since ', dateTime(overview.since), '. ', range, ' ', buckets, ' ', services),
    panel(
      'Over time',
      h(
        'p',
        { class: 'muted', 'data-testid': 'feedback-totals' },
        `${totals.cardsShown} cards shown, ${totals.cardsWithFeedback} with feedback; suggestions accepted ${percent(totals.acceptanceRate)} of ${outcomes(totals)} answers.`,
      ),
      periods.length === 0
        ? h('p', { class: 'empty' }, 'No cards were issued in this period.')
        : barChart({
            label: `Share of answers per ${bucket}: suggestion accepted, card overridden`,
            height: 220,
            series: [{ label: 'accepted' }, { label: 'overridden' }],
            groups: periods.map((period) => {
              const total = outcomes(period);
              return {
                label: period.period.slice(5),
                values: [
                  { value: total ? period.accepted / total : null, title: `${period.period}: ${period.accepted} of ${total} accepted` },
                  { value: total ? period.overridden / total : null, title: `${period.period}: ${period.overridden} of ${total} overridden` },
                ],
              };
            }),
          }),
      dataTable(
        [
          { label: bucket === 'week' ? 'Week of' : 'Day', cell: (row) => row.period },
          { label: 'Service', cell: (row) => h('code', null, row.serviceId) },
          { label: 'Cards shown', numeric: true, cell: (row) => row.cardsShown },
          { label: 'Cards accepted', numeric: true, cell: (row) => row.cardsAccepted },
          { label: 'Cards overridden', numeric: true, cell: (row) => row.cardsOverridden },
          { label: 'Suggestions accepted', numeric: true, cell: (row) => `${percent(row.acceptanceRate)} of ${outcomes(row)}` },
        ],
        overview.periods,
        { empty: 'Nothing in this period.', className: 'compact' },
      ),
    ),
    panel(
      'Per service',
      dataTable(
        [
          { label: 'Service', cell: (row) => h('code', null, row.serviceId) },
          { label: 'Cards shown', numeric: true, cell: (row) => row.cardsShown },
          { label: 'Accepted', numeric: true, cell: (row) => row.cardsAccepted },
          { label: 'Overridden', numeric: true, cell: (row) => row.cardsOverridden },
          { label: 'Suggestions accepted', numeric: true, cell: (row) => `${percent(row.acceptanceRate)} of ${outcomes(row)}` },
          { label: 'Override reasons', cell: (row) => reasonList(row.overrideReasons) },
        ],
        overview.services,
        { empty: 'No cards were issued in this period.', className: 'compact', caption: 'Feedback per service' },
      ),
    ),
    panel(
      'Per item',
      h('p', { class: 'muted' }, 'Per complaint, as the rules option feedbackRanking uses it; items never answered are listed with their shown count only.'),
      dataTable(
        [
          { label: 'Complaint', cell: (row) => row.complaintConcept ?? h('span', { class: 'muted' }, 'unknown') },
          { label: 'Item', cell: (row) => row.display },
          { label: 'Shown', numeric: true, cell: (row) => row.shown },
          { label: 'Accepted', numeric: true, cell: (row) => row.accepted },
          { label: 'Passed over', numeric: true, cell: (row) => row.notChosen },
          { label: 'Overridden', numeric: true, cell: (row) => row.overridden },
          { label: 'Acceptance', numeric: true, cell: (row) => percent(row.acceptanceRate) },
          { label: 'Override reasons', cell: (row) => reasonList(row.overrideReasons) },
        ],
        overview.items,
        { empty: 'No suggestions were shown in this period.', className: 'compact', caption: 'Feedback per item' },
      ),
    ),
  );
}
