import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { countCohortEncounters } from '../db/cohort-encounter.repository.js';
import { createEvaluationRun } from '../db/evaluation-run.repository.js';
import { migrateToLatest } from '../db/migrate.js';
import { findActiveRuleSet, findVersionedRules, seedDefaultRuleSet } from '../db/rule-set.repository.js';
import { executeEvaluationRun } from '../evaluate/execute-run.js';
import { formatEvaluationReport } from '../evaluate/report.js';
import { evaluationOptionsSchema, type EvaluationOptions, type EvaluationProgress } from '../evaluate/result.js';

type WithDatabase = <T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>) => Promise<T>;

interface EvaluateFlags {
  rules?: string;
  split?: string;
  holdout?: string;
  seed?: string;
  mode?: string;
  resamples?: string;
  itemLevel?: string;
  json?: boolean;
}

const progressIntervalMs = 2000;

function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

const flagNames: Record<string, string> = {
  split: '--split',
  holdout: '--holdout',
  seed: '--seed',
  mode: '--mode',
  bootstrapResamples: '--resamples',
  itemLevel: '--item-level',
};

function numberFlag(value: string | undefined): number | undefined {
  return value === undefined ? undefined : value.trim() === '' ? Number.NaN : Number(value);
}

/** The flags as backtest options, or a message naming the flag that is wrong. */
function parseOptions(flags: EvaluateFlags, usageError: (message: string) => Error): EvaluationOptions {
  const parsed = evaluationOptionsSchema.safeParse({
    split: flags.split,
    holdout: numberFlag(flags.holdout),
    seed: numberFlag(flags.seed),
    mode: flags.mode,
    bootstrapResamples: numberFlag(flags.resamples),
    itemLevel: flags.itemLevel,
  });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const flag = flagNames[String(issue.path[0])] ?? String(issue.path[0]);
  throw usageError(`${flag}: ${issue.message}`);
}

/** A line per phase, and at most one every two seconds within one. */
function progressPrinter(): (progress: EvaluationProgress) => void {
  let lastPhase: string | undefined;
  let lastPrinted = 0;
  return (progress) => {
    const now = Date.now();
    const finished = progress.total > 0 && progress.done === progress.total;
    if (progress.phase === lastPhase && now - lastPrinted < progressIntervalMs && !finished) return;
    lastPhase = progress.phase;
    lastPrinted = now;
    switch (progress.phase) {
      case 'queued':
      case 'done':
        return;
      case 'loading':
        say('loading the cohort');
        return;
      case 'predicting':
        say(`predicting: ${progress.done}/${progress.total} held-out encounters`);
        return;
      case 'bootstrapping':
        say(`bootstrapping: ${progress.done}/${progress.total} resamples`);
        return;
    }
  };
}

/** `evaluate`: backtests a rules version on the cohort, records the run, prints the result as tables. */
export function registerEvaluateCommand(
  program: Command,
  config: () => Config,
  withDatabase: WithDatabase,
  usageError: (message: string) => Error,
): void {
  program
    .command('evaluate')
    .description('backtest a rules version: hold out encounters, predict them from the rest, compare with what happened')
    .option('--rules <version>', 'rules version to evaluate (default: the active one)')
    .option('--split <split>', 'patient (hold out whole patients) or temporal (hold out the latest years)', 'patient')
    .option('--holdout <share>', 'share of encounters to hold out, between 0 and 1', '0.2')
    .option('--seed <n>', 'seed of the patient split and the bootstrap', '1')
    .option('--mode <mode>', "arrival (what the EHR knows at ED arrival) or with-diagnoses (adds the encounter's own diagnoses)", 'arrival')
    .option('--resamples <n>', 'bootstrap resamples for the 95% intervals (0: none)', '1000')
    .option('--item-level <level>', 'panel (lab analytes folded into panels, as the cards) or analyte', 'panel')
    .option('--json', 'print the result as JSON instead of tables')
    .action(async (flags: EvaluateFlags) => {
      const options = parseOptions(flags, usageError);
      const version = flags.rules === undefined ? undefined : Number(flags.rules);
      if (version !== undefined && (!Number.isInteger(version) || version < 1)) throw usageError('--rules must be a version number');
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        // As at server start: a database that only had `ingest` gets the default rules as version 1.
        await seedDefaultRuleSet(db);
        const versionedRules = version === undefined ? await findActiveRuleSet(db) : await findVersionedRules(db, version);
        if (!versionedRules) throw usageError(version === undefined ? 'no rules version is active' : `there is no rules version ${version}`);
        const encounters = await countCohortEncounters(db);
        if (encounters === 0) throw usageError('the cohort is empty: load encounters with `ingest` first');
        const run = await createEvaluationRun(db, { rulesVersion: versionedRules.version, options, requestedBy: 'cli' });
        say(`evaluation run ${run.id}: rules v${versionedRules.version} on ${encounters} encounters (${options.split} split)`);
        const finished = await executeEvaluationRun(db, run.id, { onProgress: progressPrinter() });
        if (finished.status !== 'succeeded' || finished.result === null) {
          throw new Error(`evaluation run ${run.id} ${finished.status}: ${finished.error ?? 'no result'}`);
        }
        process.stdout.write(flags.json ? `${JSON.stringify(finished.result, null, 2)}\n` : `${formatEvaluationReport(finished.result)}\n`);
        say(`evaluation run ${run.id} stored (rules v${versionedRules.version})`);
      });
    });
}
