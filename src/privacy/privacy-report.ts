/**
 * The de-identification report (`cli privacy-report`, docs/privacy.md): how small the groups of encounters that
 * share the quasi-identifiers age, sex, complaint and site get (the k-anonymity view), and whether any stored text
 * looks like one of the HIPAA Safe Harbor identifiers (45 CFR 164.514(b)(2)): phone and fax numbers, SSNs, e-mail
 * addresses, IP addresses, full dates. It reads; it never changes anything, and it never prints a value it found.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.js';
import {
  countMatchesInColumn,
  countRareComplaintTexts,
  isTextLike,
  listStoredColumns,
  quasiIdentifierGroups,
  sampleMatches,
  type QuasiIdentifierGroup,
  type ValueMatcher,
} from '../db/privacy-scan.repository.js';

/** Identifier shapes, as PostgreSQL regular expressions (case-insensitive, `~*`). */
export const identifierPatterns = [
  { name: 'ssn', label: 'social security number', pattern: '(^|[^0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}([^0-9]|$)' },
  { name: 'phone', label: 'phone or fax number', pattern: '(^|[^0-9])(\\+?1[ .-]?)?\\(?[0-9]{3}\\)?[ .-]?[0-9]{3}[ .-][0-9]{4}([^0-9]|$)' },
  { name: 'email', label: 'e-mail address', pattern: '[a-z0-9._%+-]+@[a-z0-9-]+(\\.[a-z0-9-]+)*\\.[a-z]{2,}' },
  { name: 'ip-address', label: 'IPv4 address', pattern: '(^|[^0-9.])[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}([^0-9.]|$)' },
  {
    name: 'full-date',
    label: 'date with month and day',
    pattern: '(^|[^0-9])(1[89]|2[0-9])[0-9]{2}[-/](0[1-9]|1[0-2])[-/](0[1-9]|[12][0-9]|3[01])([^0-9]|$)',
  },
] as const satisfies ReadonlyArray<{ name: string; label: string; pattern: string }>;

export type IdentifierKind = (typeof identifierPatterns)[number]['name'];

/**
 * Columns whose text the service itself writes and that hold no patient data: migrations' bookkeeping, backtest
 * results and the ingest's own notes (file names, counts). Scanned all the same; findings there are listed apart.
 */
const serviceColumns = new Set([
  'kysely_migration.name',
  'kysely_migration.timestamp',
  'kysely_migration_lock.id',
  'evaluation_run.options',
  'evaluation_run.progress',
  'evaluation_run.result',
  'evaluation_run.error',
  'ingest_run.source',
  'ingest_run.counts',
  'ingest_run.staging_directory',
  'ingest_run_batch.counts',
]);

export interface IdentifierFinding {
  readonly table: string;
  readonly column: string;
  readonly kind: IdentifierKind;
  readonly rows: number;
  /** The first match with every letter and digit masked but its shape kept, e.g. `###-###-####`. */
  readonly maskedExample: string | null;
  /** True for columns the service writes about itself (see serviceColumns), false for cohort and reference data. */
  readonly serviceColumn: boolean;
}

export interface PrivacyReport {
  readonly k: number;
  readonly encounters: number;
  readonly groups: {
    readonly total: number;
    readonly underK: number;
    readonly encountersUnderK: number;
    /** The smallest groups, at most `listLimit`, smallest first. */
    readonly smallest: readonly QuasiIdentifierGroup[];
    /** Smallest, median and largest group size. */
    readonly sizes: { readonly min: number; readonly median: number; readonly max: number } | null;
  };
  readonly scan: {
    readonly columnsScanned: number;
    readonly findings: readonly IdentifierFinding[];
  };
  /** Chief-complaint texts seen in fewer than k encounters: free text that may single a patient out. */
  readonly rareComplaintTexts: { readonly values: number; readonly encounters: number };
}

export interface PrivacyReportOptions {
  /** Groups under this size are listed (the rules' minimum cell size by default). */
  readonly k: number;
  /** How many of the smallest groups to list. */
  readonly listLimit?: number;
}

/** Keeps the shape of a value, never its content. */
export function maskValue(value: string): string {
  return value.replace(/[A-Za-z]/g, 'x').replace(/[0-9]/g, '#').slice(0, 80);
}

