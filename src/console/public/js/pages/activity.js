// @ts-check
/** Who changed what (the audit trail) and how the hooks have been answering (the hook-call log). */
import { get, query } from '../api.js';
import { h, replaceChildren } from '../dom.js';
import { dateTime, percent } from '../format.js';
import { dataTable, pageHeading, panel } from '../widgets.js';

/** @typedef {import('../types.js').AuditEvent} AuditEvent */
/** @typedef {import('../types.js').HookCallSummary} HookCallSummary */

/** @param {Record<string, unknown>} details */
function detailsText(details) {
  return Object.entries(details)
    .map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' · ');
}

/** @type {import('../main.js').Page} */
export async function activityPage(main, context) {
  const hours = Number(context.query.get('hours') ?? 24);
  /** @type {[{ events: AuditEvent[] }, { since: string, services: HookCallSummary[] }]} */
  const [audit, hookCalls] = await Promise.all([get(`/admin/audit${query({ limit: 100 })}`), get(`/admin/hook-calls${query({ sinceHours: hours })}`)]);
  if (!context.isCurrent()) return;
  const range = h(
    'select',
    { id: 'hook-hours', 'aria-label': 'Period' },
    [1, 24, 24 * 7, 24 * 30].map((value) => h('option', { value, selected: value === hours }, value === 1 ? 'last hour' : value === 24 ? 'last 24 hours' : `last ${value / 24} days`)),
  );
  range.addEventListener('change', () => context.navigate(`/console/activity?hours=${range.value}`, { replace: true }));

  replaceChildren(
    main,
    pageHeading('Activity', 'Changes to the rules and the vocabulary, with who made them, and a summary of the hook calls.'),
    panel(
      'Hook calls',
      h('p', { class: 'muted' }, 'Per service and rules version since ', dateTime(hookCalls.since), '. ', range),
      dataTable(
        [
          { label: 'Service', cell: (row) => h('code', null, row.serviceId) },
          { label: 'Rules', cell: (row) => `v${row.rulesVersion}` },
          { label: 'Calls', numeric: true, cell: (row) => row.calls },
          { label: 'With cards', numeric: true, cell: (row) => `${row.withCards} (${percent(row.calls ? row.withCards / row.calls : null)})` },
          { label: 'Relaxed', numeric: true, cell: (row) => `${row.relaxed} (${percent(row.calls ? row.relaxed / row.calls : null)})` },
          { label: 'Median ms', numeric: true, cell: (row) => (row.medianLatencyMs === null ? '–' : row.medianLatencyMs.toFixed(0)) },
          { label: 'p95 ms', numeric: true, cell: (row) => (row.p95LatencyMs === null ? '–' : row.p95LatencyMs.toFixed(0)) },
        ],
        hookCalls.services,
        { empty: 'No hook calls in this period.', className: 'compact' },
      ),
    ),
    panel(
      'Audit trail',
      dataTable(
        [
          { label: 'When', cell: (event) => dateTime(event.at) },
          { label: 'Who', cell: (event) => event.actor },
          { label: 'What', cell: (event) => h('code', null, event.action) },
          { label: 'On', cell: (event) => event.target ?? '' },
          { label: 'Details', cell: (event) => h('span', { class: 'details' }, detailsText(event.details)) },
        ],
        audit.events,
        { empty: 'Nothing has been changed yet.', className: 'compact audit' },
      ),
    ),
  );
}
