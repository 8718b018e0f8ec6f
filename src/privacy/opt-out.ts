/**
 * Opt-outs (docs/privacy.md): a patient who says no is recorded by keyed hash, their encounters and everything
 * derived from them are deleted, and the same deletion runs again after every ingest, so re-loading the same
 * export never brings them back.
 */
import type { Kysely } from 'kysely';
import { recordAuditEvent } from '../db/audit.repository.js';
import { rebuildLabPanels } from '../db/cohort-encounter.repository.js';
import type { Database, OptOutSource } from '../db/database.js';
import { markRunsStartedBeforeOptOut } from '../db/evaluation-run.repository.js';
import { deleteEncountersOfPatients, recordOptOuts, type RemovedEncounters } from '../db/opt-out.repository.js';
import type { KeyHasher } from '../ingest/deidentify.js';
import { recomputeClinicianReputation } from '../reputation/recompute.js';

/**
 * A FHIR Patient logical id (R4 `id` datatype: https://hl7.org/fhir/R4/datatypes.html#id), optionally written
 * as a relative reference `Patient/<id>`.
 */
const patientIdPattern = /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/;

/** The logical id of `123` or `Patient/123`; null for anything else. */
export function parsePatientId(value: string): string | null {
  return patientIdPattern.exec(value.trim())?.[1] ?? null;
}

/**
 * The cohort's patient key for a FHIR Patient id: exactly how the ingest keys cohort_encounter.patient_key
 * (src/ingest/fhir-to-cohort.ts: `hasher('patient', patient.id)`).
 */
export function patientKeyFor(hasher: KeyHasher, patientId: string): string {
  return hasher('patient', patientId);
}

export interface OptOutResult {
  /** False when this patient had opted out before (the deletion runs again all the same). */
  readonly newlyOptedOut: boolean;
  readonly removed: RemovedEncounters;
}

/**
 * After encounters were deleted: lab panels are derived from the co-drawn analytes of every encounter, so they
 * are derived again without the deleted ones (a no-op for the panels in all but rare cases, and cheap: the
 * derivation samples at most 50,000 encounters).
 */
async function refreshDerivedData(db: Kysely<Database>, removed: RemovedEncounters): Promise<void> {
  if (removed.labDraws > 0) await rebuildLabPanels(db);
  if (removed.encounters > 0) {
    // Clinician reputations are statistics of the encounters too (docs/reputation.md): computed again without them.
    await recomputeClinicianReputation(db);
    await markEvaluationRunsBeforeOptOut(db);
  }
}

/**
 * Marks the stored backtests that may have counted encounters an opt-out has just removed. Their results hold only
 * aggregate measures (no patient or encounter), so they are kept, flagged, rather than deleted (docs/privacy.md).
 * Call after the transaction that deleted the encounters has committed.
 */
export async function markEvaluationRunsBeforeOptOut(db: Kysely<Database>): Promise<number> {
  return markRunsStartedBeforeOptOut(db);
}

/**
 * Opts one patient out: records the opt-out, deletes their encounters (with items and lab draws) and writes the
 * audit event, all in one transaction, then derives the lab panels again. The identifier is hashed here and
 * goes nowhere else: not into the table, the audit event or the result.
 */
export async function optOutPatient(
  db: Kysely<Database>,
  input: { readonly hasher: KeyHasher; readonly patientId: string; readonly source: OptOutSource; readonly actor: string },
): Promise<OptOutResult> {
  const patientKey = patientKeyFor(input.hasher, input.patientId);
  const result = await db.transaction().execute(async (trx) => {
    const added = await recordOptOuts(trx, [{ patientKey, source: input.source, recordedBy: input.actor }]);
    const removed = await deleteEncountersOfPatients(trx, [patientKey]);
    await recordAuditEvent(trx, {
      actor: input.actor,
      action: 'patient.opt-out',
      details: { source: input.source, newlyOptedOut: added > 0, encountersRemoved: removed.encounters },
    });
    return { newlyOptedOut: added > 0, removed };
  });
  await refreshDerivedData(db, result.removed);
  return result;
}

/**
 * Deletes the encounters of every opted-out patient, e.g. after an ingest has loaded an export that still holds
 * them, and derives the lab panels again when any were removed. Safe to call at any time; returns what it removed.
 */
export async function applyOptOuts(db: Kysely<Database>): Promise<RemovedEncounters> {
  const removed = await db.transaction().execute((trx) => deleteEncountersOfPatients(trx));
  await refreshDerivedData(db, removed);
  return removed;
}

/**
 * Opt-outs from FHIR Consent resources found at ingest (see consent.ts): records each patient with source
 * `consent` and deletes their encounters, with one audit event for the lot (how many, never who).
 */
export async function recordConsentOptOuts(
  db: Kysely<Database>,
  input: { readonly hasher: KeyHasher; readonly patientIds: Iterable<string>; readonly actor?: string },
): Promise<{ readonly newlyOptedOut: number; readonly removed: RemovedEncounters }> {
  const actor = input.actor ?? 'ingest';
  const keys = [...new Set([...input.patientIds].map((id) => patientKeyFor(input.hasher, id)))];
  if (keys.length === 0) return { newlyOptedOut: 0, removed: { encounters: 0, items: 0, labDraws: 0 } };
  const result = await db.transaction().execute(async (trx) => {
    const added = await recordOptOuts(
      trx,
      keys.map((patientKey) => ({ patientKey, source: 'consent' as const, recordedBy: actor })),
    );
    const removed = await deleteEncountersOfPatients(trx, keys);
    await recordAuditEvent(trx, {
      actor,
      action: 'patient.opt-out.consent',
      details: { source: 'consent', patients: keys.length, newlyOptedOut: added, encountersRemoved: removed.encounters },
    });
    return { newlyOptedOut: added, removed };
  });
  await refreshDerivedData(db, result.removed);
  return result;
}
