import type { Migration } from 'kysely';
import * as initialSchema from './20261123T0001_initial_schema.js';
import * as adminAuditEvaluation from './20261123T0002_admin_audit_evaluation.js';
import * as ingestResume from './20261123T0003_ingest_resume.js';
import * as privacy from './20261123T0004_privacy.js';
import * as evaluationHeartbeat from './20261123T0005_evaluation_heartbeat.js';
import * as cohortAggregates from './20261123T0006_cohort_aggregates.js';
import * as feedbackEvidence from './20261123T0007_feedback_evidence.js';
import * as clinicianReputation from './20261123T0008_clinician_reputation.js';
import * as evaluationOptOuts from './20261123T0009_evaluation_opt_outs.js';
import * as cohortAggregateIncrements from './20261202T0001_cohort_aggregate_increments.js';
import * as aggregateTouchedDeletions from './20261202T0002_aggregate_touched_deletions.js';
import * as labDrawPerSpecimen from './20261202T0003_lab_draw_per_specimen.js';
import * as icd10DescriptionWords from './20261202T0004_icd10_description_words.js';

/** Every migration, by name; names sort in the order they run. Add new ones here, never edit old ones. */
export const migrations: Record<string, Migration> = {
  '20261123T0001_initial_schema': initialSchema,
  '20261123T0002_admin_audit_evaluation': adminAuditEvaluation,
  '20261123T0003_ingest_resume': ingestResume,
  '20261123T0004_privacy': privacy,
  '20261123T0005_evaluation_heartbeat': evaluationHeartbeat,
  '20261123T0006_cohort_aggregates': cohortAggregates,
  '20261123T0007_feedback_evidence': feedbackEvidence,
  '20261123T0008_clinician_reputation': clinicianReputation,
  '20261123T0009_evaluation_opt_outs': evaluationOptOuts,
  '20261202T0001_cohort_aggregate_increments': cohortAggregateIncrements,
  '20261202T0002_aggregate_touched_deletions': aggregateTouchedDeletions,
  '20261202T0003_lab_draw_per_specimen': labDrawPerSpecimen,
  '20261202T0004_icd10_description_words': icd10DescriptionWords,
};
