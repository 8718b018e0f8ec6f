// @ts-check
/**
 * Backtests: start one for a rules version, follow its progress, read its result as tables and charts
 * (precision and recall at k against the two baselines, with 95% intervals; calibration; coverage), and
 * compare two runs side by side.
 */
import { ApiError, get, post, query } from '../api.js';
import { barChart, calibrationPlot, shareBar } from '../charts.js';
import { actionButton, h, replaceChildren } from '../dom.js';
import { dateTime, decimal, duration, estimate, percent } from '../format.js';
import { dataTable, notice, pageHeading, panel, statusBadge } from '../widgets.js';

/** @typedef {import('../main.js').PageContext} PageContext */
/** @typedef {import('../types.js').EvaluationRun} EvaluationRun */
/** @typedef {import('../types.js').EvaluationResult} EvaluationResult */
/** @typedef {import('../types.js').MethodResult} MethodResult */
/** @typedef {import('../types.js').Estimate} Estimate */

const splitLabels = { patient: 'patient: whole patients held out', temporal: 'temporal: the latest years held out' };
const modeLabels = { arrival: 'at ED arrival (no diagnoses of the visit)', 'with-diagnoses': 'with the visit’s own diagnoses (optimistic)' };
/** @type {Record<string, string>} */
const phaseLabels = { queued: 'Waiting to start', loading: 'Loading the cohort', predicting: 'Predicting held-out encounters', bootstrapping: 'Bootstrapping the intervals', done: 'Done' };

/** @param {EvaluationRun} run */
function optionsInWords(run) {
  const options = run.options;
  return [options.split ?? 'patient', `holdout ${options.holdout ?? 0.2}`, options.mode ?? 'arrival', `seed ${options.seed ?? 1}`].join(' · ');
}

/** @param {EvaluationRun} run */
function runDuration(run) {
  if (!run.startedAt) return '–';
  const end = run.finishedAt ? new Date(run.finishedAt).getTime() : Date.now();
  return duration(end - new Date(run.startedAt).getTime());
}

