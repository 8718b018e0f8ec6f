// @ts-check
/**
 * The subset of GitHub-flavoured markdown that CDS cards use (paragraphs, pipe tables, lists, headings,
 * bold, italics, code, backslash escapes, http(s) links), parsed into a small tree and built as DOM nodes.
 * Raw HTML is never interpreted: `<img onerror=…>` in a card stays text. The parser is pure (tested in jest).
 */
import { h, safeHttpUrl } from './dom.js';

/**
 * @typedef {{ type: 'text', text: string }
 *   | { type: 'strong', children: Inline[] }
 *   | { type: 'em', children: Inline[] }
 *   | { type: 'code', text: string }
 *   | { type: 'link', href: string, children: Inline[] }} Inline
 */
/**
 * @typedef {{ type: 'paragraph', children: Inline[] }
 *   | { type: 'heading', level: number, children: Inline[] }
 *   | { type: 'list', ordered: boolean, items: Inline[][] }
 *   | { type: 'table', header: Inline[][], rows: Inline[][][] }} Block
 */

const escapable = /[!-/:-@[-`{-~]/;

/**
 * Index of `marker` at or after `from` that is not preceded by an odd number of backslashes, or -1.
 * @param {string} text
 * @param {string} marker
 * @param {number} from
 */
function findUnescaped(text, marker, from) {
  let index = text.indexOf(marker, from);
  while (index >= 0) {
    let slashes = 0;
    for (let before = index - 1; before >= 0 && text[before] === '\\'; before -= 1) slashes += 1;
    if (slashes % 2 === 0) return index;
    index = text.indexOf(marker, index + 1);
  }
  return -1;
}

/** @param {string | undefined} character */
const isSpace = (character) => character === undefined || /\s/.test(character);
/** @param {string | undefined} character */
const isWord = (character) => character !== undefined && /[\p{L}\p{N}]/u.test(character);

/**
 * @param {string} text
 * @returns {Inline[]}
 */
export function parseInline(text) {
  /** @type {Inline[]} */
  const out = [];
  let buffer = '';
  const flush = () => {
    if (buffer) out.push({ type: 'text', text: buffer });
    buffer = '';
  };
  let index = 0;
  while (index < text.length) {
    const character = /** @type {string} */ (text[index]);
    const next = text[index + 1];
    if (character === '\\' && next !== undefined && escapable.test(next)) {
      buffer += next;
      index += 2;
      continue;
    }
    if (character === '`') {
      const end = text.indexOf('`', index + 1);
      if (end > index + 1) {
        flush();
        out.push({ type: 'code', text: text.slice(index + 1, end) });
        index = end + 1;
        continue;
      }
    }
    if ((character === '*' || character === '_') && next === character && !isSpace(text[index + 2])) {
      const end = findUnescaped(text, character + character, index + 2);
      if (end > index + 2 && !isSpace(text[end - 1])) {
        flush();
        out.push({ type: 'strong', children: parseInline(text.slice(index + 2, end)) });
        index = end + 2;
        continue;
      }
    }
    // `_` inside a word (snake_case) is not emphasis.
    if ((character === '*' || (character === '_' && !isWord(text[index - 1]))) && !isSpace(next)) {
      const end = findUnescaped(text, character, index + 1);
      if (end > index + 1 && !isSpace(text[end - 1]) && text[end + 1] !== character && !(character === '_' && isWord(text[end + 1]))) {
        flush();
        out.push({ type: 'em', children: parseInline(text.slice(index + 1, end)) });
        index = end + 1;
        continue;
      }
    }
    if (character === '[') {
      const close = findUnescaped(text, '](', index + 1);
      const end = close < 0 ? -1 : text.indexOf(')', close + 2);
      const href = end < 0 ? '' : text.slice(close + 2, end).trim();
      // Only web links; anything else (javascript:, data:, relative) stays text.
      if (end > 0 && /^https?:\/\/[^\s]+$/i.test(href)) {
        flush();
        out.push({ type: 'link', href, children: parseInline(text.slice(index + 1, close)) });
        index = end + 1;
        continue;
      }
    }
    buffer += character;
    index += 1;
  }
  flush();
  return out;
}

/**
 * The cells of a table row, split on unescaped pipes (escapes are kept for the inline parser).
 * @param {string} line
 */
function tableCells(line) {
  let row = line.trim();
  if (row.startsWith('|')) row = row.slice(1);
  if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
  /** @type {string[]} */
  const cells = [];
  let start = 0;
  for (let pipe = findUnescaped(row, '|', 0); pipe >= 0; pipe = findUnescaped(row, '|', pipe + 1)) {
    cells.push(row.slice(start, pipe).trim());
    start = pipe + 1;
  }
  cells.push(row.slice(start).trim());
  return cells;
}

