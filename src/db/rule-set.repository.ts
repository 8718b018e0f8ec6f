import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { defaultRules, rulesSchema, type Rules, type VersionedRules } from '../cohort/rules.js';
import { recordAuditEvent } from './audit.repository.js';
import type { Database, RuleSetTable } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** The active rules version, parsed (fields an older version lacks take their defaults). */
export async function findActiveRuleSet(db: Executor): Promise<VersionedRules | undefined> {
  const row = await db.selectFrom('rule_set').select(['version', 'rules']).where('status', '=', 'active').executeTakeFirst();
  if (!row) return undefined;
  return { version: row.version, rules: rulesSchema.parse(row.rules) };
}

/** A new database starts with the default rules as active version 1. */
export async function seedDefaultRuleSet(db: Executor): Promise<void> {
  await db
    .insertInto('rule_set')
    .values({
      version: 1,
      status: 'active',
      rules: JSON.stringify(defaultRules),
      note: 'Default rules',
      created_by: 'system',
      activated_at: new Date(),
    })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
}

export interface RuleSetRecord {
  readonly version: number;
  readonly status: 'draft' | 'active' | 'retired';
  /** As stored: a draft may lack fields a later schema added (they take their defaults when used). */
  readonly rules: Record<string, unknown>;
  readonly note: string | null;
  readonly createdAt: Date;
  readonly createdBy: string;
  readonly activatedAt: Date | null;
}

export class RuleSetStateError extends Error {
  override name = 'RuleSetStateError';
  constructor(
    message: string,
    readonly reason: 'not-found' | 'not-draft' | 'already-active' | 'not-backtested',
  ) {
    super(message);
  }
}

export async function listRuleSets(db: Executor): Promise<RuleSetRecord[]> {
  const rows = await db.selectFrom('rule_set').selectAll().orderBy('version', 'desc').execute();
  return rows.map(toRecord);
}

export async function findRuleSet(db: Executor, version: number): Promise<RuleSetRecord | undefined> {
  const row = await db.selectFrom('rule_set').selectAll().where('version', '=', version).executeTakeFirst();
  return row ? toRecord(row) : undefined;
}

/** A version's rules, parsed with the defaults filled in. */
export async function findVersionedRules(db: Executor, version: number): Promise<VersionedRules | undefined> {
  const record = await findRuleSet(db, version);
  return record ? { version: record.version, rules: rulesSchema.parse(record.rules) } : undefined;
}

/** A new draft version (the next number), recorded in the audit trail in the same transaction. */
export async function createDraftRuleSet(
  db: Kysely<Database>,
  input: { readonly rules: Rules; readonly note: string | null; readonly createdBy: string; readonly basedOn?: number },
): Promise<RuleSetRecord> {
  return db.transaction().execute(async (trx) => {
    // Serialize version numbers: two drafts at once must not both take max + 1.
    await sql`lock table rule_set in share row exclusive mode`.execute(trx);
    const { max } = await trx
      .selectFrom('rule_set')
      .select((eb) => eb.fn.max('version').as('max'))
      .executeTakeFirstOrThrow();
    const row = await trx
      .insertInto('rule_set')
      .values({ version: (max ?? 0) + 1, status: 'draft', rules: JSON.stringify(input.rules), note: input.note, created_by: input.createdBy })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordAuditEvent(trx, {
      actor: input.createdBy,
      action: 'rules.create-draft',
      target: `rules/${row.version}`,
      details: input.basedOn === undefined ? {} : { basedOn: input.basedOn },
    });
    return toRecord(row);
  });
}

/** Replaces a draft's rules and note; an active or retired version never changes. */
export async function updateDraftRuleSet(
  db: Kysely<Database>,
  version: number,
  input: { readonly rules: Rules; readonly note: string | null; readonly updatedBy: string },
): Promise<RuleSetRecord> {
  return db.transaction().execute(async (trx) => {
    const current = await trx.selectFrom('rule_set').select('status').where('version', '=', version).forUpdate().executeTakeFirst();
    if (!current) throw new RuleSetStateError(`There is no rules version ${version}`, 'not-found');
    if (current.status !== 'draft') throw new RuleSetStateError(`Rules version ${version} is ${current.status}; only a draft can be edited`, 'not-draft');
    const row = await trx
      .updateTable('rule_set')
      .set({ rules: JSON.stringify(input.rules), note: input.note })
      .where('version', '=', version)
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordAuditEvent(trx, { actor: input.updatedBy, action: 'rules.update-draft', target: `rules/${version}` });
    return toRecord(row);
  });
}

/**
 * Whether a version may be activated (draft → validate → backtest → activate). A draft needs a backtest that
 * succeeded and started after the draft's last change (an edit makes earlier backtests measure other rules);
 * a retired version was active before, so going back to it is a rollback and needs none.
 */
export type ActivationReadiness =
  | { readonly kind: 'active' }
  | { readonly kind: 'rollback' }
  | { readonly kind: 'backtested'; readonly runId: string; readonly finishedAt: Date | null }
  | { readonly kind: 'not-backtested'; readonly reason: string; readonly outdatedRunId: string | null };

