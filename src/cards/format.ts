/** Text helpers for cards: numbers a clinician reads at a glance, markdown that cannot be hijacked. */

/** 0.923 → "92%"; below 1% but above 0 → "<1%". */
export function formatPercent(rate: number): string {
  if (rate > 0 && rate < 0.005) return '<1%';
  return `${Math.round(rate * 100)}%`;
}

/** Minutes as "5.2 h" under two days, else "3.1 d". */
export function formatDuration(minutes: number): string {
  const hours = minutes / 60;
  return hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
}

/**
 * Escapes text that came from data or from the request before it goes into markdown, so that a complaint
 * such as `<img src=x onerror=…>` or `[click](javascript:…)` shows as text (CDS Hooks renders GitHub markdown).
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\p{Cc}\p{Cf}]/gu, ' ')
    .replace(/[\\`*_{}[\]()#!|<>&~]/g, (character) => `\\${character}`)
    .replace(/\s+/g, ' ')
    .trim();
}

/** Cuts a summary to fit the spec's limit (< 140 characters) at a word boundary. */
export function fitSummary(text: string, limit = 139): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  if (clean.length <= limit) return clean;
  const cut = clean.slice(0, limit - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > limit / 2 ? cut.slice(0, space) : cut).replace(/[,;:\s]+$/, '')}…`;
}

/** A markdown table; cells are escaped by the caller. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
