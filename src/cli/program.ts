import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { openDatabase, pgliteDirectory, type DatabaseHandle } from '../db/connection.js';
import { MigrationError, migrateToLatest } from '../db/migrate.js';
import { createKeyHasher } from '../ingest/deidentify.js';
import { ingestPaths, type IngestReport } from '../ingest/ingest.js';
import { listNdjsonFiles } from '../ingest/ndjson-reader.js';
import { ensureReferenceData } from '../ingest/reference-data.js';
import { resolvePatientHashSecret } from '../ingest/secret.js';
import { registerApiKeyCommands } from './api-key.commands.js';
import { createIngestProgressDisplay } from './ingest-progress.js';
import { registerBulkExportCommand } from './bulk-export.command.js';
import { registerEvaluateCommand } from './evaluate.command.js';
import { registerSynthesizeCommand } from './synthesize.command.js';
import { registerReputationCommand } from './reputation.command.js';
import { registerPrivacyReportCommand } from './privacy-report.command.js';

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
  if (!config.databaseUrl) return `PGlite in ${pgliteDirectory(config.dataDirectory)}`;
  const url = new URL(config.databaseUrl);
  url.password = url.password ? '***' : '';
  return url.toString();
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
    `ingest run ${report.ingestRunId} finished in ${(report.durationMs / 1000).toFixed(1)} s${
      report.resumed ? ` (resumed: ${report.batches.storedBefore} of ${report.batches.total} batches were stored before the interruption)` : ''
    }`,
    `read:    ${report.read.files} files, ${report.read.lines} lines, ${report.read.resources} resources (${types || 'none'})`,
    `loaded:  ${report.loaded.encounters} encounters, ${report.loaded.items} items, ${report.loaded.draws} lab draws (${report.loaded.labResults} results), ${report.loaded.labPanels} lab panels`,
    `skipped: ${report.skipped.lines} malformed lines, ${report.skipped.encounters} encounters${reasons ? ` (${reasons})` : ''}`,
    `opt-outs: ${report.optOuts.consentRefusals} patients refused research use by Consent (${report.optOuts.newlyOptedOut} new), ` +
      `${report.optOuts.unresolvedConsents} refusals without a resolvable patient, ${report.optOuts.encountersRemoved} encounters of opted-out patients removed`,
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
    .description(
      'load FHIR R4 NDJSON (files or Bulk Data export folders, plain or .gz) into the cohort; run the same command again to resume an interrupted ingest',
    )
    .argument('<paths...>', 'NDJSON files or folders')
    .option('--site <site>', 'site label stored with every encounter', 'default')
    .option('--lab-lead-minutes <minutes>', 'count lab results charted up to this long before ED arrival', '60')
    .option('--batches <count>', 'batches of patients, each stored in one transaction (default: about one per 32 MB of input)')
    .option('--threads <count>', 'worker threads that parse and convert (0: the main thread; default: one per core, at most 4)')
    .action(async (paths: string[], flags: { site: string; labLeadMinutes: string; batches?: string; threads?: string }) => {
      const labLeadMinutes = Number(flags.labLeadMinutes);
      if (!Number.isInteger(labLeadMinutes) || labLeadMinutes < 0) throw new UsageError('--lab-lead-minutes must be a whole number ≥ 0');
      const batches = flags.batches === undefined ? undefined : Number(flags.batches);
      if (batches !== undefined && (!Number.isInteger(batches) || batches < 1 || batches > 65536)) throw new UsageError('--batches must be a whole number from 1 to 65536');
      const threads = flags.threads === undefined ? undefined : Number(flags.threads);
      if (threads !== undefined && (!Number.isInteger(threads) || threads < 0 || threads > 64)) throw new UsageError('--threads must be a whole number from 0 to 64');
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
        const display = createIngestProgressDisplay();
        try {
          const report = await ingestPaths(db, paths, {
            hasher,
            site: flags.site,
            labLeadMinutes,
            // On PostgreSQL the rows go in with COPY; an interrupted run resumes from its staging folder.
            ...(settings.databaseUrl ? { databaseUrl: settings.databaseUrl } : {}),
            stagingDirectory: path.resolve(settings.dataDirectory, 'ingest-staging'),
            ...(batches === undefined ? {} : { batches }),
            ...(threads === undefined ? {} : { threads }),
            onProgress: display.update,
            log: display.log,
          });
          display.stop();
          printReport(report);
        } finally {
          display.stop();
        }
      });
    });

  registerApiKeyCommands(program, config, withDatabase, (message) => new UsageError(message));
  registerBulkExportCommand(program, config, withDatabase, (message) => new UsageError(message));
  registerEvaluateCommand(program, config, withDatabase, (message) => new UsageError(message));
  registerSynthesizeCommand(program, config);
  registerReputationCommand(program, config, withDatabase);
  registerPrivacyReportCommand(program, config, withDatabase, (message) => new UsageError(message));

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
