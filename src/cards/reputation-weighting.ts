import type { Rules } from '../cohort/rules.js';
import type { ItemCount } from '../cohort/types.js';

/**
 * The ranking factor of rules `itemWeighting: 'clinician-reputation'` (docs/reputation.md): the mean reputation
 * weight of the clinicians who ordered the item in this cohort, weightedEncounters ÷ encounters, so that lift
 * times it is the reputation-weighted share over the baseline share. 1 (no change) without the option or without
 * weighted counts; the counts shown and the minimum cell sizes are never weighted.
 */
export function reputationFactor(item: ItemCount, rules: Pick<Rules, 'itemWeighting'>): number {
  if (rules.itemWeighting !== 'clinician-reputation' || item.weightedEncounters === undefined || item.encounters === 0) return 1;
  return item.weightedEncounters / item.encounters;
}
