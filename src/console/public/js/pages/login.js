// @ts-check
import { ApiError, get, storeKey } from '../api.js';
import { h, replaceChildren } from '../dom.js';

/**
 * The key is checked with /admin/whoami before it is kept (in this tab's sessionStorage only).
 * @param {{ next: string, navigate: (path: string, options?: { replace?: boolean }) => void, reason: string | null }} options
 */
export async function loginPage(options) {
  const message = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'login-error login-help',
  });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  if (options.reason === 'expired') replaceChildren(message, 'The key is no longer accepted. Sign in again.');
  const form = h(
    'form',
    { class: 'login-form', novalidate: true },
    h('label', { for: 'api-key' }, 'API key'),
    input,
    message,
    button,
    h(
      'p',
      { class: 'muted small', id: 'login-help' },
      'Keys are made with ',
      h('code', null, 'npm run cli -- api-key create --name NAME --role informaticist'),
      '. The demo writes one to ',
      h('code', null, '.data/demo-api-key.txt'),
      '. The key stays in this browser tab and is forgotten when it closes.',
    ),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      replaceChildren(message, 'Enter an API key.');
      input.focus();
      return;
    }
    button.disabled = true;
    replaceChildren(message);
    try {
      await get('/admin/whoami', { key });
      storeKey(key);
      options.navigate(options.next, { replace: true });
    } catch (error) {
      const text =
        error instanceof ApiError && error.status === 401
          ? 'That key was not accepted.'
          : error instanceof ApiError && error.status === 429
            ? 'Too many failed attempts from this address. Wait a few minutes and try again.'
            : error instanceof Error
              ? error.message
              : String(error);
      replaceChildren(message, text);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  queueMicrotask(() => input.focus());
  return h(
    'main',
    { class: 'login-page' },
    h(
      'section',
      { class: 'login-panel' },
      h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Cohort CDS'),
      h('h1', null, 'Sign in to the console'),
      h('p', { class: 'muted' }, 'Rules, backtests and the cohort behind the cards, for clinical informaticists.'),
      form,
    ),
  );
}
