// @ts-check
/** Numbers and dates as the console shows them. */

/**
 * 0.923 → "92%"; null → "–".
 * @param {number | null | undefined} share
 * @param {number} [digits]
 */
export function percent(share, digits = 0) {
  if (share === null || share === undefined || Number.isNaN(share)) return '–';
  if (share > 0 && share < 0.005 && digits === 0) return '<1%';
  return `${(share * 100).toFixed(digits)}%`;
}

/**
 * @param {number | null | undefined} value
 * @param {number} [digits]
 */
export function decimal(value, digits = 2) {
  return value === null || value === undefined || Number.isNaN(value) ? '–' : value.toFixed(digits);
}

/**
 * "0.42 (0.31–0.55)".
 * @param {{ value: number | null, lower: number | null, upper: number | null }} estimate
 * @param {number} [digits]
 */
export function estimate(estimate, digits = 2) {
  if (estimate.value === null) return '–';
  const interval = estimate.lower === null || estimate.upper === null ? '' : ` (${estimate.lower.toFixed(digits)}–${estimate.upper.toFixed(digits)})`;
  return `${estimate.value.toFixed(digits)}${interval}`;
}

/** @param {number} value */
const two = (value) => String(value).padStart(2, '0');

/**
 * "2026-11-23 14:02" in the browser's time zone.
 * @param {string | null | undefined} iso
 */
export function dateTime(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '–';
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

/**
 * "12.3 s", "2 min 5 s".
 * @param {number} milliseconds
 */
export function duration(milliseconds) {
  const seconds = milliseconds / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/**
 * @param {number} count
 * @param {string} singular
 * @param {string} [plural]
 */
export function plural(count, singular, plural = `${singular}s`) {
  return `${count} ${count === 1 ? singular : plural}`;
}
