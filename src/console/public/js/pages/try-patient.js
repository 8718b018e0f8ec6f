// @ts-check
/** Try a patient: facts in, the cohort and the exact cards the EHR would get out (POST /admin/rules/:v/preview). */
import { ApiError, get, post, query } from '../api.js';
import { renderCard } from '../cards.js';
import { actionButton, h, replaceChildren } from '../dom.js';
import { notice, pageHeading, panel } from '../widgets.js';

/** @typedef {import('../types.js').Icd10Code} Icd10Code */
/** @typedef {import('../types.js').Preview} Preview */

/**
 * An ICD-10-CM codes input: chips for the chosen codes, suggestions from the code table as one types.
 * @param {string[]} initial
 */
function icd10Picker(initial) {
  /** @type {Array<{ code: string, display: string }>} */
  const chosen = initial.map((code) => ({ code, display: '' }));
  const chips = h('ul', { class: 'chips', 'aria-label': 'Chosen ICD-10 codes' });
  const input = h('input', {
    id: 'try-icd10',
    type: 'text',
    autocomplete: 'off',
    placeholder: 'code or words, e.g. R10 or appendicitis',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': 'false',
    'aria-controls': 'icd10-options',
  });
  const listbox = h('ul', { class: 'listbox', id: 'icd10-options', role: 'listbox', hidden: true });
  /** @type {Icd10Code[]} */
  let options = [];
  let highlighted = -1;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let asked = 0;

  const drawChips = () =>
    replaceChildren(
      chips,
      chosen.map((entry, index) =>
        h(
          'li',
          { class: 'chip', title: entry.display || entry.code },
          h('code', null, entry.code),
          entry.display ? h('span', { class: 'chip-text' }, entry.display) : null,
          h(
            'button',
            {
              type: 'button',
              class: 'chip-remove',
              'aria-label': `Remove ${entry.code}`,
              onclick: () => {
                chosen.splice(index, 1);
                drawChips();
              },
            },
            '×',
          ),
        ),
      ),
    );
  const close = () => {
    listbox.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    highlighted = -1;
  };
  /** @param {{ code: string, display: string }} entry */
  const add = (entry) => {
    if (!chosen.some((existing) => existing.code === entry.code)) chosen.push(entry);
    drawChips();
    input.value = '';
    close();
    input.focus();
  };
  const drawOptions = () => {
    replaceChildren(
      listbox,
      options.map((option, index) => {
        const item = h(
          'li',
          { role: 'option', id: `icd10-option-${index}`, class: index === highlighted ? 'highlighted' : null, 'aria-selected': index === highlighted ? 'true' : 'false', 'data-code': option.code },
          h('code', null, option.code),
          ' ',
          option.display,
          option.billable ? null : h('span', { class: 'muted' }, ' (category)'),
        );
        // mousedown, not click: the input's blur would close the list first.
        item.addEventListener('mousedown', (event) => {
          event.preventDefault();
          add(option);
        });
        return item;
      }),
    );
    listbox.hidden = options.length === 0;
    input.setAttribute('aria-expanded', options.length === 0 ? 'false' : 'true');
    if (highlighted >= 0) input.setAttribute('aria-activedescendant', `icd10-option-${highlighted}`);
    else input.removeAttribute('aria-activedescendant');
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (text.length < 2) {
      options = [];
      drawOptions();
      return;
    }
    timer = setTimeout(async () => {
      const ask = ++asked;
      try {
        /** @type {{ codes: Icd10Code[] }} */
        const found = await get(`/admin/icd10${query({ q: text, limit: 12 })}`);
        if (ask !== asked) return;
        options = found.codes;
        highlighted = options.length > 0 ? 0 : -1;
        drawOptions();
      } catch {
        options = [];
        drawOptions();
      }
    }, 180);
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      if (options.length === 0) return;
      event.preventDefault();
      highlighted = (highlighted + (event.key === 'ArrowDown' ? 1 : -1) + options.length) % options.length;
      drawOptions();
    } else if (event.key === 'Enter') {
      event.preventDefault();
      const option = options[highlighted];
      if (option && !listbox.hidden) add(option);
      else if (/^[A-Za-z]\d[0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?$/.test(input.value.trim())) add({ code: input.value.trim().toUpperCase(), display: '' });
    } else if (event.key === 'Escape') close();
    else if (event.key === 'Backspace' && input.value === '' && chosen.length > 0) {
      chosen.pop();
      drawChips();
    }
  });
  input.addEventListener('blur', () => setTimeout(close, 100));
  drawChips();
  return { element: h('div', { class: 'icd10-picker' }, chips, h('div', { class: 'combobox' }, input, listbox)), codes: () => chosen.map((entry) => entry.code) };
}

