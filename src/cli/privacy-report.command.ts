import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { migrateToLatest } from '../db/migrate.js';
import { findActiveRuleSet } from '../db/rule-set.repository.js';
import { defaultRules } from '../cohort/rules.js';
import { buildPrivacyReport, formatPrivacyReport } from '../privacy/privacy-report.js';

type WithDatabase = <T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>) => Promise<T>;

/** `privacy-report [--k N] [--list N] [--json]`: the de-identification report over the stored cohort. */
export function registerPrivacyReportCommand(
  program: Command,
  config: () => Config,
  withDatabase: WithDatabase,
  usageError: (message: string) => Error,
): void {
  program
    .command('privacy-report')
    .description('smallest groups by (age, sex, complaint, site) and identifier-shaped values in stored text (docs/privacy.md)')
    .option('--k <size>', "list groups under this size (default: the active rules' minCellSize)")
    .option('--list <count>', 'how many of the smallest groups to list', '20')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { k?: string; list: string; json?: boolean }) => {
      const k = flags.k === undefined ? undefined : Number(flags.k);
      if (k !== undefined && (!Number.isInteger(k) || k < 1 || k > 100000)) throw usageError('--k must be a whole number from 1 to 100000');
      const listLimit = Number(flags.list);
      if (!Number.isInteger(listLimit) || listLimit < 0 || listLimit > 10000) throw usageError('--list must be a whole number from 0 to 10000');
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        const rules = (await findActiveRuleSet(db))?.rules ?? defaultRules;
        const report = await buildPrivacyReport(db, { k: k ?? rules.minCellSize, listLimit });
        process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatPrivacyReport(report));
      });
    });
}