/** @type {import('../main.js').Page} */
export async function backtestPage(main, context) {
  /** @type {[import('../types.js').RulesList, { runs: EvaluationRun[] }]} */
  const [rules, runs] = await Promise.all([get('/admin/rules'), get(`/admin/evaluations${query({ limit: 100 })}`)]);
  if (!context.isCurrent()) return;
  const canRun = context.identity.role === 'informaticist';
  const wanted = Number(context.query.get('version') ?? rules.active ?? rules.versions[0]?.version);

  const version = h(
    'select',
    { id: 'backtest-version', name: 'version' },
    rules.versions.map((entry) => h('option', { value: entry.version }, `v${entry.version} (${entry.status})${entry.note ? ` – ${entry.note.slice(0, 40)}` : ''}`)),
  );
  version.value = String(wanted);
  const split = h('select', { id: 'backtest-split', name: 'split' }, Object.entries(splitLabels).map(([value, label]) => h('option', { value }, label)));
  const holdout = h('input', { id: 'backtest-holdout', name: 'holdout', type: 'number', step: '0.05', min: '0.05', max: '0.95', value: '0.2' });
  const mode = h('select', { id: 'backtest-mode', name: 'mode' }, Object.entries(modeLabels).map(([value, label]) => h('option', { value }, label)));
  const seed = h('input', { id: 'backtest-seed', name: 'seed', type: 'number', step: '1', min: '0', value: '1' });
  const resamples = h('input', { id: 'backtest-resamples', name: 'resamples', type: 'number', step: '100', min: '0', value: '1000' });
  const formError = h('p', { class: 'form-error', role: 'alert' });

  const start = async () => {
    replaceChildren(formError);
    try {
      /** @type {EvaluationRun} */
      const run = await post(`/admin/rules/${version.value}/evaluate`, {
        split: split.value,
        holdout: Number(holdout.value),
        mode: mode.value,
        seed: Number(seed.value),
        bootstrapResamples: Number(resamples.value),
      });
      context.navigate(`/console/backtest/${run.id}`);
    } catch (error) {
      const fields = error instanceof ApiError ? error.fieldIssues.map((issue) => `${issue.path}: ${issue.message}`) : [];
      replaceChildren(
        formError,
        error instanceof ApiError && error.status === 404 && error.code !== 'not-found'
          ? 'This server does not run backtests.'
          : `${error instanceof Error ? error.message : String(error)}${fields.length ? ` (${fields.join('; ')})` : ''}`,
      );
    }
  };

  /** @type {Set<string>} */
  const picked = new Set();
  const compare = h('button', { type: 'button', disabled: true, 'data-testid': 'compare' }, 'Compare the two selected');
  compare.addEventListener('click', () => {
    const [a, b] = [...picked];
    if (a && b) context.navigate(`/console/backtest/compare/${a}/${b}`);
  });

  replaceChildren(
    main,
    pageHeading(
      'Backtest',
      'Hold out encounters the rules never see, build each one’s cohort from the others only, and compare the cards with what the encounter really received and what became of it.',
    ),
    canRun
      ? panel(
          'Start a backtest',
          h(
            'form',
            { class: 'inline-form', novalidate: true, onsubmit: (event) => event.preventDefault() },
            h('div', { class: 'field' }, h('label', { for: 'backtest-version', class: 'field-label' }, 'Rules version'), version),
            h('div', { class: 'field' }, h('label', { for: 'backtest-split', class: 'field-label' }, 'Split'), split),
            h('div', { class: 'field narrow' }, h('label', { for: 'backtest-holdout', class: 'field-label' }, 'Held out'), holdout),
            h('div', { class: 'field' }, h('label', { for: 'backtest-mode', class: 'field-label' }, 'Seen as'), mode),
            h('div', { class: 'field narrow' }, h('label', { for: 'backtest-seed', class: 'field-label' }, 'Seed'), seed),
            h('div', { class: 'field narrow' }, h('label', { for: 'backtest-resamples', class: 'field-label' }, 'Bootstrap'), resamples),
            h('div', { class: 'field field-button' }, actionButton('Start backtest', start, { class: 'primary', 'data-testid': 'start-backtest' })),
          ),
          formError,
        )
      : notice('Starting a backtest needs an informaticist key; results can be read with this one.'),
    panel(
      'Runs',
      dataTable(
        [
          {
            label: '',
            cell: (run) => {
              if (run.status !== 'succeeded') return '';
              const box = h('input', { type: 'checkbox', 'aria-label': `Select run ${run.id} to compare`, 'data-run': run.id });
              box.addEventListener('change', () => {
                if (box.checked) picked.add(run.id);
                else picked.delete(run.id);
                compare.disabled = picked.size !== 2;
              });
              return box;
            },
          },
          { label: 'Run', cell: (run) => h('a', { href: `/console/backtest/${run.id}` }, `#${run.id}`) },
          { label: 'Rules', cell: (run) => `v${run.rulesVersion}` },
          { label: 'Status', cell: (run) => statusBadge(run.status) },
          { label: 'Options', cell: (run) => optionsInWords(run) },
          { label: 'By', cell: (run) => run.requestedBy ?? '' },
          { label: 'Started', cell: (run) => dateTime(run.startedAt ?? run.createdAt) },
          { label: 'Took', numeric: true, cell: (run) => runDuration(run) },
        ],
        runs.runs,
        { empty: 'No backtest has been run yet.' },
      ),
      runs.runs.length > 1 ? h('div', { class: 'button-row' }, compare) : null,
    ),
  );
}

/**
 * @param {EvaluationResult} result
 * @param {'workup' | 'treatment'} category
 */