/**
 * @param {Preview} preview
 * @param {Map<string, string>} relaxationText
 * @param {Map<string, string>} conceptDisplay
 */
function previewView(preview, relaxationText, conceptDisplay) {
  const concepts = preview.facts.complaintConcepts.map((concept) => conceptDisplay.get(concept) ?? concept);
  const reason =
    preview.noCohortReason === 'nothing-to-match'
      ? 'No complaint concept and no diagnosis: there is nothing to match on, and the EHR gets no cards.'
      : preview.noCohortReason === 'cohort-too-small'
        ? 'Even with every relaxation step, too few similar visits: the EHR gets no cards.'
        : null;
  return h(
    'div',
    { class: 'preview', 'data-testid': 'preview' },
    h(
      'div',
      { class: 'stat-row' },
      h('div', { class: 'stat' }, h('div', { class: 'stat-value', 'data-testid': 'cohort-size' }, preview.cohortSize === null ? '–' : String(preview.cohortSize)), h('div', { class: 'stat-label' }, 'similar prior ED visits')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, `v${preview.rulesVersion}`), h('div', { class: 'stat-label' }, 'rules version')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(preview.cards.length)), h('div', { class: 'stat-label' }, preview.cards.length === 1 ? 'card' : 'cards')),
    ),
    h(
      'dl',
      { class: 'summary-list' },
      h('dt', null, 'Complaint understood as'),
      h('dd', null, concepts.length > 0 ? concepts.join(', ') : h('span', { class: 'muted' }, 'no concept (see Complaints to map the phrase)')),
      h('dt', null, 'ICD-10 codes'),
      h('dd', null, preview.facts.icd10Codes.length > 0 ? preview.facts.icd10Codes.join(', ') : h('span', { class: 'muted' }, 'none')),
      h('dt', null, 'Relaxation'),
      h(
        'dd',
        { 'data-testid': 'relaxation' },
        preview.relaxation.length === 0 ? 'none needed' : h('ol', { class: 'inline-list' }, preview.relaxation.map((step) => h('li', null, relaxationText.get(step) ?? step))),
      ),
      h('dt', null, 'Cohort sizes tried'),
      h('dd', null, preview.sizesTried.length > 0 ? preview.sizesTried.join(' → ') : '–', h('span', { class: 'muted' }, '  (strictest first)')),
    ),
    reason ? notice(reason, 'warning') : null,
    h('h2', { class: 'cards-heading' }, 'What the EHR would show'),
    preview.cards.length > 0 ? h('div', { class: 'cds-cards', 'data-testid': 'cards' }, preview.cards.map(renderCard)) : h('p', { class: 'empty' }, 'No cards.'),
  );
}

