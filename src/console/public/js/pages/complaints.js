// @ts-check
/** Chief-complaint synonyms: the most frequent phrases no synonym maps, mapped to a concept in one step. */
import { get, post, query } from '../api.js';
import { actionButton, h, replaceChildren } from '../dom.js';
import { plural } from '../format.js';
import { dataTable, pageHeading, panel } from '../widgets.js';

/** @typedef {import('../types.js').UnmappedComplaint} UnmappedComplaint */
/** @typedef {import('../types.js').ComplaintConcept} ComplaintConcept */

/** @type {import('../main.js').Page} */
export async function complaintsPage(main, context) {
  /** @type {[{ unmapped: UnmappedComplaint[] }, { concepts: ComplaintConcept[] }]} */
  const [unmapped, complaints] = await Promise.all([get(`/admin/complaints/unmapped${query({ limit: 50 })}`), get('/admin/complaints')]);
  if (!context.isCurrent()) return;
  const canChange = context.identity.role === 'informaticist';
  const concepts = [...complaints.concepts].sort((a, b) => a.display.localeCompare(b.display));

  /** @param {UnmappedComplaint} row */
  const mapControl = (row) => {
    if (!canChange) return '';
    const select = h('select', { 'aria-label': `Concept for “${row.phrase}”` }, h('option', { value: '' }, 'choose a concept…'), concepts.map((concept) => h('option', { value: concept.concept }, concept.display)));
    const button = actionButton(
      'Map',
      async () => {
        if (!select.value) {
          context.toast('Choose a concept first.', 'error');
          return;
        }
        try {
          const saved = await post('/admin/complaints/synonyms', { phrase: row.phrase, concept: select.value });
          const display = concepts.find((concept) => concept.concept === saved.concept)?.display ?? saved.concept;
          context.toast(`“${saved.phrase}” now means ${display}; ${saved.remapped?.encounters ?? 0} visits updated.`);
          context.navigate('/console/complaints', { replace: true });
        } catch (error) {
          context.toast(error instanceof Error ? error.message : String(error), 'error');
        }
      },
      { class: 'small' },
    );
    return h('span', { class: 'map-control' }, select, button);
  };

  replaceChildren(
    main,
    pageHeading('Complaint synonyms', 'Free-text chief complaints are matched through a synonym table. A phrase no synonym maps never joins a complaint cohort; map the frequent ones here.'),
    h(
      'div',
      { class: 'two-columns wide-left' },
      panel(
        'Most frequent unmapped phrases',
        dataTable(
          [
            { label: 'Phrase', cell: (row) => h('span', { class: 'phrase' }, row.phrase) },
            { label: 'Visits', numeric: true, cell: (row) => row.encounters },
            { label: 'Without any concept', numeric: true, cell: (row) => row.unmatchedEncounters },
            { label: canChange ? 'Map to' : '', cell: mapControl },
          ],
          unmapped.unmapped,
          { empty: 'Every complaint phrase in the cohort is mapped.', className: 'unmapped' },
        ),
      ),
      panel(
        'Concepts',
        h(
          'ul',
          { class: 'concept-list' },
          concepts.map((concept) =>
            h('li', null, h('details', null, h('summary', null, concept.display, h('span', { class: 'muted' }, ` · ${plural(concept.phrases.length, 'phrase')}`)), h('ul', { class: 'chips static' }, concept.phrases.map((phrase) => h('li', { class: 'chip' }, phrase))))),
          ),
        ),
      ),
    ),
  );
}