function itemMeasures(result, category) {
  /** @type {Array<{ label: string, pick: (method: MethodResult) => Estimate }>} */
  const measures = [];
  for (const k of result.options.k) {
    /** @param {MethodResult} method */
    const at = (method) => method[category].atK.find((entry) => entry.k === k);
    const missing = { value: null, lower: null, upper: null, n: 0 };
    measures.push(
      { label: `precision@${k}`, pick: (method) => at(method)?.precision ?? missing },
      { label: `recall@${k}`, pick: (method) => at(method)?.recall ?? missing },
      { label: `weighted recall@${k}`, pick: (method) => at(method)?.weightedRecall ?? missing },
    );
  }
  return measures;
}

/** @param {Estimate} value */
function estimateCell(value) {
  return h('span', { class: 'estimate', title: `n = ${value.n}` }, estimate(value));
}

/**
 * @param {EvaluationResult} result
 * @param {'workup' | 'treatment'} category
 */
function itemPanel(result, category) {
  const measures = itemMeasures(result, category);
  const methods = result.methods;
  const evaluated = methods[0]?.[category].evaluated ?? 0;
  return panel(
    category === 'workup' ? 'Workup: labs and imaging' : 'Treatment: medications and procedures',
    h('p', { class: 'muted' }, `${evaluated} held-out encounters received at least one ${category} item; recall is measured over them. Bars: value; whiskers: bootstrap 95% interval.`),
    barChart({
      label: `${category} precision and recall at k, rules against baselines`,
      series: methods.map((method) => ({ label: method.label })),
      groups: measures.map((measure) => ({
        label: measure.label.replace('weighted recall', 'w-recall'),
        values: methods.map((method) => {
          const value = measure.pick(method);
          return { value: value.value, lower: value.lower, upper: value.upper, title: `${method.label}, ${measure.label}: ${estimate(value, 3)}` };
        }),
      })),
    }),
    dataTable(
      [{ label: 'Measure', cell: (measure) => measure.label }, ...methods.map((method) => ({ label: method.label, numeric: true, cell: (/** @type {typeof measures[number]} */ measure) => estimateCell(measure.pick(method)) }))],
      measures,
      { className: 'compact' },
    ),
  );
}

/** @param {EvaluationResult} result */
function prognosisPanel(result) {
  const methods = result.methods;
  /** @type {Array<{ label: string, pick: (method: MethodResult) => Estimate }>} */
  const rows = [
    { label: 'Admission AUROC', pick: (method) => method.admission.auroc },
    { label: 'Admission Brier score', pick: (method) => method.admission.brier },
    { label: '72-h return AUROC', pick: (method) => method.return72h.auroc },
    { label: '72-h return Brier score', pick: (method) => method.return72h.brier },
  ];
  const observed = methods[0];
  return panel(
    'Prognosis: admission and 72-hour return',
    h(
      'p',
      { class: 'muted' },
      `Observed: admission ${percent(observed?.admission.observedRate ?? null)}, 72-h return ${percent(observed?.return72h.observedRate ?? null)}. `,
      `Encounters without a card are predicted the training base rate (admission ${percent(result.baseRates.admission)}, return ${percent(result.baseRates.return72h)}). AUROC: higher is better; Brier: lower is better.`,
    ),
    dataTable(
      [
        { label: 'Measure', cell: (row) => row.label },
        ...methods.map((method) => ({ label: method.label, numeric: true, cell: (/** @type {typeof rows[number]} */ row) => estimateCell(row.pick(method)) })),
      ],
      rows,
      { className: 'compact' },
    ),
    h(
      'div',
      { class: 'chart-pair' },
      h('div', null, h('h3', null, 'Calibration: admission'), calibrationPlot({ label: 'Calibration of admission risk by decile', series: methods.map((method) => ({ label: method.label, points: method.admission.calibration.map((row) => ({ ...row })) })) })),
      h('div', null, h('h3', null, 'Calibration: 72-hour return'), calibrationPlot({ label: 'Calibration of 72-hour return risk by decile', series: methods.map((method) => ({ label: method.label, points: method.return72h.calibration.map((row) => ({ ...row })) })) })),
    ),
    h(
      'details',
      { class: 'calibration-tables' },
      h('summary', null, 'Calibration tables (deciles of predicted risk)'),
      methods.map((method) =>
        h(
          'div',
          null,
          h('h4', null, method.label),
          dataTable(
            [
              { label: 'Decile', numeric: true, cell: (row) => row.group },
              { label: 'n', numeric: true, cell: (row) => row.n },
              { label: 'Admission: predicted', numeric: true, cell: (row) => decimal(row.meanPredicted, 3) },
              { label: 'observed', numeric: true, cell: (row) => decimal(row.observedRate, 3) },
            ],
            method.admission.calibration,
            { className: 'compact' },
          ),
          dataTable(
            [
              { label: 'Decile', numeric: true, cell: (row) => row.group },
              { label: 'n', numeric: true, cell: (row) => row.n },
              { label: '72-h return: predicted', numeric: true, cell: (row) => decimal(row.meanPredicted, 3) },
              { label: 'observed', numeric: true, cell: (row) => decimal(row.observedRate, 3) },
            ],
            method.return72h.calibration,
            { className: 'compact' },
          ),
        ),
      ),
    ),
  );
}

