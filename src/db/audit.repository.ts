import type { Kysely, Transaction } from 'kysely';
import type { Database } from './database.js';

type Executor = Kysely<Database> | Transaction<Database>;

/** One change to the service's configuration or data, by whom; never a patient identifier. */
export interface AuditEventInput {
  /** The API key's name, `cli` or `system`. */
  readonly actor: string;
  /** Dotted verb, e.g. `rules.activate`, `api-key.create`. */
  readonly action: string;
  readonly target?: string | null;
  readonly details?: Record<string, unknown>;
}

export interface AuditEvent {
  readonly id: string;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly details: Record<string, unknown>;
}

/** Writes the event in the caller's transaction, so a change and its record stand or fall together. */
export async function recordAuditEvent(db: Executor, event: AuditEventInput): Promise<void> {
  await db
    .insertInto('audit_event')
    .values({ actor: event.actor, action: event.action, target: event.target ?? null, details: JSON.stringify(event.details ?? {}) })
    .execute();
}

/** Newest first; `beforeId` pages back. */
export async function listAuditEvents(db: Executor, options: { readonly limit: number; readonly beforeId?: string; readonly action?: string }): Promise<AuditEvent[]> {
  let query = db.selectFrom('audit_event').selectAll().orderBy('audit_event_id', 'desc').limit(options.limit);
  if (options.beforeId !== undefined) query = query.where('audit_event_id', '<', options.beforeId);
  if (options.action !== undefined) query = query.where('action', '=', options.action);
  const rows = await query.execute();
  return rows.map((row) => ({
    id: String(row.audit_event_id),
    at: row.at,
    actor: row.actor,
    action: row.action,
    target: row.target,
    details: row.details,
  }));
}