/** Builds the report over the stored cohort and every text column of every table. */
export async function buildPrivacyReport(db: Kysely<Database>, options: PrivacyReportOptions): Promise<PrivacyReport> {
  const listLimit = options.listLimit ?? 20;
  const groups = await quasiIdentifierGroups(db);
  const underK = groups.filter((group) => group.encounters < options.k);
  const sizes = groups.map((group) => group.encounters).sort((a, b) => a - b);

  const columns = (await listStoredColumns(db)).filter(isTextLike);
  const matchers: ValueMatcher[] = identifierPatterns.map(({ name, pattern }) => ({ name, pattern }));
  const findings: IdentifierFinding[] = [];
  for (const column of columns) {
    const counts = await countMatchesInColumn(db, column, matchers);
    for (const { name, pattern } of identifierPatterns) {
      const rows = counts.get(name) ?? 0;
      if (rows === 0) continue;
      const [example] = await sampleMatches(db, column, pattern, 1);
      findings.push({
        table: column.table,
        column: column.column,
        kind: name,
        rows,
        maskedExample: example === undefined ? null : maskValue(example),
        serviceColumn: serviceColumns.has(`${column.table}.${column.column}`),
      });
    }
  }
  return {
    k: options.k,
    encounters: groups.reduce((sum, group) => sum + group.encounters, 0),
    groups: {
      total: groups.length,
      underK: underK.length,
      encountersUnderK: underK.reduce((sum, group) => sum + group.encounters, 0),
      smallest: groups.slice(0, listLimit),
      sizes: sizes.length === 0 ? null : { min: sizes[0]!, median: sizes[Math.floor((sizes.length - 1) / 2)]!, max: sizes[sizes.length - 1]! },
    },
    scan: { columnsScanned: columns.length, findings },
    rareComplaintTexts: await countRareComplaintTexts(db, options.k),
  };
}

/** The report as text for the terminal. */
export function formatPrivacyReport(report: PrivacyReport): string {
  const { groups, scan } = report;
  const lines = [
    `De-identification report: ${report.encounters} encounters, k = ${report.k}`,
    '',
    'Groups by (age, sex, primary complaint concept, site), the quasi-identifiers a cohort row carries:',
    `  ${groups.total} groups; sizes ${groups.sizes ? `${groups.sizes.min} (smallest), ${groups.sizes.median} (median), ${groups.sizes.max} (largest)` : '–'}`,
    `  ${groups.underK} groups under k = ${report.k}, holding ${groups.encountersUnderK} encounters` +
      (groups.underK > 0
        ? '. The cohort is not k-anonymous on these fields: cards and counts never show a cell under the minimum size, but anyone reading the database directly can see these groups.'
        : '.'),
  ];
  if (groups.smallest.length > 0) {
    lines.push(`  the ${groups.smallest.length} smallest (age, sex, complaint, site → encounters / patients):`);
    for (const group of groups.smallest) {
      lines.push(`    ${group.ageYears}, ${group.sex}, ${group.complaint ?? '(no concept)'}, ${group.site} → ${group.encounters} / ${group.patients}`);
    }
  }
  lines.push(
    '',
    `Stored text scanned for identifier shapes (${identifierPatterns.map((pattern) => pattern.label).join(', ')}): ${scan.columnsScanned} text columns in every table`,
  );
  const patientFindings = scan.findings.filter((finding) => !finding.serviceColumn);
  const serviceFindings = scan.findings.filter((finding) => finding.serviceColumn);
  if (patientFindings.length === 0) lines.push('  none found in cohort or reference data.');
  for (const finding of patientFindings) {
    lines.push(`  FOUND ${finding.kind} in ${finding.table}.${finding.column}: ${finding.rows} rows, e.g. ${finding.maskedExample ?? '?'}`);
  }
  for (const finding of serviceFindings) {
    lines.push(`  in the service's own records, ${finding.table}.${finding.column}: ${finding.rows} rows shaped like a ${finding.kind} (e.g. ${finding.maskedExample ?? '?'}); not patient data`);
  }
  lines.push(
    '',
    `Free text: ${report.rareComplaintTexts.values} chief-complaint texts occur in fewer than ${report.k} encounters (${report.rareComplaintTexts.encounters} encounters).`,
    '  The ingest removes identifier shapes from complaint text, but not names: a rare complaint text can still name or',
    '  describe a person. Review them (GET /admin/complaints/unmapped lists the frequent ones) before sharing the database.',
    '',
    'What the cohort stores (docs/privacy.md): keyed HMAC hashes instead of patient, encounter, specimen and clinician',
    'identifiers; age in whole years (90 for 90 and over); the start year only; times as minutes from the ED arrival.',
  );
  return `${lines.join('\n')}\n`;
}
