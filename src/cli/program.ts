import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { openDatabase, type DatabaseHandle } from '../db/connection.js';
import { MigrationError, migrateToLatest } from '../db/migrate.js';
import { createKeyHasher } from '../ingest/deidentify.js';
import { ingestPaths, type IngestProgress, type IngestReport } from '../ingest/ingest.js';
import { listNdjsonFiles } from '../ingest/ndjson-reader.js';
import { ensureReferenceData } from '../ingest/reference-data.js';
import { resolvePatientHashSecret } from '../ingest/secret.js';
import { registerApiKeyCommands } from './api-key.commands.js';
import { registerBulkExportCommand } from './bulk-export.command.js';
import { registerEvaluateCommand } from './evaluate.command.js';

const progressIntervalMs = 2000;

function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

async function withDatabase<T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>): Promise<T> {
  const handle = await openDatabase({ databaseUrl: config.databaseUrl, dataDirectory: config.dataDirectory });
  try {
    return await work(handle);
  } finally {
    await handle.close();
  }
}

function describeDatabase(config: Config): string {
  if (!config.databaseUrl) return `PGlite in ${path.resolve(config.dataDirectory, 'pglite')}`;
  const url = new URL(config.databaseUrl);
  url.password = url.password ? '***' : '';
  return url.toString();
}

/** One line per file, and at most one every two seconds while a long file is read or rows are stored. */
function progressPrinter(): (progress: IngestProgress) => void {
  let lastPrinted = 0;
  let lastFile: string | undefined;
  return (progress) => {
    const now = Date.now();
    const newFile = progress.file !== undefined && progress.file !== lastFile;
    if (!newFile && progress.phase === 'reading' && now - lastPrinted < progressIntervalMs) return;
    if (progress.phase === 'loading' && now - lastPrinted < progressIntervalMs) return;
    lastPrinted = now;
    lastFile = progress.file ?? lastFile;
    switch (progress.phase) {
      case 'reading':
        say(`reading [${progress.filesRead + 1}/${progress.filesTotal}] ${path.basename(progress.file ?? '')} (${progress.resourcesRead} resources so far)`);
        return;
      case 'loading':
        say(`storing: ${progress.encountersLoaded} encounters`);
        return;
      case 'panels':
        say(`deriving lab panels from ${progress.encountersLoaded} encounters`);
        return;
      case 'done':
        return;
    }
  };
}

function printReport(report: IngestReport): void {
  const types = Object.entries(report.read.byResourceType)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  const reasons = Object.entries(report.skipped.reasons)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  const lines = [
    `ingest run ${report.ingestRunId} finished in ${(report.durationMs / 1000).toFixed(1)} s`,
    `read:    ${report.read.files} files, ${report.read.lines} lines, ${report.read.resources} resources (${types || 'none'})`,
    `loaded:  ${report.loaded.encounters} encounters, ${report.loaded.items} items, ${report.loaded.draws} lab draws, ${report.loaded.labPanels} lab panels`,
    `skipped: ${report.skipped.lines} malformed lines, ${report.skipped.encounters} encounters${reasons ? ` (${reasons})` : ''}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (report.malformed.length > 0) {
    process.stdout.write('malformed lines:\n');
    for (const line of report.malformed) process.stdout.write(`  ${line.file}:${line.line}: ${line.message}\n`);
    if (report.skipped.lines > report.malformed.length) {
      process.stdout.write(`  … and ${report.skipped.lines - report.malformed.length} more\n`);
    }
  }
}

/** The commander program; exported so tests can run commands without a child process. */
export function buildProgram(config: () => Config = () => loadConfig()): Command {
  const program = new Command()
    .name('cohort-cds')
    .description('Cohort CDS administration: schema migrations and cohort ingest')
    .showHelpAfterError();

  program
    .command('migrate')
    .description('bring the database schema up to date')
    .action(async () => {
      const settings = config();
      await withDatabase(settings, async ({ db }) => {
        const result = await migrateToLatest(db);
        const applied = result.results?.filter((migration) => migration.status === 'Success') ?? [];
        say(`database: ${describeDatabase(settings)}`);
        process.stdout.write(applied.length === 0 ? 'schema is up to date\n' : `applied ${applied.map((migration) => migration.migrationName).join(', ')}\n`);
      });
    });

  program
    .command('ingest')
    .description('load FHIR R4 NDJSON (files or Bulk Data export folders, plain or .gz) into the cohort')
    .argument('<paths...>', 'NDJSON files or folders')
    .option('--site <site>', 'site label stored with every encounter', 'default')
    .option('--lab-lead-minutes <minutes>', 'count lab results charted up to this long before ED arrival', '60')
    .action(async (paths: string[], flags: { site: string; labLeadMinutes: string }) => {
      const labLeadMinutes = Number(flags.labLeadMinutes);
      if (!Number.isInteger(labLeadMinutes) || labLeadMinutes < 0) throw new UsageError('--lab-lead-minutes must be a whole number ≥ 0');
      const settings = config();
      // Check the paths before the database is opened, so a typo costs nothing.
      if ((await listNdjsonFiles(paths)).length === 0) throw new UsageError(`no NDJSON files (*.ndjson, *.ndjson.gz) in ${paths.join(', ')}`);
      await withDatabase(settings, async ({ db }) => {
        say(`database: ${describeDatabase(settings)}`);
        await migrateToLatest(db);
        const reference = await ensureReferenceData(db);
        if (reference.icd10Codes + reference.icd9ToIcd10Mappings + reference.complaintPhrases > 0) {
          say(`reference data: ${reference.complaintPhrases} complaint phrases, ${reference.icd10Codes} ICD-10-CM codes, ${reference.icd9ToIcd10Mappings} ICD-9→10 mappings`);
        }
        const hasher = createKeyHasher(await resolvePatientHashSecret(settings));
        const report = await ingestPaths(db, paths, {
          hasher,
          site: flags.site,
          labLeadMinutes,
          onProgress: progressPrinter(),
          log: say,
        });
        printReport(report);
      });
    });

  registerApiKeyCommands(program, config, withDatabase, (message) => new UsageError(message));
  registerBulkExportCommand(program, config, withDatabase, (message) => new UsageError(message));
  registerEvaluateCommand(program, config, withDatabase, (message) => new UsageError(message));

  return program;
}

class UsageError extends Error {
  override name = 'UsageError';
}

/** A message a person can act on, without a stack for the errors we expect. */
function describeFailure(error: unknown): string {
  if (error instanceof ConfigError || error instanceof MigrationError || error instanceof UsageError) return error.message;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return `no such file or folder: ${(error as NodeJS.ErrnoException).path ?? ''}`;
  if (code === 'EACCES') return `permission denied: ${(error as NodeJS.ErrnoException).path ?? ''}`;
  if (code === 'ECONNREFUSED') return `cannot connect to the database: ${(error as Error).message}`;
  if (error instanceof Error) return process.env.DEBUG ? (error.stack ?? error.message) : error.message;
  return String(error);
}

/** Runs one command line; resolves to the process exit code. */
export async function runCli(argv: readonly string[], config: () => Config = () => loadConfig()): Promise<number> {
  try {
    await buildProgram(config).exitOverride().parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    say(`error: ${describeFailure(error)}`);
    return 1;
  }
}
