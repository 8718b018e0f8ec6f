// @ts-check
/**
 * The admin JSON API, as the console calls it. The key lives in this tab's sessionStorage (gone when the tab
 * closes) and travels in the Authorization header: no cookie, so another site cannot make the browser send it.
 */

const keyName = 'cohort-cds.console.api-key';

/** @returns {string | null} */
export function storedKey() {
  return sessionStorage.getItem(keyName);
}

/** @param {string} key */
export function storeKey(key) {
  sessionStorage.setItem(keyName, key);
}

export function forgetKey() {
  sessionStorage.removeItem(keyName);
}

/** An answer other than 2xx, with the API's `{error, message, details?}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {unknown} details
   */
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** @returns {Array<{ path: string, message: string }>} */
  get fieldIssues() {
    return Array.isArray(this.details)
      ? this.details.filter(
          /** @returns {issue is { path: string, message: string }} */
          (issue) => typeof issue === 'object' && issue !== null && typeof issue.path === 'string' && typeof issue.message === 'string',
        )
      : [];
  }
}

/** Fired on window when the key stops working, so the app can go back to the login page. */
export const unauthorizedEvent = 'cohort-cds:unauthorized';

/**
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, key?: string }} [options]
 * @returns {Promise<any>}
 */
async function request(method, path, options = {}) {
  const key = options.key ?? storedKey();
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'omit', cache: 'no-store' };
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The service cannot be reached', undefined);
  }
  const text = await response.text();
  /** @type {any} */
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      typeof body?.error === 'string' ? body.error : `http-${response.status}`,
      typeof body?.message === 'string' ? body.message : `The service answered ${response.status}`,
      body?.details,
    );
    if (response.status === 401 && options.key === undefined) window.dispatchEvent(new CustomEvent(unauthorizedEvent));
    throw error;
  }
  return body;
}

/**
 * @param {string} path
 * @param {{ key?: string }} [options]
 */
export const get = (path, options) => request('GET', path, options);
/**
 * @param {string} path
 * @param {unknown} [body]
 */
export const post = (path, body = {}) => request('POST', path, { body });
/**
 * @param {string} path
 * @param {unknown} body
 */
export const put = (path, body) => request('PUT', path, { body });

/**
 * A query string from defined values.
 * @param {Record<string, string | number | undefined | null>} values
 */
export function query(values) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}