/** @type {import('../main.js').Page} */
export async function tryPatientPage(main, context) {
  /** @type {[import('../types.js').RulesList, { concepts: import('../types.js').ComplaintConcept[] }, import('../types.js').RulesSchema]} */
  const [rules, complaints, schema] = await Promise.all([get('/admin/rules'), get('/admin/complaints'), get('/console/api/rules-schema')]);
  if (!context.isCurrent()) return;
  const relaxationText = new Map(schema.relaxationSteps.map((entry) => [entry.step, entry.description]));
  const conceptDisplay = new Map(complaints.concepts.map((concept) => [concept.concept, concept.display]));

  const version = h('select', { id: 'try-version' }, rules.versions.map((entry) => h('option', { value: entry.version }, `v${entry.version} (${entry.status})`)));
  version.value = context.query.get('version') ?? String(rules.active ?? rules.versions[0]?.version ?? '');
  const age = h('input', { id: 'try-age', type: 'number', min: '0', max: '120', step: '1', inputmode: 'numeric' });
  const sex = h('select', { id: 'try-sex' }, h('option', { value: '' }, '—'), ['female', 'male', 'other', 'unknown'].map((value) => h('option', { value }, value)));
  const complaint = h('input', { id: 'try-complaint', type: 'text', list: 'complaint-phrases', maxlength: 500, placeholder: 'as triage wrote it, e.g. ABD PAIN, N/V' });
  const phrases = h('datalist', { id: 'complaint-phrases' }, complaints.concepts.flatMap((concept) => [concept.display, ...concept.phrases]).filter((phrase, index, all) => all.indexOf(phrase) === index).map((phrase) => h('option', { value: phrase })));
  const acuity = h('select', { id: 'try-acuity' }, h('option', { value: '' }, 'not sent'), [1, 2, 3, 4, 5].map((level) => h('option', { value: level }, `ESI ${level}`)));
  const codes = icd10Picker([]);
  const error = h('p', { class: 'form-error', role: 'alert' });
  const result = h('div', { class: 'try-result' }, h('p', { class: 'empty' }, 'Enter a patient and press “Show cards”.'));

  const run = async () => {
    replaceChildren(error);
    const ageValue = age.value.trim();
    try {
      /** @type {Preview} */
      const preview = await post(`/admin/rules/${version.value}/preview`, {
        facts: {
          ageYears: ageValue === '' ? null : Number(ageValue),
          sex: sex.value === '' ? null : sex.value,
          chiefComplaint: complaint.value.trim() === '' ? null : complaint.value.trim(),
          icd10Codes: codes.codes(),
          acuity: acuity.value === '' ? null : Number(acuity.value),
        },
      });
      if (!context.isCurrent()) return;
      replaceChildren(result, previewView(preview, relaxationText, conceptDisplay));
    } catch (problem) {
      const details = problem instanceof ApiError ? problem.fieldIssues.map((issue) => `${issue.path}: ${issue.message}`) : [];
      replaceChildren(error, `${problem instanceof Error ? problem.message : String(problem)}${details.length ? ` (${details.join('; ')})` : ''}`);
    }
  };

  const form = h(
    'form',
    { class: 'stacked-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'try-version', class: 'field-label' }, 'Rules version'), version),
    h('div', { class: 'field-pair' }, h('div', { class: 'field' }, h('label', { for: 'try-age', class: 'field-label' }, 'Age (years)'), age), h('div', { class: 'field' }, h('label', { for: 'try-sex', class: 'field-label' }, 'Sex'), sex)),
    h('div', { class: 'field' }, h('label', { for: 'try-complaint', class: 'field-label' }, 'Chief complaint'), complaint, phrases),
    h('div', { class: 'field' }, h('label', { for: 'try-icd10', class: 'field-label' }, 'ICD-10-CM codes'), codes.element, h('p', { class: 'field-help' }, 'The problem list and the visit’s diagnoses, as the EHR would send them.')),
    h('div', { class: 'field' }, h('label', { for: 'try-acuity', class: 'field-label' }, 'Triage acuity'), acuity),
    error,
    h('div', { class: 'button-row' }, actionButton('Show cards', run, { class: 'primary', type: 'submit', 'data-testid': 'show-cards' })),
  );
  form.addEventListener('submit', (event) => event.preventDefault());

  replaceChildren(
    main,
    pageHeading('Try a patient', 'Enter what the EHR would send and see the cohort this rules version picks, the relaxation it needed, and the exact cards.'),
    h('div', { class: 'two-columns' }, panel('Patient', form), h('section', { class: 'panel result-panel' }, result)),
  );
}
