import path from 'node:path';
import { CommanderError, type Command } from 'commander';
import type { Config } from '../config.js';
import { demoCohortDirectory, projectRoot } from '../paths.js';
import { OutputNotEmptyError, synthesizeCohort, type SynthesizeProgress } from '../synthesize/synthesize.js';
import { loadTemplates } from '../synthesize/templates.js';

const maximumEncounters = 100_000_000;

const helpAfter = `
Synthetic cohorts are for scale and load tests only, never a source of quality claims: every synthetic
visit is a real visit of the source cohort (by default the bundled MIMIC-IV-ED demo, 222 ED stays) replayed
with noise (timeline, age, sex, lengths of stay, items swapped within the complaint cohort), so the output
holds no clinical knowledge the source does not. The output is derived from ODbL data: keep the licence
with it. Same seed, same bytes.

Example:
  npm run cli -- synthesize --encounters 1000000 --seed 7 --gzip --out /tmp/cohort-1m
  npm run cli -- synthesize --encounters 1000000 --seed 7      # into .data/synthetic/1000000-seed-7
  npm run cli -- ingest /tmp/cohort-1m`;

function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One line on stderr, rewritten in place on a terminal, else printed every few seconds. */
function progressLine(): (progress: SynthesizeProgress) => void {
  const terminal = process.stderr.isTTY === true;
  let lastPrinted = 0;
  return (progress) => {
    const now = Date.now();
    const finished = progress.encounters >= progress.encountersAsked;
    if (!terminal && !finished && now - lastPrinted < 5000) return;
    lastPrinted = now;
    const seconds = progress.elapsedMs / 1000;
    const rate = seconds > 0 ? progress.encounters / seconds : 0;
    const left = rate > 0 ? (progress.encountersAsked - progress.encounters) / rate : 0;
    const share = ((100 * progress.encounters) / progress.encountersAsked).toFixed(1);
    const line =
      `synthesize: ${formatCount(progress.encounters)}/${formatCount(progress.encountersAsked)} encounters (${share}%), ` +
      `${formatCount(progress.patients)} patients, ${formatCount(Math.round(rate))}/s, ${formatBytes(progress.bytes)} of NDJSON, ` +
      (finished ? `${seconds.toFixed(1)} s` : `ETA ${Math.ceil(left)} s`);
    process.stderr.write(terminal ? `\r\u001b[2K${line}${finished ? '\n' : ''}` : `${line}\n`);
  };
}

/** Exit code of a command line that cannot be run as given (as sysexits' EX_USAGE and most shells' builtins). */
const usageExitCode = 2;

function wholeNumber(value: string | undefined, name: string, minimum: number, maximum: number): number | string {
  const digits = (value ?? '').replace(/_/g, '');
  const parsed = /^\d+$/.test(digits) ? Number(digits) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < minimum || parsed > maximum) {
    return `${name} must be a whole number from ${formatCount(minimum)} to ${formatCount(maximum)}${value === undefined ? '' : `, not '${value}'`}`;
  }
  return parsed;
}

/** `synthesize`: a synthetic cohort of any size, as FHIR NDJSON, for scale tests. Needs no database. */
export function registerSynthesizeCommand(program: Command, config: () => Config): void {
  const command = program
    .command('synthesize')
    .description('write a synthetic ED cohort as FHIR R4 NDJSON (Bulk Data layout) for scale tests: resampled from the demo, never a source of quality claims')
    .option('--encounters <count>', 'ED encounters to write (required; 1 to 100,000,000)')
    .option('--seed <number>', 'seed of the generator: the same seed gives the same bytes', '1')
    .option('--out <folder>', 'folder for the NDJSON files, made if missing (default: <DATA_DIR>/synthetic/<encounters>-seed-<seed>)')
    .option('--gzip', 'write .ndjson.gz instead of .ndjson')
    .option('--gzip-level <level>', 'zlib level with --gzip (1 fastest … 9 smallest)', '1')
    .option('--from <paths...>', 'source cohort to learn from: NDJSON files or Bulk Data folders', [path.relative(process.cwd(), demoCohortDirectory) || demoCohortDirectory])
    .option('--overwrite', 'remove NDJSON files already in the folder first')
    .addHelpText('after', helpAfter);
  command.action(async (flags: { encounters?: string; out?: string; seed: string; gzip?: boolean; gzipLevel: string; from: string[]; overwrite?: boolean }) => {
    // A usage error ends the run with exit code 2: runCli returns a CommanderError's code as it is.
    const usage = (message: string): never => {
      process.stderr.write(`error: ${message} (see synthesize --help)\n`);
      throw new CommanderError(usageExitCode, 'cohort.usage', message);
    };
    const encounters = wholeNumber(flags.encounters, '--encounters', 1, maximumEncounters);
    if (typeof encounters === 'string') return usage(encounters);
    const seed = wholeNumber(flags.seed, '--seed', 0, 2 ** 32 - 1);
    if (typeof seed === 'string') return usage(seed);
    const gzipLevel = flags.gzip ? wholeNumber(flags.gzipLevel, '--gzip-level', 1, 9) : null;
    if (typeof gzipLevel === 'string') return usage(gzipLevel);
    const outDirectory = path.resolve(flags.out ?? path.join(config().dataDirectory, 'synthetic', `${encounters}-seed-${seed}`));

    const templates = await loadTemplates(flags.from);
    const sourceLabel = flags.from.map((given) => path.relative(projectRoot, path.resolve(given)) || '.').join(', ');
    process.stderr.write(`learnt from ${sourceLabel}: ${templates.patients.length} patients, ${templates.visits} ED stays\n`);
    let report;
    try {
      report = await synthesizeCohort({
        templates,
        encounters,
        seed,
        outDirectory,
        gzipLevel,
        overwrite: flags.overwrite ?? false,
        sourceLabel,
        onProgress: progressLine(),
      });
    } catch (error) {
      if (error instanceof OutputNotEmptyError) return usage(error.message);
      throw error;
    }
    const lines = [
      `wrote ${formatCount(report.encounters)} ED encounters of ${formatCount(report.patients)} patients (seed ${seed}) to ${outDirectory} in ${(report.durationMs / 1000).toFixed(1)} s`,
      ...report.files.map((file) => `  ${file.file}: ${formatCount(file.resources)} resources, ${formatBytes(file.bytes)}`),
      `synthetic data for scale tests only, never a source of quality claims (see synthesis.json)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
