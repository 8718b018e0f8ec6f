// @ts-check
/** The cohort at a glance: encounters by chief complaint, age band and sex, small cells suppressed as on the cards. */
import { get } from '../api.js';
import { h, replaceChildren } from '../dom.js';
import { pageHeading, panel } from '../widgets.js';

/** @typedef {import('../types.js').CohortSummary} CohortSummary */
/** @typedef {import('../types.js').CohortCell} CohortCell */

const bandOrder = ['0–17', '18–39', '40–64', '65–79', '80+'];
const sexOrder = ['female', 'male', 'other', 'unknown'];
/** @type {Record<string, string>} */
const sexShort = { female: 'F', male: 'M', other: 'O', unknown: '?' };

/** @type {import('../main.js').Page} */
export async function cohortPage(main, context) {
  /** @type {[CohortSummary, { concepts: import('../types.js').ComplaintConcept[] }]} */
  const [summary, complaints] = await Promise.all([get('/admin/cohort/summary'), get('/admin/complaints')]);
  if (!context.isCurrent()) return;
  const display = new Map(complaints.concepts.map((concept) => [concept.concept, concept.display]));
  const bands = [...bandOrder.filter((band) => summary.cells.some((cell) => cell.ageBand === band)), ...new Set(summary.cells.map((cell) => cell.ageBand).filter((band) => !bandOrder.includes(band)))];
  const sexes = sexOrder.filter((sex) => summary.cells.some((cell) => cell.sex === sex));
  /** @type {Map<string, Map<string, CohortCell>>} */
  const rows = new Map();
  for (const cell of summary.cells) {
    const key = cell.complaintConcept ?? '';
    const row = rows.get(key) ?? new Map();
    row.set(`${cell.ageBand}|${cell.sex}`, cell);
    rows.set(key, row);
  }
  /** @param {string} concept */
  const label = (concept) => (concept === '' ? 'no complaint concept' : (display.get(concept) ?? concept));
  // Most visits first; a row's weight counts only the cells that are shown (suppressed ones are unknown).
  const weight = (/** @type {Map<string, CohortCell>} */ row) => [...row.values()].reduce((sum, cell) => sum + (cell.encounters ?? 0), 0);
  const ordered = [...rows.entries()].sort((a, b) => (a[0] === '' ? 1 : b[0] === '' ? -1 : weight(b[1]) - weight(a[1]) || label(a[0]).localeCompare(label(b[0]))));
  const suppressedCount = summary.cells.filter((cell) => cell.encounters === null).length;

  const filter = h('input', { type: 'search', id: 'cohort-filter', placeholder: 'Filter complaints', 'aria-label': 'Filter complaints' });
  const table = h(
    'table',
    { class: 'data-table pivot', 'data-testid': 'cohort-table' },
    h(
      'thead',
      null,
      h('tr', null, h('th', { rowspan: 2, scope: 'col' }, 'Chief complaint'), bands.map((band) => h('th', { colspan: sexes.length, scope: 'colgroup', class: 'band' }, band))),
      h('tr', null, bands.map(() => sexes.map((sex) => h('th', { scope: 'col', class: 'num sex', title: sex }, sexShort[sex] ?? sex)))),
    ),
    h(
      'tbody',
      null,
      ordered.map(([concept, row]) =>
        h(
          'tr',
          { 'data-concept': concept, 'data-label': label(concept).toLowerCase() },
          h('th', { scope: 'row' }, label(concept)),
          bands.map((band) =>
            sexes.map((sex) => {
              const cell = row.get(`${band}|${sex}`);
              if (!cell) return h('td', { class: 'num zero' }, '·');
              if (cell.encounters === null) return h('td', { class: 'num suppressed', title: `fewer than ${summary.minCellSize} visits` }, `< ${summary.minCellSize}`);
              return h('td', { class: 'num' }, String(cell.encounters));
            }),
          ),
        ),
      ),
    ),
  );
  filter.addEventListener('input', () => {
    const text = filter.value.trim().toLowerCase();
    table.querySelectorAll('tbody tr').forEach((row) => row.classList.toggle('hidden', text !== '' && !(row.getAttribute('data-label') ?? '').includes(text)));
  });

  replaceChildren(
    main,
    pageHeading('Cohort', `${summary.total} prior ED visits, by primary chief complaint, age band and sex.`),
    panel(
      'Visits by complaint, age band and sex',
      h(
        'p',
        { class: 'muted' },
        `Cells under ${summary.minCellSize} visits are shown as “< ${summary.minCellSize}” (${suppressedCount} cells), as on the cards; “·” means none. F female, M male.`,
      ),
      filter,
      h('div', { class: 'table-wrap' }, table),
    ),
  );
}