/** @param {EvaluationResult} result */
function coveragePanel(result) {
  const { coverage } = result;
  const withCard = coverage.withCard;
  return panel(
    'Coverage',
    h(
      'div',
      { class: 'stat-row' },
      h(
        'div',
        { class: 'stat' },
        h('div', { class: 'stat-value', 'data-testid': 'coverage' }, percent(withCard.value)),
        h('div', { class: 'stat-label' }, `of ${coverage.heldOutEncounters} held-out encounters got a card`, withCard.lower !== null && withCard.upper !== null ? ` (95% CI ${percent(withCard.lower)}–${percent(withCard.upper)})` : ''),
      ),
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(coverage.noCard.cohortTooSmall)), h('div', { class: 'stat-label' }, 'no card: cohort too small')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(coverage.noCard.nothingToMatch)), h('div', { class: 'stat-label' }, 'no card: nothing to match on')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(coverage.withoutRelaxation)), h('div', { class: 'stat-label' }, 'cards needed no relaxation')),
      coverage.cohortSize
        ? h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, String(coverage.cohortSize.median)), h('div', { class: 'stat-label' }, `median cohort size (${coverage.cohortSize.min}–${coverage.cohortSize.max})`))
        : null,
    ),
    h('h3', null, 'Relaxation steps needed'),
    dataTable(
      [
        { label: 'Step', cell: (step) => h('code', null, step.step) },
        { label: 'Meaning', cell: (step) => step.description },
        { label: 'Encounters', numeric: true, cell: (step) => step.encounters },
        { label: 'Share of carded', cell: (step) => h('span', { class: 'share-cell' }, shareBar(step.share), percent(step.share)) },
      ],
      coverage.relaxation,
      { empty: 'The rules declare no relaxation steps.', className: 'compact' },
    ),
  );
}

/**
 * The whole result of one run.
 * @param {EvaluationRun} run
 * @param {EvaluationResult} result
 */
function resultView(run, result) {
  const split = result.split;
  return h(
    'div',
    { class: 'result', 'data-testid': 'backtest-result' },
    panel(
      'What was measured',
      h(
        'dl',
        { class: 'summary-list' },
        h('dt', null, 'Rules'),
        h('dd', null, h('a', { href: `/console/rules/${result.rulesVersion}` }, `v${result.rulesVersion}`)),
        h('dt', null, 'Held out'),
        h('dd', null, `${split.heldOutEncounters} encounters of ${split.heldOutPatients} patients; trained on ${split.trainingEncounters} encounters of ${split.trainingPatients} patients. ${split.description}`),
        h('dt', null, 'Seen as'),
        h('dd', null, result.mode.label),
        h('dt', null, 'Options'),
        h('dd', null, `${result.options.split} split, holdout ${result.options.holdout}, seed ${result.options.seed}, ${result.options.bootstrapResamples} bootstrap resamples, items at ${result.options.itemLevel} level`),
        h('dt', null, 'Run'),
        h('dd', null, `#${run.id} by ${run.requestedBy ?? '–'}, ${dateTime(run.finishedAt)}, took ${duration(result.durationMs)}`),
      ),
      split.heldOutEncounters < 100 ? notice(`Only ${split.heldOutEncounters} held-out encounters: the intervals are wide; read differences between methods with them.`, 'warning') : null,
    ),
    itemPanel(result, 'workup'),
    itemPanel(result, 'treatment'),
    prognosisPanel(result),
    coveragePanel(result),
    result.notes.length > 0 ? panel('How to read these figures', h('ul', { class: 'notes' }, result.notes.map((note) => h('li', null, note)))) : null,
  );
}

