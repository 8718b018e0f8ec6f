// @ts-check
/** Rules versions: the active one and the history, a draft edited field by field, validation, activation, rollback. */
import { ApiError, get, post, put } from '../api.js';
import { actionButton, h, replaceChildren } from '../dom.js';
import { dateTime, percent } from '../format.js';
import { choiceLabels, fieldGroups, fieldTexts } from '../rule-fields.js';
import { confirmButton, dataTable, notice, pageHeading, panel, statusBadge } from '../widgets.js';

/** @typedef {import('../main.js').PageContext} PageContext */
/** @typedef {import('../types.js').RuleVersion} RuleVersion */
/** @typedef {import('../types.js').RulesList} RulesList */
/** @typedef {import('../types.js').FieldSchema} FieldSchema */
/** @typedef {import('../types.js').RulesSchema} RulesSchema */

/** @typedef {import('../types.js').Activation} Activation */

/**
 * Activates a version (a draft, or an earlier one: a rollback) and refreshes what shows it. `force` skips the
 * backtest a draft needs, with a reason for the audit trail.
 * @param {PageContext} context
 * @param {RuleVersion} version
 * @param {() => void} after
 * @param {{ reason: string }} [force]
 */
async function activate(context, version, after, force) {
  try {
    const result = await post(`/admin/rules/${version.version}/activate`, force ? { force: true, reason: force.reason } : {});
    context.toast(`Rules v${result.active} are active${result.previous ? ` (were v${result.previous})` : ''}${result.forced ? ', without a backtest (recorded)' : ''}.`);
    await context.refreshHeader();
    after();
  } catch (error) {
    context.toast(error instanceof Error ? error.message : String(error), 'error');
  }
}

/**
 * Makes a draft from a version's rules and opens it.
 * @param {PageContext} context
 * @param {RuleVersion} from
 */
async function createDraft(context, from) {
  const draft = await post('/admin/rules', { rules: from.effectiveRules ?? from.rules, note: `Based on v${from.version}`, basedOn: from.version });
  context.toast(`Draft v${draft.version} created from v${from.version}.`);
  context.navigate(`/console/rules/${draft.version}`);
}

/**
 * The settings a committee asks about first, in words.
 * @param {Record<string, unknown>} rules
 */
function rulesInWords(rules) {
  const words = [
    `age ± ${rules.ageWindowYears} years (widened to ± ${rules.widenedAgeWindowYears})`,
    rules.matchSex ? 'same sex' : 'any sex',
    `ICD-10 by ${rules.icd10Level}${rules.icd10Overlap && rules.icd10Overlap !== 'any' ? `, overlap ${rules.icd10Overlap}` : ''}`,
  ];
  if (rules.acuityMatch && rules.acuityMatch !== 'ignore') words.push(`acuity ${choiceLabels[`acuityMatch.${rules.acuityMatch}`] ?? rules.acuityMatch}`);
  words.push(`cohort ≥ ${rules.minCohortSize}, cells ≥ ${rules.minCellSize}`, `items ≥ ${percent(Number(rules.minItemShare))} of the cohort, ${rules.maxItemsPerCard} per card`);
  return words.join(' · ');
}

