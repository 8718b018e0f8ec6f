import type { Command } from 'commander';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { migrateToLatest } from '../db/migrate.js';
import { recomputeClinicianReputation } from '../reputation/recompute.js';
import type { ReputationSummary } from '../reputation/reputation.js';
import { median } from '../cohort/statistics.js';

type WithDatabase = <T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>) => Promise<T>;

function fixed(value: number | null, digits = 3): string {
  return value === null ? '–' : value.toFixed(digits);
}

/** What `cli reputation` prints: how much the cohort says about its clinicians, never a clinician's key. */
export function formatReputationSummary(summary: ReputationSummary): string {
  const weights = summary.clinicians.map((clinician) => clinician.weight);
  const share = summary.items === 0 ? 0 : summary.itemsWithClinician / summary.items;
  const atLeast = (orders: number) => summary.clinicians.filter((clinician) => clinician.orders >= orders).length;
  const lines = [
    `clinician reputation recomputed from ${summary.encounters} encounters (docs/reputation.md)`,
    `items naming the ordering clinician: ${summary.itemsWithClinician} of ${summary.items} (${(share * 100).toFixed(1)}%)`,
    `clinicians: ${summary.clinicians.length}; with at least 5 orders compared with a consensus: ${atLeast(5)}, at least 20: ${atLeast(20)}`,
    `mean consensus agreement of an order: ${fixed(summary.meanAgreement)}; mean 72-hour return rate: ${fixed(summary.meanReturnRate72h)}`,
    weights.length === 0
      ? 'weights: none (no item names a clinician; `itemWeighting: clinician-reputation` then changes nothing)'
      : `weights: min ${fixed(Math.min(...weights))}, median ${fixed(median(weights))}, max ${fixed(Math.max(...weights))} (1 = the average clinician)`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `reputation`: recompute every clinician's reputation from the stored cohort and store it. */
export function registerReputationCommand(program: Command, config: () => Config, withDatabase: WithDatabase): void {
  program
    .command('reputation')
    .description('recompute the reputation of each ordering clinician from the stored cohort (docs/reputation.md)')
    .action(async () => {
      await withDatabase(config(), async ({ db }) => {
        await migrateToLatest(db);
        process.stdout.write(formatReputationSummary(await recomputeClinicianReputation(db)));
      });
    });
}
