// @ts-check
/** Small pieces shared by pages: headings, tables, notices, badges, a two-step confirm button. */
import { actionButton, h, replaceChildren } from './dom.js';

/**
 * @param {string} title
 * @param {import('./dom.js').Child} [lead]
 * @param {import('./dom.js').Child} [actions]
 */
export function pageHeading(title, lead, actions) {
  return h('div', { class: 'page-heading' }, h('div', null, h('h1', null, title), lead ? h('p', { class: 'lead' }, lead) : null), actions ? h('div', { class: 'page-actions' }, actions) : null);
}

/**
 * A table; a column with `numeric` aligns right.
 * @template T
 * @param {Array<{ label: string, numeric?: boolean, cell: (row: T) => import('./dom.js').Child }>} columns
 * @param {T[]} rows
 * @param {{ empty?: string, className?: string, caption?: string, rowClass?: (row: T) => string | null }} [options]
 */
export function dataTable(columns, rows, options = {}) {
  if (rows.length === 0) return h('p', { class: 'empty' }, options.empty ?? 'Nothing to show.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: `data-table ${options.className ?? ''}` },
      options.caption ? h('caption', null, options.caption) : null,
      h('thead', null, h('tr', null, columns.map((column) => h('th', { scope: 'col', class: column.numeric ? 'num' : null }, column.label)))),
      h(
        'tbody',
        null,
        rows.map((row) => h('tr', { class: options.rowClass?.(row) ?? null }, columns.map((column) => h('td', { class: column.numeric ? 'num' : null }, column.cell(row))))),
      ),
    ),
  );
}

/** @param {string} status */
export function statusBadge(status) {
  return h('span', { class: `badge status-${status}` }, status);
}

/**
 * @param {string} text
 * @param {'info' | 'error' | 'ok' | 'warning'} [kind]
 */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : null }, text);
}

/**
 * A button that asks once more before acting, in place (no browser dialog).
 * @param {string} label
 * @param {string} confirmLabel
 * @param {() => Promise<unknown>} action
 * @param {{ class?: string, testid?: string }} [options]
 */
export function confirmButton(label, confirmLabel, action, options = {}) {
  const holder = h('span', { class: 'confirm' });
  const idle = () => {
    replaceChildren(
      holder,
      h('button', { type: 'button', class: options.class ?? null, 'data-testid': options.testid ?? null, onclick: () => asking() }, label),
    );
  };
  const asking = () => {
    replaceChildren(
      holder,
      actionButton(confirmLabel, action, { class: `${options.class ?? ''} confirm-yes`, 'data-testid': options.testid ? `${options.testid}-confirm` : null }),
      h('button', { type: 'button', class: 'link-button', onclick: () => idle() }, 'Cancel'),
    );
  };
  idle();
  return holder;
}

/**
 * A panel with a title.
 * @param {string} title
 * @param {...import('./dom.js').Child} children
 */
export function panel(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', null, title), ...children);
}