/** @type {import('../main.js').Page} */
export async function rulesPage(main, context) {
  /** @type {RulesList} */
  const list = await get('/admin/rules');
  if (!context.isCurrent()) return;
  const canChange = context.identity.role === 'informaticist';
  const active = list.versions.find((version) => version.version === list.active);
  const reload = () => context.navigate('/console/rules', { replace: true });

  replaceChildren(
    main,
    pageHeading(
      'Rules',
      'Every version is kept. A draft is edited and validated, then backtested and activated (a draft changed since its backtest needs a new one); activating an earlier version rolls back.',
      canChange && active
        ? actionButton(`New draft from active v${active.version}`, () => createDraft(context, active), { class: 'primary', 'data-testid': 'new-draft' })
        : null,
    ),
    active
      ? panel(
          `Active: v${active.version}`,
          h(
            'dl',
            { class: 'summary-list' },
            h('dt', null, 'Activated'),
            h('dd', null, dateTime(active.activatedAt)),
            h('dt', null, 'Created'),
            h('dd', null, `${dateTime(active.createdAt)} by ${active.createdBy}`),
            h('dt', null, 'Note'),
            h('dd', null, active.note ?? '–'),
            h('dt', null, 'In short'),
            h('dd', null, rulesInWords(active.effectiveRules ?? active.rules)),
          ),
        )
      : notice('No version is active: the hooks answer 503 until one is activated.', 'warning'),
    panel(
      'History',
      dataTable(
        [
          { label: 'Version', cell: (version) => h('a', { href: `/console/rules/${version.version}` }, `v${version.version}`) },
          { label: 'Status', cell: (version) => statusBadge(version.status) },
          { label: 'Note', cell: (version) => version.note ?? '' },
          { label: 'Created', cell: (version) => dateTime(version.createdAt) },
          { label: 'By', cell: (version) => version.createdBy },
          { label: 'Activated', cell: (version) => dateTime(version.activatedAt) },
          {
            label: '',
            cell: (version) =>
              h(
                'span',
                { class: 'row-actions' },
                h('a', { href: `/console/rules/${version.version}` }, version.status === 'draft' && canChange ? 'Edit' : 'View'),
                h('a', { href: `/console/backtest?version=${version.version}` }, 'Backtest'),
                canChange && version.status === 'draft' && version.activation?.allowed
                  ? confirmButton('Activate', `Activate v${version.version}`, () => activate(context, version, reload), { class: 'small', testid: `activate-${version.version}` })
                  : null,
                canChange && version.status === 'draft' && !version.activation?.allowed
                  ? h('span', { class: 'muted', title: version.activation?.reason ?? null, 'data-testid': `needs-backtest-${version.version}` }, 'backtest before activating')
                  : null,
                canChange && version.status === 'retired'
                  ? confirmButton('Roll back', `Roll back to v${version.version}`, () => activate(context, version, reload), { class: 'small', testid: `rollback-${version.version}` })
                  : null,
              ),
          },
        ],
        list.versions,
        { rowClass: (version) => (version.status === 'active' ? 'row-active' : null), className: 'versions' },
      ),
    ),
  );
}

/**
 * One input for one rules field, driven by its JSON Schema.
 * @typedef {{ name: string, element: HTMLElement, read: () => unknown, setError: (message: string | null) => void, focus: () => void }} FieldWidget
 */

/**
 * @param {FieldSchema} schema
 * @returns {{ base: FieldSchema, nullable: boolean }}
 */
