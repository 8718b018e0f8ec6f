/** A backtest result as plain-text tables, for the terminal. Pure. */
import type { Estimate, EvaluationResult, MethodResult, OutcomeMetrics } from './result.js';

function formatNumber(value: number | null, digits: number): string {
  return value === null ? '–' : value.toFixed(digits);
}

/** "0.694 (0.36–1.00) n=6"; the interval is left out when there was no bootstrap. */
export function formatEstimate(estimate: Estimate, digits = 3): string {
  if (estimate.value === null) return `– n=${estimate.n}`;
  const interval =
    estimate.lower === null || estimate.upper === null ? '' : ` (${estimate.lower.toFixed(2)}–${estimate.upper.toFixed(2)})`;
  return `${estimate.value.toFixed(digits)}${interval} n=${estimate.n}`;
}

function percent(value: number | null): string {
  return value === null ? '–' : `${Math.round(value * 100)}%`;
}

/** Left-aligned first column, the others too; columns two spaces apart. */
export function textTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

function itemTable(result: EvaluationResult, category: 'workup' | 'treatment'): string {
  const rows: string[][] = [];
  for (const k of result.options.k) {
    const at = (method: MethodResult) => method[category].atK.find((entry) => entry.k === k)!;
    rows.push([`precision@${k}`, ...result.methods.map((method) => formatEstimate(at(method).precision))]);
    rows.push([`recall@${k}`, ...result.methods.map((method) => formatEstimate(at(method).recall))]);
    rows.push([`weighted recall@${k}`, ...result.methods.map((method) => formatEstimate(at(method).weightedRecall))]);
  }
  const evaluated = result.methods[0]?.[category].evaluated ?? 0;
  const title = `${category === 'workup' ? 'Workup' : 'Treatment'} (${evaluated} held-out encounters received at least one item)`;
  return `${title}\n${textTable(['', ...result.methods.map((method) => method.label)], rows)}`;
}

function prognosisTable(result: EvaluationResult): string {
  const outcome = (label: string, pick: (method: MethodResult) => OutcomeMetrics) => [
    [`${label} AUROC`, ...result.methods.map((method) => formatEstimate(pick(method).auroc))],
    [`${label} Brier score`, ...result.methods.map((method) => formatEstimate(pick(method).brier))],
  ];
  const rows = [
    ...outcome('admission', (method) => method.admission),
    ...outcome('72-h return', (method) => method.return72h),
    ['risk = training base rate', ...result.methods.map((method) => `${method.usedBaseRate} of ${result.split.heldOutEncounters}`)],
  ];
  const observed = result.methods[0];
  const title =
    `Prognosis (observed: admission ${percent(observed?.admission.observedRate ?? null)}, ` +
    `72-h return ${percent(observed?.return72h.observedRate ?? null)}; ` +
    `training base rates ${percent(result.baseRates.admission)} and ${percent(result.baseRates.return72h)})`;
  return `${title}\n${textTable(['', ...result.methods.map((method) => method.label)], rows)}`;
}

function calibrationTables(result: EvaluationResult): string {
  const sections: string[] = [];
  for (const [label, pick] of [
    ['admission', (method: MethodResult) => method.admission],
    ['72-h return', (method: MethodResult) => method.return72h],
  ] as const) {
    for (const method of result.methods) {
      const rows = pick(method).calibration.map((row) => [
        String(row.group),
        String(row.n),
        formatNumber(row.meanPredicted, 3),
        formatNumber(row.observedRate, 3),
      ]);
      sections.push(`Calibration, ${label}: ${method.label}\n${textTable(['decile', 'n', 'mean predicted', 'observed'], rows)}`);
    }
  }
  return sections.join('\n\n');
}

function coverageSection(result: EvaluationResult): string {
  const { coverage } = result;
  const carded = coverage.withCard.value === null ? 0 : Math.round(coverage.withCard.value * coverage.heldOutEncounters);
  const interval =
    coverage.withCard.lower === null || coverage.withCard.upper === null
      ? ''
      : `, 95% CI ${percent(coverage.withCard.lower)}–${percent(coverage.withCard.upper)}`;
  const lines = [
    `Coverage (rules v${result.rulesVersion})`,
    `  any card:        ${carded} of ${coverage.heldOutEncounters} held-out encounters (${percent(coverage.withCard.value)}${interval})`,
    `  no card:         ${coverage.noCard.cohortTooSmall} cohort too small, ${coverage.noCard.nothingToMatch} nothing to match on`,
    `  no relaxation:   ${coverage.withoutRelaxation} of ${carded}`,
  ];
  const rows = coverage.relaxation.map((step) => [step.step, step.description, `${step.encounters}`, percent(step.share)]);
  const sizes = coverage.cohortSize
    ? `  cohort size:     median ${coverage.cohortSize.median}, ${coverage.cohortSize.min}–${coverage.cohortSize.max}`
    : '  cohort size:     –';
  return `${lines.join('\n')}\n${sizes}\n\nRelaxation steps needed (of the encounters with a card; steps are cumulative)\n${textTable(['step', 'meaning', 'encounters', 'share'], rows)}`;
}

/** The whole result: what was held out, the measures side by side, calibration, coverage, and how to read them. */
export function formatEvaluationReport(result: EvaluationResult): string {
  const { split } = result;
  const reputation = result.reputation;
  const reputationLine =
    reputation === undefined
      ? null
      : `Clinician reputation (training set): ${reputation.trainingItemsWithClinician} of ${reputation.trainingItems} items name their ordering clinician, ` +
        `${reputation.clinicians} clinicians` +
        (reputation.weight === null
          ? ': no weights, so both rules columns are the same'
          : `, weights ${reputation.weight.min.toFixed(2)}–${reputation.weight.max.toFixed(2)} (median ${reputation.weight.median.toFixed(2)})`);
  const header = [
    `Backtest of rules v${result.rulesVersion}: ${split.kind} split, holdout ${result.options.holdout}, seed ${result.options.seed}, ` +
      `items at ${result.options.itemLevel} level (${(result.durationMs / 1000).toFixed(1)} s)`,
    `Held out: ${split.description}`,
    `Seen as: ${result.mode.label}`,
    ...(reputationLine === null ? [] : [reputationLine]),
  ].join('\n');
  const notes = `Notes\n${result.notes.map((note) => `  - ${note}`).join('\n')}`;
  return [
    header,
    itemTable(result, 'workup'),
    itemTable(result, 'treatment'),
    prognosisTable(result),
    coverageSection(result),
    calibrationTables(result),
    notes,
  ].join('\n\n');
}
