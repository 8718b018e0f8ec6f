import type { Migration } from 'kysely';
import * as initialSchema from './20261123T0001_initial_schema.js';
import * as adminAuditEvaluation from './20261123T0002_admin_audit_evaluation.js';
import * as privacy from './20261123T0004_privacy.js';
import * as evaluationHeartbeat from './20261123T0005_evaluation_heartbeat.js';

/** Every migration, by name; names sort in the order they run. Add new ones here, never edit old ones. */
export const migrations: Record<string, Migration> = {
  '20261123T0001_initial_schema': initialSchema,
  '20261123T0002_admin_audit_evaluation': adminAuditEvaluation,
  '20261123T0004_privacy': privacy,
  '20261123T0005_evaluation_heartbeat': evaluationHeartbeat,
};
