// @ts-check
/**
 * The console: a small router over history.pushState (every /console/* address serves the same page, so
 * reloads and bookmarks work), a header with the active rules version, and one module per page.
 */
import { ApiError, forgetKey, get, storedKey, unauthorizedEvent } from './api.js';
import { h, replaceChildren } from './dom.js';
import { activityPage } from './pages/activity.js';
import { backtestComparePage, backtestPage, backtestRunPage } from './pages/backtest.js';
import { cohortPage } from './pages/cohort.js';
import { complaintsPage } from './pages/complaints.js';
import { feedbackPage } from './pages/feedback.js';
import { loginPage } from './pages/login.js';
import { ruleVersionPage, rulesPage } from './pages/rules.js';
import { tryPatientPage } from './pages/try-patient.js';

/** @typedef {import('./types.js').Identity} Identity */
/**
 * What a page gets besides the element it fills.
 * @typedef {object} PageContext
 * @property {Record<string, string>} params the path's named parts
 * @property {URLSearchParams} query
 * @property {Identity} identity
 * @property {(path: string, options?: { replace?: boolean }) => void} navigate
 * @property {() => Promise<void>} refreshHeader shows a new active version after an activation
 * @property {(cleanup: () => void) => void} onLeave runs when the page is left (timers, polling)
 * @property {(message: string, kind?: 'ok' | 'error') => void} toast
 * @property {() => boolean} isCurrent false once the user has moved on (a late answer must not draw)
 */
/** @typedef {(main: HTMLElement, context: PageContext) => Promise<void>} Page */
/** @typedef {{ pattern: string, page: Page, nav: string, title: string }} Route */

/** @type {Array<{ id: string, label: string, href: string }>} */
const navigation = [
  { id: 'rules', label: 'Rules', href: '/console/rules' },
  { id: 'backtest', label: 'Backtest', href: '/console/backtest' },
  { id: 'try', label: 'Try a patient', href: '/console/try' },
  { id: 'cohort', label: 'Cohort', href: '/console/cohort' },
  { id: 'complaints', label: 'Complaints', href: '/console/complaints' },
  { id: 'activity', label: 'Activity', href: '/console/activity' },
  { id: 'feedback', label: 'Feedback', href: '/console/feedback' },
];

/** @type {Route[]} */
const routes = [
  { pattern: '/console/rules', page: rulesPage, nav: 'rules', title: 'Rules' },
  { pattern: '/console/rules/:version', page: ruleVersionPage, nav: 'rules', title: 'Rules version' },
  { pattern: '/console/backtest', page: backtestPage, nav: 'backtest', title: 'Backtest' },
  { pattern: '/console/backtest/compare/:a/:b', page: backtestComparePage, nav: 'backtest', title: 'Compare backtests' },
  { pattern: '/console/backtest/:id', page: backtestRunPage, nav: 'backtest', title: 'Backtest' },
  { pattern: '/console/try', page: tryPatientPage, nav: 'try', title: 'Try a patient' },
  { pattern: '/console/cohort', page: cohortPage, nav: 'cohort', title: 'Cohort' },
  { pattern: '/console/complaints', page: complaintsPage, nav: 'complaints', title: 'Complaint synonyms' },
  { pattern: '/console/activity', page: activityPage, nav: 'activity', title: 'Activity' },
  { pattern: '/console/feedback', page: feedbackPage, nav: 'feedback', title: 'Feedback' },
];

/**
 * @param {string} path
 * @returns {{ route: Route, params: Record<string, string> } | null}
 */
function matchRoute(path) {
  const parts = path.replace(/\/+$/, '').split('/');
  for (const route of routes) {
    const pattern = route.pattern.split('/');
    if (pattern.length !== parts.length) continue;
    /** @type {Record<string, string>} */
    const params = {};
    const matches = pattern.every((segment, index) => {
      const part = parts[index] ?? '';
      if (segment.startsWith(':')) {
        params[segment.slice(1)] = decodeURIComponent(part);
        return part !== '';
      }
      return segment === part;
    });
    if (matches) return { route, params };
  }
  return null;
}

const root = /** @type {HTMLElement} */ (document.getElementById('app'));
/** @type {Identity | null} */
let identity = null;
let renderCount = 0;
/** @type {Array<() => void>} */
let leaving = [];

const toasts = h('div', { class: 'toasts', 'aria-live': 'polite' });

/**
 * @param {string} message
 * @param {'ok' | 'error'} [kind]
 */
function toast(message, kind = 'ok') {
  const note = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  toasts.appendChild(note);
  setTimeout(() => note.remove(), 5000);
}

/**
 * @param {string} path
 * @param {{ replace?: boolean }} [options]
 */
