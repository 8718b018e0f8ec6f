// @ts-check
/**
 * CDS Hooks cards drawn the way an EHR shows them (https://cds-hooks.hl7.org/2.0/#card-attributes): a coloured
 * edge and label for the indicator, the summary, the markdown detail, suggestion buttons, the source and links.
 */
import { h, safeHttpUrl } from './dom.js';
import { renderMarkdown } from './markdown.js';

/** @typedef {import('./types.js').Card} Card */

const indicatorLabels = { info: 'Info', warning: 'Warning', critical: 'Critical' };

/** @param {Card} card */
export function renderCard(card) {
  const indicator = card.indicator in indicatorLabels ? card.indicator : 'info';
  const suggestions = card.suggestions ?? [];
  const links = card.links ?? [];
  return h(
    'article',
    { class: `cds-card indicator-${indicator}`, 'data-card-uuid': card.uuid },
    h(
      'header',
      { class: 'cds-card-header' },
      h('span', { class: `indicator-badge indicator-${indicator}` }, indicatorLabels[indicator]),
      h('h3', { class: 'cds-card-summary' }, card.summary),
    ),
    card.detail ? h('div', { class: 'cds-card-detail' }, renderMarkdown(card.detail)) : null,
    suggestions.length > 0
      ? h(
          'div',
          { class: 'cds-card-suggestions', role: 'group', 'aria-label': 'Suggestions' },
          suggestions.map((suggestion) => {
            // A preview: pressing toggles the choice, as an EHR would before signing; nothing is ordered.
            const button = h('button', { type: 'button', class: 'suggestion', 'aria-pressed': 'false', title: 'Preview only: nothing is ordered' }, suggestion.label);
            button.addEventListener('click', () => button.setAttribute('aria-pressed', button.getAttribute('aria-pressed') === 'true' ? 'false' : 'true'));
            return button;
          }),
        )
      : null,
    h(
      'footer',
      { class: 'cds-card-footer' },
      h('span', { class: 'cds-card-source' }, 'Source: ', card.source?.label ?? ''),
      links.map((link) => {
        const href = safeHttpUrl(link.url);
        return href
          ? h('a', { class: 'cds-card-link', href, target: '_blank', rel: 'noopener noreferrer' }, link.label, ' ↗')
          : h('span', { class: 'cds-card-link' }, link.label);
      }),
    ),
  );
}
