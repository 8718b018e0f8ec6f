// @ts-check
/**
 * Inline SVG charts, built as DOM nodes (no library, no inline style: colours come from classes in style.css).
 * Each chart carries a <title> per mark for a tooltip and an aria-label for screen readers.
 */
import { h, s } from './dom.js';

/** @typedef {{ label: string }} Series */
/** @typedef {{ value: number | null, lower?: number | null, upper?: number | null, title?: string }} BarValue */
/** @typedef {{ label: string, values: BarValue[] }} BarGroup */

/**
 * @param {Series[]} series
 * @param {string} [prefix]
 */
export function legend(series, prefix = 'series') {
  return h(
    'ul',
    { class: 'legend' },
    series.map((entry, index) => h('li', null, h('span', { class: `swatch ${prefix}-${index}`, 'aria-hidden': 'true' }), entry.label)),
  );
}

/**
 * A round upper bound for an axis.
 * @param {number} value
 */
function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/**
 * Grouped bars with 95% interval whiskers; values in [0, max].
 * @param {{ groups: BarGroup[], series: Series[], max?: number, label: string, height?: number, prefix?: string }} options
 */
export function barChart(options) {
  const { groups, series } = options;
  const prefix = options.prefix ?? 'series';
  const max = options.max ?? 1;
  const width = 900;
  const height = options.height ?? 280;
  const margin = { left: 44, right: 10, top: 12, bottom: 34 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  /** @param {number} value */
  const y = (value) => margin.top + plotHeight * (1 - Math.min(Math.max(value, 0), max) / max);
  const groupWidth = plotWidth / Math.max(groups.length, 1);
  const barWidth = Math.min(30, (groupWidth * 0.78) / Math.max(series.length, 1));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => fraction * max);
  const svg = s(
    'svg',
    { viewBox: `0 0 ${width} ${height}`, class: 'chart bar-chart', role: 'img', 'aria-label': options.label },
    s('title', null, options.label),
    ticks.map((tick) =>
      s(
        'g',
        { class: 'tick' },
        s('line', { x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: tick === 0 ? 'axis' : 'grid' }),
        s('text', { x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, max <= 1 ? tick.toFixed(2) : String(Math.round(tick))),
      ),
    ),
    groups.map((group, groupIndex) => {
      const centre = margin.left + groupWidth * (groupIndex + 0.5);
      const start = centre - (barWidth * group.values.length) / 2;
      return s(
        'g',
        { class: 'group' },
        group.values.map((bar, index) => {
          const x = start + barWidth * index;
          const cx = x + barWidth / 2;
          if (bar.value === null) {
            return s('text', { x: cx, y: y(0) - 4, 'text-anchor': 'middle', class: 'missing' }, '–');
          }
          const whisker =
            bar.lower !== null && bar.lower !== undefined && bar.upper !== null && bar.upper !== undefined
              ? s(
                  'g',
                  { class: 'whisker' },
                  s('line', { x1: cx, x2: cx, y1: y(bar.lower), y2: y(bar.upper) }),
                  s('line', { x1: cx - 4, x2: cx + 4, y1: y(bar.lower), y2: y(bar.lower) }),
                  s('line', { x1: cx - 4, x2: cx + 4, y1: y(bar.upper), y2: y(bar.upper) }),
                )
              : null;
          return s(
            'g',
            null,
            s(
              'rect',
              { x: x + 1, y: y(bar.value), width: Math.max(barWidth - 2, 1), height: Math.max(y(0) - y(bar.value), 0.5), class: `bar ${prefix}-${index}` },
              s('title', null, bar.title ?? `${series[index]?.label ?? ''}: ${bar.value.toFixed(3)}`),
            ),
            whisker,
          );
        }),
        s('text', { x: centre, y: height - margin.bottom + 18, 'text-anchor': 'middle', class: 'group-label' }, group.label),
      );
    }),
  );
  return h('figure', { class: 'chart-figure' }, svg, legend(series, prefix));
}

/** @typedef {{ meanPredicted: number, observedRate: number, n: number, group: number }} CalibrationPoint */

/**
 * Observed rate against mean predicted risk per decile, one line per method, with the diagonal of perfect
 * calibration. The axes stop at a round value above the largest point, so rare outcomes are not squashed.
 * @param {{ series: Array<Series & { points: CalibrationPoint[] }>, label: string, prefix?: string }} options
 */
export function calibrationPlot(options) {
  const prefix = options.prefix ?? 'series';
  const size = 300;
  const margin = { left: 46, right: 12, top: 12, bottom: 40 };
  const plot = size - margin.left - margin.right;
  const largest = Math.max(0.05, ...options.series.flatMap((entry) => entry.points.flatMap((point) => [point.meanPredicted, point.observedRate])));
  const max = Math.min(1, niceMax(largest));
  /** @param {number} value */
  const x = (value) => margin.left + (plot * Math.min(value, max)) / max;
  /** @param {number} value */
  const y = (value) => margin.top + plot * (1 - Math.min(value, max) / max);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => fraction * max);
  const svg = s(
    'svg',
    { viewBox: `0 0 ${size} ${size}`, class: 'chart calibration', role: 'img', 'aria-label': options.label },
    s('title', null, options.label),
    ticks.map((tick) =>
      s(
        'g',
        { class: 'tick' },
        s('line', { x1: margin.left, x2: margin.left + plot, y1: y(tick), y2: y(tick), class: tick === 0 ? 'axis' : 'grid' }),
        s('line', { x1: x(tick), x2: x(tick), y1: margin.top, y2: margin.top + plot, class: tick === 0 ? 'axis' : 'grid' }),
        s('text', { x: margin.left - 6, y: y(tick) + 4, 'text-anchor': 'end' }, tick.toFixed(2)),
        s('text', { x: x(tick), y: margin.top + plot + 14, 'text-anchor': 'middle' }, tick.toFixed(2)),
      ),
    ),
    s('line', { x1: x(0), y1: y(0), x2: x(max), y2: y(max), class: 'diagonal' }),
    s('text', { x: margin.left + plot / 2, y: size - 6, 'text-anchor': 'middle', class: 'axis-label' }, 'mean predicted risk'),
    s('text', { x: 12, y: margin.top + plot / 2, 'text-anchor': 'middle', class: 'axis-label', transform: `rotate(-90 12 ${margin.top + plot / 2})` }, 'observed rate'),
    options.series.map((entry, index) => {
      const points = [...entry.points].sort((a, b) => a.meanPredicted - b.meanPredicted);
      return s(
        'g',
        { class: `calibration-series ${prefix}-${index}` },
        points.length > 1 ? s('polyline', { points: points.map((point) => `${x(point.meanPredicted)},${y(point.observedRate)}`).join(' '), class: 'line' }) : null,
        points.map((point) =>
          s(
            'circle',
            { cx: x(point.meanPredicted), cy: y(point.observedRate), r: Math.min(3 + Math.sqrt(point.n) / 2, 8), class: 'point' },
            s('title', null, `${entry.label}, group ${point.group}: n=${point.n}, predicted ${point.meanPredicted.toFixed(3)}, observed ${point.observedRate.toFixed(3)}`),
          ),
        ),
      );
    }),
  );
  return h('figure', { class: 'chart-figure calibration-figure' }, svg, legend(options.series, prefix));
}

/**
 * A horizontal share bar (HTML; the width is set through the CSSOM, which the CSP allows, not a style attribute).
 * @param {number | null} share
 * @param {string} [className]
 */
export function shareBar(share, className = '') {
  const fill = h('span', { class: `share-fill ${className}` });
  fill.style.width = `${Math.round(Math.min(Math.max(share ?? 0, 0), 1) * 1000) / 10}%`;
  return h('span', { class: 'share-bar', 'aria-hidden': 'true' }, fill);
}