/**
 * @param {EvaluationRun} run
 */
function progressView(run) {
  const { done, total } = run.progress;
  const bar = h('progress', { max: Math.max(total, 1), value: total > 0 ? done : 0, 'aria-label': 'Backtest progress', 'data-testid': 'backtest-progress' });
  if (total === 0) bar.removeAttribute('value');
  return panel(
    run.status === 'queued' ? 'Waiting to start' : 'Running',
    h(
      'p',
      { 'data-testid': 'backtest-progress-text' },
      phaseLabels[run.progress.phase ?? run.status] ?? run.progress.phase ?? run.status,
      total > 0 ? ` – ${done} of ${total} (${Math.floor((100 * done) / total)}%)` : '',
    ),
    bar,
    h('p', { class: 'muted' }, `Started ${dateTime(run.startedAt ?? run.createdAt)}. This page follows the run; leaving it does not stop it.`),
  );
}

/** @type {import('../main.js').Page} */
export async function backtestRunPage(main, context) {
  const id = context.params.id ?? '';
  const body = h('div');
  const heading = h('div');
  replaceChildren(main, h('p', { class: 'breadcrumb' }, h('a', { href: '/console/backtest' }, 'Backtest'), ' / ', `run #${id}`), heading, body);
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  context.onLeave(() => clearTimeout(timer));
  const poll = async () => {
    /** @type {EvaluationRun} */
    const run = await get(`/admin/evaluations/${encodeURIComponent(id)}`);
    if (!context.isCurrent()) return;
    replaceChildren(heading, pageHeading(`Backtest #${run.id} of rules v${run.rulesVersion}`, [statusBadge(run.status), ` ${optionsInWords(run)}`]));
    if (run.status === 'queued' || run.status === 'running') {
      replaceChildren(body, progressView(run));
      timer = setTimeout(() => void poll().catch((error) => replaceChildren(body, notice(String(error instanceof Error ? error.message : error), 'error'))), 1000);
    } else if (run.status === 'failed') {
      replaceChildren(body, notice(`The backtest failed: ${run.error ?? 'no reason recorded'}`, 'error'));
    } else if (run.result) {
      replaceChildren(body, resultView(run, run.result));
    } else {
      replaceChildren(body, notice('The run finished without a result.', 'error'));
    }
  };
  await poll();
}

/**
 * @param {number | null} a
 * @param {number | null} b
 * @param {boolean} lowerIsBetter
 */
function delta(a, b, lowerIsBetter) {
  if (a === null || b === null) return h('span', { class: 'muted' }, '–');
  const difference = b - a;
  const better = lowerIsBetter ? difference < 0 : difference > 0;
  const className = Math.abs(difference) < 0.0005 ? 'delta-same' : better ? 'delta-better' : 'delta-worse';
  return h('span', { class: className }, className === 'delta-same' ? 'same' : `${difference > 0 ? '+' : '−'}${Math.abs(difference).toFixed(3)}`);
}