function navigate(path, options = {}) {
  if (options.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  void render();
}

const activeVersion = h('a', { class: 'active-version', href: '/console/rules' }, 'Active rules …');

async function refreshHeader() {
  try {
    /** @type {import('./types.js').RulesList} */
    const rules = await get('/admin/rules');
    const active = rules.versions.find((version) => version.version === rules.active);
    replaceChildren(
      activeVersion,
      'Active rules ',
      h('strong', { 'data-testid': 'active-version' }, rules.active === null ? 'none' : `v${rules.active}`),
      active?.activatedAt ? h('span', { class: 'muted' }, ` since ${active.activatedAt.slice(0, 10)}`) : null,
    );
  } catch {
    replaceChildren(activeVersion, 'Active rules unknown');
  }
}

/**
 * @param {string} current
 * @param {Identity} who
 */
function header(current, who) {
  return h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '/console/rules' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Cohort CDS', h('span', { class: 'brand-sub' }, 'console')),
    h(
      'nav',
      { class: 'main-nav', 'aria-label': 'Console' },
      navigation.map((item) => h('a', { href: item.href, class: item.id === current ? 'current' : null, 'aria-current': item.id === current ? 'page' : null }, item.label)),
    ),
    h(
      'div',
      { class: 'topbar-right' },
      activeVersion,
      h('span', { class: 'who', title: `Signed in with the key “${who.name}”` }, who.name, h('span', { class: `role role-${who.role}` }, who.role)),
      h(
        'button',
        {
          type: 'button',
          class: 'link-button',
          onclick: () => {
            forgetKey();
            identity = null;
            navigate('/console/login');
          },
        },
        'Sign out',
      ),
    ),
  );
}

async function render() {
  const count = ++renderCount;
  for (const cleanup of leaving) cleanup();
  leaving = [];
  const path = window.location.pathname;
  const query = new URLSearchParams(window.location.search);

  if (path === '/console/login' || !storedKey()) {
    identity = null;
    document.title = 'Sign in · Cohort CDS console';
    const next = path === '/console/login' ? query.get('next') ?? '/console/rules' : `${path}${window.location.search}`;
    replaceChildren(root, await loginPage({ next: next.startsWith('/console') ? next : '/console/rules', navigate, reason: query.get('reason') }));
    return;
  }
  if (!identity) {
    try {
      identity = /** @type {Identity} */ (await get('/admin/whoami'));
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return; // the unauthorized event takes over
      replaceChildren(root, h('main', { class: 'page' }, h('p', { class: 'notice error' }, error instanceof Error ? error.message : String(error))));
      return;
    }
  }
  if (count !== renderCount) return;
  const matched = matchRoute(path === '/console' || path === '/console/' ? '/console/rules' : path);
  const main = h('main', { class: 'page', id: 'main' });
  replaceChildren(root, header(matched?.route.nav ?? '', identity), main, toasts);
  void refreshHeader();
  if (!matched) {
    document.title = 'Not found · Cohort CDS console';
    replaceChildren(main, h('h1', null, 'Not found'), h('p', null, 'There is no console page at this address. ', h('a', { href: '/console/rules' }, 'Go to the rules.')));
    return;
  }
  document.title = `${matched.route.title} · Cohort CDS console`;
  main.setAttribute('aria-busy', 'true');
  try {
    await matched.route.page(main, {
      params: matched.params,
      query,
      identity,
      navigate,
      refreshHeader,
      onLeave: (cleanup) => leaving.push(cleanup),
      toast,
      isCurrent: () => count === renderCount,
    });
  } catch (error) {
    if (count !== renderCount) return;
    if (error instanceof ApiError && error.status === 401) return;
    replaceChildren(main, h('h1', null, matched.route.title), h('p', { class: 'notice error', role: 'alert' }, error instanceof Error ? error.message : String(error)));
  } finally {
    main.removeAttribute('aria-busy');
  }
}

// Links inside the console change the page without a reload; others (the explanation page, new tabs) do not.
document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const target = event.target instanceof Element ? event.target.closest('a') : null;
  if (!target || target.target || target.hasAttribute('download')) return;
  const url = new URL(target.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith('/console') || url.pathname.startsWith('/console/assets/')) return;
  event.preventDefault();
  navigate(`${url.pathname}${url.search}`);
});

window.addEventListener('popstate', () => void render());
window.addEventListener(unauthorizedEvent, () => {
  forgetKey();
  identity = null;
  const here = `${window.location.pathname}${window.location.search}`;
  navigate(`/console/login?reason=expired&next=${encodeURIComponent(here.startsWith('/console/login') ? '/console/rules' : here)}`, { replace: true });
});

void render();
