// @ts-check
/**
 * DOM building without HTML strings: every value becomes a text node or an attribute set through the DOM, so
 * nothing from the API is ever parsed as markup (the console never uses innerHTML).
 */

/** @typedef {string | number | Node | null | undefined | false} Leaf */
/** @typedef {Leaf | ReadonlyArray<Leaf | ReadonlyArray<Leaf | ReadonlyArray<Leaf>>>} Child Nested lists are flattened. */
/**
 * Attributes: strings and numbers are set with setAttribute (true sets an empty attribute, false and null
 * leave it out); `on*` functions are event listeners.
 * @typedef {Record<string, string | number | boolean | null | undefined | EventListener>} Attributes
 */

/**
 * @param {Element} element
 * @param {Attributes | undefined} attributes
 */
function applyAttributes(element, attributes) {
  if (!attributes) return;
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') {
      element.addEventListener(name.slice(2).toLowerCase(), value);
      continue;
    }
    if (name.toLowerCase().startsWith('on')) throw new Error(`event attribute ${name} needs a function`);
    if (name === 'style') throw new Error('inline style attributes are refused by the CSP; use a class');
    element.setAttribute(name, value === true ? '' : String(value));
  }
}

/**
 * @param {Node} parent
 * @param {ReadonlyArray<unknown>} children
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

/**
 * An HTML element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes | null} [attributes]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  applyAttributes(element, attributes ?? undefined);
  append(element, children);
  return element;
}

const svgNamespace = 'http://www.w3.org/2000/svg';

/**
 * An SVG element.
 * @template {keyof SVGElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes | null} [attributes]
 * @param {...Child} children
 * @returns {SVGElementTagNameMap[K]}
 */
export function s(tag, attributes, ...children) {
  const element = /** @type {SVGElementTagNameMap[K]} */ (document.createElementNS(svgNamespace, tag));
  applyAttributes(element, attributes ?? undefined);
  append(element, children);
  return element;
}

/**
 * Replaces an element's children.
 * @param {Element} element
 * @param {...Child} children
 */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/**
 * An http(s) URL for an href, or null: a card's link comes from data, and `javascript:` must never be clickable.
 * @param {string | undefined | null} url
 * @returns {string | null}
 */
export function safeHttpUrl(url) {
  if (typeof url !== 'string') return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * A button that shows it is busy while its action runs, and cannot be pressed twice meanwhile.
 * @param {string} label
 * @param {() => Promise<unknown> | unknown} action
 * @param {Attributes} [attributes]
 */
export function actionButton(label, action, attributes = {}) {
  const button = h('button', { type: 'button', ...attributes }, label);
  button.addEventListener('click', async () => {
    if (button.disabled) return;
    button.disabled = true;
    button.classList.add('busy');
    try {
      await action();
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
    }
  });
  return button;
}