const tableSeparator = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
const listItem = /^\s*([-*+]|\d+[.)])\s+(.*)$/;

/**
 * @param {string} markdown
 * @returns {Block[]}
 */
export function parseMarkdown(markdown) {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  /** @type {Block[]} */
  const blocks = [];
  /** @type {string[]} */
  let paragraph = [];
  const endParagraph = () => {
    if (paragraph.length > 0) blocks.push({ type: 'paragraph', children: parseInline(paragraph.join(' ')) });
    paragraph = [];
  };
  let index = 0;
  while (index < lines.length) {
    const line = /** @type {string} */ (lines[index]);
    if (line.trim() === '') {
      endParagraph();
      index += 1;
      continue;
    }
    if (line.trim().startsWith('|') && tableSeparator.test(lines[index + 1] ?? '')) {
      endParagraph();
      const header = tableCells(line).map(parseInline);
      index += 2;
      /** @type {Inline[][][]} */
      const rows = [];
      while (index < lines.length && (lines[index] ?? '').trim().startsWith('|')) {
        rows.push(tableCells(/** @type {string} */ (lines[index])).map(parseInline));
        index += 1;
      }
      blocks.push({ type: 'table', header, rows });
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      endParagraph();
      blocks.push({ type: 'heading', level: /** @type {string} */ (heading[1]).length, children: parseInline(/** @type {string} */ (heading[2]).trim()) });
      index += 1;
      continue;
    }
    const item = listItem.exec(line);
    if (item) {
      endParagraph();
      const ordered = /\d/.test(/** @type {string} */ (item[1]));
      /** @type {Inline[][]} */
      const items = [];
      for (let match = listItem.exec(line); match && /\d/.test(/** @type {string} */ (match[1])) === ordered; match = listItem.exec(lines[index] ?? '')) {
        items.push(parseInline(/** @type {string} */ (match[2])));
        index += 1;
      }
      blocks.push({ type: 'list', ordered, items });
      continue;
    }
    paragraph.push(line.trim());
    index += 1;
  }
  endParagraph();
  return blocks;
}

/**
 * @param {Inline[]} inlines
 * @returns {Array<Node | string>}
 */
function renderInline(inlines) {
  return inlines.map((inline) => {
    switch (inline.type) {
      case 'text':
        return inline.text;
      case 'strong':
        return h('strong', null, renderInline(inline.children));
      case 'em':
        return h('em', null, renderInline(inline.children));
      case 'code':
        return h('code', null, inline.text);
      case 'link': {
        const href = safeHttpUrl(inline.href);
        return href ? h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, renderInline(inline.children)) : h('span', null, renderInline(inline.children));
      }
    }
  });
}

/**
 * @param {Inline[]} inlines
 * @returns {string}
 */
const plainText = (inlines) => inlines.map((inline) => (inline.type === 'text' || inline.type === 'code' ? inline.text : plainText(inline.children))).join('');

/**
 * Card markdown as DOM nodes.
 * @param {string} markdown
 * @returns {DocumentFragment}
 */
export function renderMarkdown(markdown) {
  const fragment = document.createDocumentFragment();
  for (const block of parseMarkdown(markdown)) {
    switch (block.type) {
      case 'paragraph':
        fragment.appendChild(h('p', null, renderInline(block.children)));
        break;
      case 'heading':
        fragment.appendChild(h('h4', null, renderInline(block.children)));
        break;
      case 'list':
        fragment.appendChild(h(block.ordered ? 'ol' : 'ul', null, block.items.map((item) => h('li', null, renderInline(item)))));
        break;
      case 'table': {
        // Figures align right, so their digits line up.
        /** @param {Inline[]} cell */
        const numeric = (cell) => /^[<≥≤]?\s?\d/.test(plainText(cell));
        fragment.appendChild(
          h(
            'table',
            { class: 'md-table' },
            h('thead', null, h('tr', null, block.header.map((cell, column) => h('th', { class: block.rows.every((row) => numeric(row[column] ?? [])) ? 'num' : null }, renderInline(cell))))),
            h(
              'tbody',
              null,
              block.rows.map((row) => h('tr', null, row.map((cell) => h('td', { class: numeric(cell) ? 'num' : null }, renderInline(cell))))),
            ),
          ),
        );
        break;
      }
    }
  }
  return fragment;
}