/** The activation readiness of each given version (unknown versions are left out). */
export async function findActivationReadiness(db: Executor, versions: readonly number[]): Promise<Map<number, ActivationReadiness>> {
  const readiness = new Map<number, ActivationReadiness>();
  if (versions.length === 0) return readiness;
  const records = await db.selectFrom('rule_set').select(['version', 'status', 'created_at']).where('version', 'in', [...versions]).execute();
  const drafts = records.filter((record) => record.status === 'draft');
  for (const record of records) if (record.status !== 'draft') readiness.set(record.version, { kind: record.status === 'active' ? 'active' : 'rollback' });
  if (drafts.length === 0) return readiness;
  const draftVersions = drafts.map((record) => record.version);
  // The audit event is written in the edit's transaction, so it is the draft's time of last change.
  const edits = await db
    .selectFrom('audit_event')
    .select(['target', (eb) => eb.fn.max('at').as('at')])
    .where('action', '=', 'rules.update-draft')
    .where('target', 'in', draftVersions.map((version) => `rules/${version}`))
    .groupBy('target')
    .execute();
  const runs = await db
    .selectFrom('evaluation_run')
    .select(['evaluation_run_id', 'rules_version', 'started_at', 'finished_at'])
    .where('status', '=', 'succeeded')
    .where('rules_version', 'in', draftVersions)
    .orderBy('evaluation_run_id', 'desc')
    .execute();
  for (const draft of drafts) {
    const edited = edits.find((edit) => edit.target === `rules/${draft.version}`)?.at;
    const changedAt = Math.max(new Date(draft.created_at).getTime(), edited ? new Date(edited).getTime() : 0);
    const own = runs.filter((run) => run.rules_version === draft.version);
    const current = own.find((run) => run.started_at !== null && new Date(run.started_at).getTime() > changedAt);
    if (current) {
      readiness.set(draft.version, { kind: 'backtested', runId: String(current.evaluation_run_id), finishedAt: current.finished_at === null ? null : new Date(current.finished_at) });
    } else if (own[0]) {
      const runId = String(own[0].evaluation_run_id);
      readiness.set(draft.version, { kind: 'not-backtested', reason: `Draft v${draft.version} was changed after its backtest #${runId}: backtest it again`, outdatedRunId: runId });
    } else {
      readiness.set(draft.version, { kind: 'not-backtested', reason: `Draft v${draft.version} has no completed backtest yet`, outdatedRunId: null });
    }
  }
  return readiness;
}

export interface ActivateOptions {
  /** Activates a draft without a current backtest; the reason goes into the audit trail. */
  readonly force?: { readonly reason: string };
}

/**
 * Makes `version` the one active version and retires the one before; activating an earlier version is the
 * rollback. A draft needs a current backtest (findActivationReadiness) unless forced with a reason; it is
 * validated by the caller before it gets here.
 */
export async function activateRuleSet(
  db: Kysely<Database>,
  version: number,
  activatedBy: string,
  options: ActivateOptions = {},
): Promise<{ readonly previous: number | null; readonly readiness: ActivationReadiness }> {
  return db.transaction().execute(async (trx) => {
    // Also keeps a draft from being edited between the readiness check and the switch.
    await sql`lock table rule_set in share row exclusive mode`.execute(trx);
    const target = await trx.selectFrom('rule_set').select('status').where('version', '=', version).executeTakeFirst();
    if (!target) throw new RuleSetStateError(`There is no rules version ${version}`, 'not-found');
    if (target.status === 'active') throw new RuleSetStateError(`Rules version ${version} is already active`, 'already-active');
    const readiness = (await findActivationReadiness(trx, [version])).get(version)!;
    const forced = readiness.kind === 'not-backtested';
    if (forced && options.force === undefined) {
      throw new RuleSetStateError(`${readiness.reason}. Activate it after a backtest, or force it with a reason.`, 'not-backtested');
    }
    const previous = await trx.selectFrom('rule_set').select('version').where('status', '=', 'active').executeTakeFirst();
    await trx.updateTable('rule_set').set({ status: 'retired' }).where('status', '=', 'active').execute();
    await trx.updateTable('rule_set').set({ status: 'active', activated_at: new Date() }).where('version', '=', version).execute();
    await recordAuditEvent(trx, {
      actor: activatedBy,
      // Skipping the backtest is named as such; going back to an earlier version than the one in use is a rollback.
      action: forced ? 'rules.force-activate' : previous !== undefined && version < previous.version ? 'rules.rollback' : 'rules.activate',
      target: `rules/${version}`,
      details: {
        previous: previous?.version ?? null,
        ...(readiness.kind === 'backtested' ? { backtest: readiness.runId } : { wasActiveBefore: readiness.kind === 'rollback' }),
        ...(forced ? { reason: options.force?.reason, skipped: readiness.reason } : {}),
      },
    });
    return { previous: previous?.version ?? null, readiness };
  });
}

function toRecord(row: Selectable<RuleSetTable>): RuleSetRecord {
  return {
    version: row.version,
    status: row.status,
    rules: row.rules,
    note: row.note,
    createdAt: row.created_at,
    createdBy: row.created_by,
    activatedAt: row.activated_at,
  };
}