function unwrapNullable(schema) {
  const options = schema.anyOf ?? [];
  const nonNull = options.filter((option) => option.type !== 'null');
  if (options.length > 0 && nonNull.length === 1 && nonNull.length < options.length) return { base: /** @type {FieldSchema} */ (nonNull[0]), nullable: true };
  return { base: schema, nullable: false };
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function display(value) {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/**
 * @param {string} name
 * @param {FieldSchema} schema
 * @param {unknown} value
 * @param {{ editable: boolean, activeValue: unknown, activeVersion: number | null, relaxationSteps: RulesSchema['relaxationSteps'], onChange: () => void }} options
 * @returns {FieldWidget}
 */
function fieldWidget(name, schema, value, options) {
  const text = fieldTexts[name] ?? { label: name, help: '', group: 'Other' };
  const id = `field-${name}`;
  const errorId = `error-${name}`;
  const error = h('p', { class: 'field-error', id: errorId, 'data-error-for': name, role: 'alert' });
  const hint = h('span', { class: 'field-hint' });
  const { base, nullable } = unwrapNullable(schema);
  const describedBy = `${errorId} help-${name}`;
  /** @type {HTMLElement} */
  let control;
  /** @type {() => unknown} */
  let read;
  /** @type {() => void} */
  let focus;

  if (base.type === 'boolean') {
    const input = h('input', { id, name, type: 'checkbox', disabled: !options.editable, 'aria-describedby': describedBy });
    input.checked = value === true;
    control = h('label', { class: 'checkbox' }, input, ' ', text.label);
    read = () => input.checked;
    focus = () => input.focus();
  } else if (base.type === 'string' && base.enum) {
    const select = h(
      'select',
      { id, name, disabled: !options.editable, 'aria-describedby': describedBy },
      base.enum.map((choice) => h('option', { value: choice }, choiceLabels[`${name}.${choice}`] ?? choice)),
    );
    select.value = String(value ?? base.default ?? '');
    control = select;
    read = () => select.value;
    focus = () => select.focus();
  } else if (base.type === 'integer' || base.type === 'number') {
    const input = h('input', {
      id,
      name,
      type: 'number',
      step: base.type === 'integer' ? '1' : 'any',
      inputmode: base.type === 'integer' ? 'numeric' : 'decimal',
      disabled: !options.editable,
      placeholder: nullable ? 'no limit' : null,
      'aria-describedby': describedBy,
    });
    input.value = value === null || value === undefined ? '' : String(value);
    const showShare = () => replaceChildren(hint, text.unit === 'share' && input.value !== '' && !Number.isNaN(Number(input.value)) ? `= ${percent(Number(input.value), 1)}` : text.unit && text.unit !== 'share' ? text.unit : '');
    input.addEventListener('input', showShare);
    showShare();
    control = h('span', { class: 'number-field' }, input, hint);
    // An empty box is "no limit" where the field allows null, else sent as it is so the server names the problem.
    read = () => (input.value.trim() === '' ? (nullable ? null : '') : Number(input.value));
    focus = () => input.focus();
  } else if (base.type === 'array' && base.items?.enum) {
    const all = base.items.enum;
    const chosen = Array.isArray(value) ? value.map(String) : [];
    const order = [...chosen.filter((step) => all.includes(step)), ...all.filter((step) => !chosen.includes(step))];
    const listElement = h('ol', { class: 'ordered-choices', id, 'aria-describedby': describedBy });
    /** @param {string} step */
    const describe = (step) => options.relaxationSteps.find((entry) => entry.step === step)?.description ?? step;
    const draw = () => {
      replaceChildren(
        listElement,
        order.map((step, index) => {
          const checkbox = h('input', { type: 'checkbox', id: `${id}-${step}`, value: step, disabled: !options.editable });
          checkbox.checked = chosen.includes(step);
          checkbox.addEventListener('change', () => {
            if (checkbox.checked) chosen.push(step);
            else chosen.splice(chosen.indexOf(step), 1);
            options.onChange();
          });
          /** @param {number} delta */
          const move = (delta) => () => {
            const target = index + delta;
            if (target < 0 || target >= order.length) return;
            [order[index], order[target]] = [/** @type {string} */ (order[target]), step];
            draw();
            options.onChange();
          };
          return h(
            'li',
            { class: chosen.includes(step) ? null : 'unchosen' },
            checkbox,
            h('label', { for: `${id}-${step}` }, h('code', null, step), ' ', describe(step)),
            options.editable
              ? h(
                  'span',
                  { class: 'move' },
                  h('button', { type: 'button', class: 'icon-button', 'aria-label': `Move ${step} up`, disabled: index === 0, onclick: move(-1) }, '↑'),
                  h('button', { type: 'button', class: 'icon-button', 'aria-label': `Move ${step} down`, disabled: index === order.length - 1, onclick: move(1) }, '↓'),
                )
              : null,
          );
        }),
      );
    };
    draw();
    control = listElement;
    read = () => order.filter((step) => chosen.includes(step));
    focus = () => listElement.querySelector('input')?.focus();
  } else if (base.type === 'array' && base.items?.type === 'string') {
    const input = h('input', { id, name, type: 'text', disabled: !options.editable, placeholder: nullable ? 'every site' : null, 'aria-describedby': describedBy });
    input.value = Array.isArray(value) ? value.join(', ') : '';
    control = input;
    read = () => {
      const parts = input.value.split(',').map((part) => part.trim()).filter((part) => part !== '');
      return parts.length === 0 && nullable ? null : parts;
    };
    focus = () => input.focus();
  } else {
    const area = h('textarea', { id, name, rows: 2, disabled: !options.editable, 'aria-describedby': describedBy });
    area.value = JSON.stringify(value ?? null);
    control = area;
    read = () => {
      try {
        return JSON.parse(area.value);
      } catch {
        return area.value;
      }
    };
    focus = () => area.focus();
  }

  const element = h(
    'div',
    { class: 'field', 'data-field': name },
    base.type === 'boolean' ? null : h('label', { for: id, class: 'field-label' }, text.label),
    control,
    h('p', { class: 'field-help', id: `help-${name}` }, text.help, text.help ? ' ' : '', h('code', { class: 'field-name' }, name)),
    h('p', { class: 'field-diff' }),
    error,
  );
  const diff = /** @type {HTMLElement} */ (element.querySelector('.field-diff'));
  const markChange = () => {
    const changed = options.activeVersion !== null && JSON.stringify(read()) !== JSON.stringify(options.activeValue);
    element.classList.toggle('changed', changed);
    replaceChildren(diff, changed ? `Active v${options.activeVersion}: ${display(options.activeValue)}` : '');
  };
  element.addEventListener('input', () => {
    markChange();
    options.onChange();
  });
  element.addEventListener('change', markChange);
  const onChange = options.onChange;
  options.onChange = () => {
    markChange();
    onChange();
  };
  markChange();
  return {
    name,
    element,
    read,
    focus,
    setError: (message) => {
      replaceChildren(error, message ?? '');
      element.classList.toggle('invalid', Boolean(message));
      element.querySelectorAll('input, select, textarea').forEach((input) => (message ? input.setAttribute('aria-invalid', 'true') : input.removeAttribute('aria-invalid')));
    },
  };
}

/** @type {import('../main.js').Page} */
export async function ruleVersionPage(main, context) {
  const versionNumber = Number(context.params.version);
  /** @type {[RuleVersion, RulesSchema, RulesList]} */
  const [record, rulesSchema, list] = await Promise.all([get(`/admin/rules/${versionNumber}`), get('/console/api/rules-schema'), get('/admin/rules')]);
  if (!context.isCurrent()) return;
  const canChange = context.identity.role === 'informaticist';
  const editable = record.status === 'draft' && canChange;
  const active = list.versions.find((version) => version.version === list.active);
  const activeRules = active?.effectiveRules ?? active?.rules ?? {};
  const values = record.effectiveRules ?? record.rules;

  const status = h('div', { class: 'form-status', role: 'status', 'aria-live': 'polite', 'data-testid': 'form-status' });
  const generalErrors = h('ul', { class: 'form-errors', role: 'alert' });
  let dirty = false;
  /** @type {HTMLButtonElement | null} */
  let activateButton = null;
  /** @type {Activation | null} */
  let activation = record.activation ?? null;
  // Why the draft can or cannot be activated now, and a way to do it anyway on the record (drafts only).
  const activationStatus = h('p', { class: 'activation-status', 'data-testid': 'activation-status' });
  const forceReason = h('textarea', {
    id: 'force-reason',
    name: 'force-reason',
    rows: 2,
    maxlength: 2000,
    'data-testid': 'force-reason',
    placeholder: 'Why this version must go live before a backtest (kept in the audit trail)',
  });
  const forceButton = h('button', { type: 'button', class: 'danger', disabled: true, 'data-testid': 'force-activate' }, 'Activate without a backtest');
  const forcePanel = h(
    'details',
    { class: 'force-activation', 'data-testid': 'force-panel' },
    h('summary', null, 'Activate without a backtest…'),
    h('label', { for: 'force-reason', class: 'field-label' }, 'Reason (10 characters or more)'),
    forceReason,
    forceButton,
  );
  const showActivation = () => {
    const ready = activation?.allowed === true;
    if (activateButton) {
      activateButton.disabled = dirty || !ready;
      activateButton.title = dirty ? 'Save the draft first' : ready ? '' : (activation?.reason ?? '');
    }
    forcePanel.hidden = ready || dirty;
    forceButton.disabled = dirty || forceReason.value.trim().length < 10;
    const link = activation?.backtestRunId ? h('a', { href: `/console/backtest/${activation.backtestRunId}` }, `run #${activation.backtestRunId}`) : null;
    if (dirty) replaceChildren(activationStatus, 'Save the draft, then backtest it, before activating.');
    else if (ready) replaceChildren(activationStatus, 'Backtested (', link, '): ready to activate.');
    else
      replaceChildren(
        activationStatus,
        `Activate is off: ${activation?.reason ?? 'no completed backtest of this version'}. `,
        link ? h('span', null, 'Outdated: ', link, '. ') : null,
        h('a', { href: `/console/backtest?version=${record.version}`, 'data-testid': 'backtest-this' }, `Backtest v${record.version}`),
        ', or activate it without one, with a reason.',
      );
    activationStatus.className = `activation-status ${ready && !dirty ? 'ok' : 'pending'}`;
  };
  forceReason.addEventListener('input', showActivation);
  const onChange = () => {
    dirty = true;
    showActivation();
    replaceChildren(status, 'Unsaved changes');
    status.className = 'form-status pending';
  };

  /** @type {FieldWidget[]} */
  const widgets = Object.entries(rulesSchema.schema.properties).map(([name, schema]) =>
    fieldWidget(name, schema, values[name], {
      editable,
      activeValue: activeRules[name],
      activeVersion: active && active.version !== record.version ? active.version : null,
      relaxationSteps: rulesSchema.relaxationSteps,
      onChange,
    }),
  );
  const note = h('textarea', { id: 'field-note', name: 'note', rows: 2, maxlength: 2000, disabled: !editable, placeholder: 'Why this version: what it changes and what the backtest showed' });
  note.value = record.note ?? '';
  note.addEventListener('input', onChange);

  const readRules = () => Object.fromEntries(widgets.map((widget) => [widget.name, widget.read()]));

  /**
   * Shows issues next to their fields; those without a field in a list above the form.
   * @param {import('../types.js').FieldIssue[]} issues
   */
  const showIssues = (issues) => {
    for (const widget of widgets) widget.setError(null);
    replaceChildren(generalErrors);
    /** @type {Map<string, string[]>} */
    const byField = new Map();
    for (const issue of issues) {
      const field = issue.path.split('.')[0] ?? '';
      if (widgets.some((widget) => widget.name === field)) byField.set(field, [...(byField.get(field) ?? []), issue.message]);
      else generalErrors.appendChild(h('li', null, `${issue.path}: ${issue.message}`));
    }
    for (const widget of widgets) {
      const messages = byField.get(widget.name);
      if (messages) widget.setError(messages.join('; '));
    }
    widgets.find((widget) => byField.has(widget.name))?.focus();
  };

  /**
   * @param {string} text
   * @param {'ok' | 'error' | 'pending'} kind
   */
  const setStatus = (text, kind) => {
    replaceChildren(status, text);
    status.className = `form-status ${kind}`;
  };

  const validate = async () => {
    /** @type {import('../types.js').Validation} */
    const result = await post('/admin/rules/validate', { rules: readRules() });
    showIssues(result.issues);
    if (result.valid) setStatus(dirty ? 'Valid. Save the draft to keep it.' : 'Valid.', 'ok');
    else setStatus(`${result.issues.length === 1 ? '1 problem' : `${result.issues.length} problems`}: see the fields marked in red.`, 'error');
    return result.valid;
  };

  const save = async () => {
    try {
      await put(`/admin/rules/${record.version}`, { rules: readRules(), note: note.value.trim() === '' ? null : note.value.trim() });
      showIssues([]);
      dirty = false;
      // A saved change outdates the draft's backtest: ask the service again.
      /** @type {RuleVersion} */
      const saved = await get(`/admin/rules/${record.version}`);
      activation = saved.activation ?? null;
      showActivation();
      setStatus(`Saved v${record.version}.`, 'ok');
      context.toast(`Draft v${record.version} saved.`);
    } catch (error) {
      if (error instanceof ApiError && error.fieldIssues.length > 0) {
        showIssues(error.fieldIssues);
        setStatus('Not saved: see the fields marked in red.', 'error');
      } else setStatus(`Not saved: ${error instanceof Error ? error.message : String(error)}`, 'error');
    }
  };

  const reloadHere = () => context.navigate(`/console/rules/${record.version}`, { replace: true });
  /** @type {Node[]} */
  const actions = [];
  if (editable) {
    actions.push(actionButton('Validate', validate, { 'data-testid': 'validate' }), actionButton('Save draft', save, { class: 'primary', 'data-testid': 'save' }));
    const activateHolder = confirmButton('Activate', `Activate v${record.version} now`, () => activate(context, record, reloadHere), { testid: 'activate' });
    activateButton = activateHolder.querySelector('button');
    actions.push(activateHolder);
    forceButton.addEventListener('click', () => {
      forceButton.disabled = true;
      void activate(context, record, reloadHere, { reason: forceReason.value.trim() }).finally(showActivation);
    });
    showActivation();
  } else if (canChange) {
    actions.push(actionButton(`New draft from v${record.version}`, () => createDraft(context, record), { class: 'primary', 'data-testid': 'new-draft' }));
    if (record.status === 'retired') actions.push(confirmButton('Roll back to this version', `Roll back to v${record.version}`, () => activate(context, record, reloadHere), { testid: 'rollback' }));
  }
  actions.push(h('a', { class: 'button', href: `/console/backtest?version=${record.version}` }, 'Backtest'), h('a', { class: 'button', href: `/console/try?version=${record.version}` }, 'Try a patient'));

  const form = h('form', { class: 'rules-form', novalidate: true, 'aria-label': `Rules v${record.version}` });
  form.addEventListener('submit', (event) => event.preventDefault());
  for (const group of fieldGroups) {
    const members = widgets.filter((widget) => (fieldTexts[widget.name]?.group ?? 'Other') === group);
    if (members.length > 0) form.appendChild(h('fieldset', { class: `field-group group-${group.toLowerCase()}` }, h('legend', null, group), members.map((widget) => widget.element)));
  }
  form.appendChild(h('fieldset', { class: 'field-group' }, h('legend', null, 'Note'), h('div', { class: 'field', 'data-field': 'note' }, h('label', { for: 'field-note', class: 'field-label' }, 'Note'), note)));

  replaceChildren(
    main,
    h('p', { class: 'breadcrumb' }, h('a', { href: '/console/rules' }, 'Rules'), ' / ', `v${record.version}`),
    pageHeading(
      `Rules v${record.version}`,
      [
        statusBadge(record.status),
        ` created ${dateTime(record.createdAt)} by ${record.createdBy}`,
        record.activatedAt ? ` · activated ${dateTime(record.activatedAt)}` : '',
        editable ? '' : record.status === 'draft' ? ' · read-only (viewer key)' : ' · read-only: only drafts change',
      ],
      h('div', { class: 'button-row' }, actions),
    ),
    active && active.version !== record.version ? h('p', { class: 'muted' }, `Fields that differ from the active v${active.version} are marked.`) : null,
    editable ? activationStatus : null,
    editable ? forcePanel : null,
    generalErrors,
    status,
    form,
  );
}