/** @type {import('../main.js').Page} */
export async function backtestComparePage(main, context) {
  /** @type {[EvaluationRun, EvaluationRun]} */
  const [a, b] = await Promise.all([get(`/admin/evaluations/${encodeURIComponent(context.params.a ?? '')}`), get(`/admin/evaluations/${encodeURIComponent(context.params.b ?? '')}`)]);
  if (!context.isCurrent()) return;
  const crumbs = h('p', { class: 'breadcrumb' }, h('a', { href: '/console/backtest' }, 'Backtest'), ' / compare');
  if (!a.result || !b.result) {
    replaceChildren(main, crumbs, pageHeading('Compare backtests'), notice('Both runs must have succeeded to be compared.', 'warning'));
    return;
  }
  const resultA = a.result;
  const resultB = b.result;
  const rulesOf = (/** @type {EvaluationResult} */ result) => result.methods.find((method) => method.id === 'rules') ?? result.methods[0];
  const ruleA = rulesOf(resultA);
  const ruleB = rulesOf(resultB);
  if (!ruleA || !ruleB) throw new Error('A result without methods');
  const labelA = `v${a.rulesVersion} (#${a.id})`;
  const labelB = `v${b.rulesVersion} (#${b.id})`;
  const sameOptions = ['split', 'holdout', 'seed', 'mode', 'itemLevel'].every(
    (key) => /** @type {Record<string, unknown>} */ (resultA.options)[key] === /** @type {Record<string, unknown>} */ (resultB.options)[key],
  );

  /** @type {Array<{ label: string, a: Estimate, b: Estimate, lowerIsBetter?: boolean }>} */
  const rows = [];
  for (const category of /** @type {const} */ (['workup', 'treatment'])) {
    const measuresA = itemMeasures(resultA, category);
    for (const measure of measuresA) rows.push({ label: `${category} ${measure.label}`, a: measure.pick(ruleA), b: measure.pick(ruleB) });
  }
  rows.push(
    { label: 'admission AUROC', a: ruleA.admission.auroc, b: ruleB.admission.auroc },
    { label: 'admission Brier score', a: ruleA.admission.brier, b: ruleB.admission.brier, lowerIsBetter: true },
    { label: '72-h return AUROC', a: ruleA.return72h.auroc, b: ruleB.return72h.auroc },
    { label: '72-h return Brier score', a: ruleA.return72h.brier, b: ruleB.return72h.brier, lowerIsBetter: true },
    { label: 'coverage (any card)', a: resultA.coverage.withCard, b: resultB.coverage.withCard },
  );
  const charted = rows.filter((row) => /recall|precision/.test(row.label) && !row.label.startsWith('treatment'));

  replaceChildren(
    main,
    crumbs,
    pageHeading(`Rules ${labelA} against ${labelB}`, 'The rules of each run, on its own held-out encounters; the baselines of both runs are in the columns below.'),
    sameOptions ? null : notice('The two runs used different split, holdout, seed, mode or item level: their figures are less comparable.', 'warning'),
    panel(
      'Key figures',
      barChart({
        label: `Workup precision and recall at k: ${labelA} against ${labelB}`,
        prefix: 'compare',
        series: [{ label: labelA }, { label: labelB }],
        groups: charted.map((row) => ({
          label: row.label.replace('workup ', '').replace('weighted recall', 'w-recall'),
          values: [
            { value: row.a.value, lower: row.a.lower, upper: row.a.upper },
            { value: row.b.value, lower: row.b.lower, upper: row.b.upper },
          ],
        })),
      }),
      dataTable(
        [
          { label: 'Measure', cell: (row) => row.label },
          { label: labelA, numeric: true, cell: (row) => estimateCell(row.a) },
          { label: labelB, numeric: true, cell: (row) => estimateCell(row.b) },
          { label: 'Difference', numeric: true, cell: (row) => delta(row.a.value, row.b.value, row.lowerIsBetter ?? false) },
        ],
        rows,
        { className: 'compact' },
      ),
    ),
    h('div', { class: 'side-by-side' }, h('div', null, h('h2', null, labelA), resultView(a, resultA)), h('div', null, h('h2', null, labelB), resultView(b, resultB))),
  );
}
