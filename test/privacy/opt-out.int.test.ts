import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import { buildApp } from '../../src/app.js';
import type { CohortCriteria } from '../../src/cohort/types.js';
import { buildConfig, type Config } from '../../src/config.js';
import { createApiKey } from '../../src/db/api-key.repository.js';
import { createEvaluationRun, finishEvaluationRun, markRunning } from '../../src/db/evaluation-run.repository.js';
import { evaluationOptionsSchema, type EvaluationResult } from '../../src/evaluate/result.js';
import type { Database } from '../../src/db/database.js';
import { dropCohortCaches } from '../../src/http/privacy.routes.js';
import { createKeyHasher } from '../../src/ingest/deidentify.js';
import { ingestPaths } from '../../src/ingest/ingest.js';
import { loggerOptions } from '../../src/logger.js';
import { applyOptOuts, patientKeyFor } from '../../src/privacy/opt-out.js';
import { mimicDemoDirectory } from '../helpers/app.js';
import { prefetchedRequest } from '../helpers/cds-hooks-examples.js';
import { openTestDatabase } from '../helpers/database.js';
import { writeDemoWithoutPatient } from '../helpers/demo-without-patient.js';
import { readMimic } from '../helpers/mimic.js';
import { openIngestedDatabase } from '../helpers/test-templates.js';

type Json = Record<string, any>;

const secret = 'test-secret-test-secret-test-secret-0123';
const hasher = createKeyHasher(secret);
const now = new Date('2026-11-23T12:00:00Z');

interface DemoApp {
  readonly app: FastifyInstance;
  readonly db: Kysely<Database>;
  readonly database: Awaited<ReturnType<typeof openTestDatabase>>;
  readonly logs: string[];
  close(): Promise<void>;
}

/** The app over a fresh database holding the NDJSON of `directory`, logging to memory at trace level. */
async function buildDemoApp(directory: string, config: Config): Promise<DemoApp> {
  const database = await openIngestedDatabase(directory, secret);
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString());
      done();
    },
  });
  const app = await buildApp(config, { database, now: () => now, logger: { ...loggerOptions(config), stream } as never });
  await app.ready();
  return {
    app,
    db: database.db,
    database,
    logs,
    close: async () => {
      await app.close();
      await database.close();
    },
  };
}

/** Every text, array and JSON value of every table, one string per row: what a scan for an identifier reads. */
async function dumpAllText(db: Kysely<Database>): Promise<string> {
  const columns = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and data_type in ('text', 'character varying', 'character', 'json', 'jsonb', 'ARRAY', 'uuid')
    order by table_name, ordinal_position`.execute(db);
  const parts: string[] = [];
  for (const { table_name: table, column_name: column } of columns.rows) {
    const rows = await sql<{ value: string | null }>`select ${sql.ref(column)}::text as value from ${sql.table(table)}`.execute(db);
    for (const row of rows.rows) if (row.value !== null) parts.push(row.value);
  }
  return parts.join('\n');
}

describe('opt-out: POST /admin/opt-outs removes a real demo patient from every card and count', () => {
  let directory: string;
  let full: DemoApp;
  let without: DemoApp;
  /** A second instance of the service over the same database as `full`: it learns of the opt-out by itself. */
  let otherInstance: FastifyInstance;
  let informaticistKey: string;
  let informaticistKeyWithout: string;
  let viewerKey: string;
  let patientId: string;
  let patientEncounters: number;
  let facts: Json;
  let criteria: CohortCriteria;
  let rulesVersion: number;
  let runIds: { finished: string; running: string; queued: string };

  const config = buildConfig({
    loadDemoCohort: false,
    patientHashSecret: secret,
    linkSigningSecret: 'link-secret-link-secret-link-secret-0123',
    rateLimitPerMinute: 0,
    logLevel: 'trace',
  });
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  const preview = async (demo: DemoApp, body: Json) => {
    const response = await demo.app.inject({ method: 'POST', url: `/admin/rules/${rulesVersion}/preview`, headers: as(informaticistKey), payload: body });
    expect(response.statusCode).toBe(200);
    return response.json() as Json;
  };
  const hookRequest = (hookInstance: string) =>
    prefetchedRequest('patient-view', {
      patient: { gender: facts.sex, birthDate: `${now.getUTCFullYear() - (facts.ageYears as number)}-01-01` },
      chiefComplaint: facts.chiefComplaint,
      hookInstance,
    });
  const hook = async (demo: DemoApp, hookInstance: string) => {
    const response = await demo.app.inject({ method: 'POST', url: '/cds-services/patient-view', payload: hookRequest(hookInstance) });
    expect(response.statusCode).toBe(200);
    return response.json() as Json;
  };

  beforeAll(async () => {
    full = await buildDemoApp(mimicDemoDirectory, config);
    informaticistKey = (await createApiKey(full.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    viewerKey = (await createApiKey(full.db, { name: 'vic', role: 'viewer', createdBy: 'test' })).key;
    rulesVersion = (await full.app.inject({ method: 'GET', url: '/admin/rules', headers: as(viewerKey) })).json().active;

    // A real patient: the one with the most ED visits whose own visit gets cards, looked up by the key the ingest made.
    const stored = await full.db
      .selectFrom('cohort_encounter')
      .select(['patient_key', 'age_years', 'sex', 'chief_complaint_text', 'icd10_codes'])
      .orderBy('encounter_key')
      .execute();
    const byKey = new Map<string, typeof stored>();
    for (const row of stored) byKey.set(row.patient_key, [...(byKey.get(row.patient_key) ?? []), row]);
    const candidates = readMimic('MimicPatient.ndjson.gz')
      .map((patient) => ({ id: patient.id as string, rows: byKey.get(patientKeyFor(hasher, patient.id as string)) ?? [] }))
      .filter((candidate) => candidate.rows.length > 0)
      .sort((a, b) => b.rows.length - a.rows.length || a.id.localeCompare(b.id));
    search: for (const candidate of candidates) {
      for (const row of candidate.rows) {
        if (!row.chief_complaint_text) continue;
        const given = { ageYears: row.age_years, sex: row.sex, chiefComplaint: row.chief_complaint_text, icd10Codes: row.icd10_codes };
        const answer = await preview(full, { facts: given });
        if (answer.cards.length === 3) {
          patientId = candidate.id;
          patientEncounters = candidate.rows.length;
          facts = given;
          criteria = answer.criteria;
          break search;
        }
      }
    }
    expect(patientId).toBeDefined();

    directory = await mkdtemp(path.join(tmpdir(), 'cohort-opt-out-'));
    const { linesDropped } = await writeDemoWithoutPatient(directory, patientId);
    expect(linesDropped).toBeGreaterThan(patientEncounters);
    without = await buildDemoApp(directory, config);
    // Same key names in both databases, so the previews' audit and answers line up.
    informaticistKeyWithout = (await createApiKey(without.db, { name: 'ada', role: 'informaticist', createdBy: 'test' })).key;
    otherInstance = await buildApp({ ...config, aggregatePollMs: 250 }, { database: full.database, now: () => now });
    await otherInstance.ready();
  }, 240_000);

  afterAll(async () => {
    await otherInstance?.close();
    await full?.close();
    await without?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it('picked a patient whose visits are in the card cohort, and warmed every cache with them', async () => {
    const [sizeWith] = await full.app.cohortSource.countCohorts([criteria]);
    const [sizeWithout] = await without.app.cohortSource.countCohorts([criteria]);
    // The patient's own visit matches its own criteria, so the cohort shrinks by at least that one.
    expect(sizeWith! - sizeWithout!).toBeGreaterThanOrEqual(1);
    const answer = await preview(full, { facts });
    expect(answer.cohortSize).toBe(sizeWith);
    expect(answer.cards[0].source.label).toContain(`${sizeWith} similar ED visits`);
    const cards = await hook(full, 'd1a5b3c0-0000-4000-8000-000000000001');
    expect(cards.cards.length).toBeGreaterThan(0);
    // The second instance holds the patient too, until it learns of the opt-out.
    expect(await hook({ ...full, app: otherInstance }, 'd1a5b3c0-0000-4000-8000-000000000001')).toEqual(cards);
    expect((await otherInstance.cohortSource.countCohorts([criteria]))[0]).toBe(sizeWith);
    // The summary and the baseline are cached now too.
    expect((await full.app.inject({ method: 'GET', url: '/admin/cohort/summary', headers: as(viewerKey) })).statusCode).toBe(200);
    const baseline = await full.app.cohortSource.describeBaseline();
    expect(baseline.size).toBe((await without.app.cohortSource.describeBaseline()).size + patientEncounters);
  });

  it('refuses a viewer and an identifier that is not a FHIR id, without echoing it', async () => {
    const viewer = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', headers: as(viewerKey), payload: { patientId } });
    expect(viewer.statusCode).toBe(403);
    const bad = 'Jane Doe, MRN 12345678';
    const invalid = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', headers: as(informaticistKey), payload: { patientId: bad } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.body).not.toContain('Jane');
    const extra = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', headers: as(informaticistKey), payload: { patientId, name: 'x' } });
    expect(extra.statusCode).toBe(400);
    expect(extra.body).not.toContain(patientId);
    const unauthenticated = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', payload: { patientId } });
    expect(unauthenticated.statusCode).toBe(401);
  });

  it('opts the patient out at once: every card and count afterwards equals the data without them', async () => {
    // Backtests stored before the opt-out (one finished, one running) and one still queued: see the next test.
    const options = evaluationOptionsSchema.parse({});
    const finished = await createEvaluationRun(full.db, { rulesVersion, options, requestedBy: 'ada' });
    expect(await markRunning(full.db, finished.id)).toBe(true);
    await finishEvaluationRun(full.db, finished.id, { split: { heldOutEncounters: 0 } } as unknown as EvaluationResult);
    const running = await createEvaluationRun(full.db, { rulesVersion, options, requestedBy: 'ada' });
    expect(await markRunning(full.db, running.id)).toBe(true);
    const queued = await createEvaluationRun(full.db, { rulesVersion, options, requestedBy: 'ada' });
    runIds = { finished: finished.id, running: running.id, queued: queued.id };

    const started = Date.now();
    const response = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', headers: as(informaticistKey), payload: { patientId: `Patient/${patientId}` } });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toEqual({ optedOut: true, newlyOptedOut: true, encountersRemoved: patientEncounters });
    expect(response.body).not.toContain(patientId);
    expect(Date.now() - started).toBeLessThan(60_000);

    // No waiting for a cache to expire: the very next answers are those of the data without the patient.
    expect(await full.app.cohortSource.countCohorts([criteria])).toEqual(await without.app.cohortSource.countCohorts([criteria]));
    expect(await full.app.cohortSource.describeCohort(criteria)).toEqual(await without.app.cohortSource.describeCohort(criteria));
    expect(await full.app.cohortSource.describeBaseline()).toEqual(await without.app.cohortSource.describeBaseline());
    const withoutHeaders = { authorization: `Bearer ${informaticistKeyWithout}` };
    const previewAfter = await preview(full, { facts });
    const previewReference = (
      await without.app.inject({ method: 'POST', url: `/admin/rules/${rulesVersion}/preview`, headers: withoutHeaders, payload: { facts } })
    ).json();
    expect(previewAfter).toEqual(previewReference);
    expect(await hook(full, 'd1a5b3c0-0000-4000-8000-000000000002')).toEqual(await hook(without, 'd1a5b3c0-0000-4000-8000-000000000002'));
    const summary = await full.app.inject({ method: 'GET', url: '/admin/cohort/summary', headers: as(informaticistKey) });
    const summaryReference = await without.app.inject({ method: 'GET', url: '/admin/cohort/summary', headers: withoutHeaders });
    expect(summary.json()).toEqual(summaryReference.json());
    expect(await full.db.selectFrom('lab_panel').selectAll().orderBy('panel_code').execute()).toEqual(
      await without.db.selectFrom('lab_panel').selectAll().orderBy('panel_code').execute(),
    );

    // Every other visit of the demo gets exactly the cards and sizes it would get had the patient never been loaded.
    const others = await without.db
      .selectFrom('cohort_encounter')
      .select(['age_years', 'sex', 'chief_complaint_text', 'icd10_codes'])
      .where('chief_complaint_text', 'is not', null)
      .orderBy('encounter_key')
      .execute();
    let compared = 0;
    for (const row of others) {
      const body = { facts: { ageYears: row.age_years, sex: row.sex, chiefComplaint: row.chief_complaint_text, icd10Codes: row.icd10_codes } };
      const mine = await preview(full, body);
      const reference = (await without.app.inject({ method: 'POST', url: `/admin/rules/${rulesVersion}/preview`, headers: withoutHeaders, payload: body })).json();
      expect(mine).toEqual(reference);
      compared += 1;
    }
    expect(compared).toBeGreaterThan(150);
  }, 120_000);

  it('reaches another instance of the service within one minute, with no call to it', async () => {
    // That instance answered before the opt-out with the patient in its cohort (it warmed its snapshot and caches then).
    const reference = await hook(without, 'd1a5b3c0-0000-4000-8000-000000000003');
    const started = Date.now();
    let answer = await hook({ ...full, app: otherInstance }, 'd1a5b3c0-0000-4000-8000-000000000003');
    while (JSON.stringify(answer) !== JSON.stringify(reference) && Date.now() - started < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      answer = await hook({ ...full, app: otherInstance }, 'd1a5b3c0-0000-4000-8000-000000000003');
    }
    expect(answer).toEqual(reference);
    expect(Date.now() - started).toBeLessThan(60_000);
    const [size] = await otherInstance.cohortSource.countCohorts([criteria]);
    expect([size]).toEqual(await without.app.cohortSource.countCohorts([criteria]));
    expect(await otherInstance.cohortSource.describeBaseline()).toEqual(await without.app.cohortSource.describeBaseline());
  }, 90_000);

  it('marks the backtests that had started before the opt-out, and only those', async () => {
    const run = async (id: string) => {
      const response = await full.app.inject({ method: 'GET', url: `/admin/evaluations/${id}`, headers: as(viewerKey) });
      expect(response.statusCode).toBe(200);
      return response.json() as Json;
    };
    for (const id of [runIds.finished, runIds.running]) {
      const marked = (await run(id)).computedBeforeOptOuts;
      expect(marked).toEqual({ optOuts: 1, firstAt: expect.any(String) });
      expect(Date.parse(marked.firstAt)).toBeGreaterThanOrEqual(Date.parse((await run(id)).startedAt));
    }
    // A run that starts after the opt-out reads the cohort without the patient: nothing to mark.
    expect(await markRunning(full.db, runIds.queued)).toBe(true);
    expect((await run(runIds.queued)).computedBeforeOptOuts).toBeNull();
    // The marks hold no patient: only how many opt-outs and when.
    expect(JSON.stringify(await run(runIds.finished))).not.toContain(patientId);
  });

  it('records who and when, never the identifier: not in the table, the audit trail, the logs or any column', async () => {
    const optOuts = await full.db.selectFrom('patient_opt_out').selectAll().execute();
    expect(optOuts).toHaveLength(1);
    expect(optOuts[0]).toMatchObject({ patient_key: patientKeyFor(hasher, patientId), source: 'api', recorded_by: 'ada' });
    const audit = await full.db.selectFrom('audit_event').selectAll().where('action', '=', 'patient.opt-out').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'ada', target: null, details: { source: 'api', newlyOptedOut: true, encountersRemoved: patientEncounters } });
    expect(await dumpAllText(full.db)).not.toContain(patientId);
    const logs = full.logs.join('');
    expect(logs).toContain('patient opted out');
    expect(logs).not.toContain(patientId);

    const listing = await full.app.inject({ method: 'GET', url: '/admin/opt-outs', headers: as(viewerKey) });
    expect(listing.statusCode).toBe(200);
    expect(listing.json()).toMatchObject({ total: 1, bySource: { api: 1, consent: 0 }, recent: [{ source: 'api', recordedBy: 'ada' }] });
    expect(listing.body).not.toContain(optOuts[0]!.patient_key);
  });

  it('answers a repeated opt-out with 200 and removes nothing more', async () => {
    const response = await full.app.inject({ method: 'POST', url: '/admin/opt-outs', headers: as(informaticistKey), payload: { patientId } });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ optedOut: true, newlyOptedOut: false, encountersRemoved: 0 });
    expect(await full.db.selectFrom('patient_opt_out').select('patient_key').execute()).toHaveLength(1);
  });

  it('keeps the patient out when the same export is ingested again', async () => {
    const key = patientKeyFor(hasher, patientId);
    const countPatient = async () =>
      Number((await full.db.selectFrom('cohort_encounter').select((eb) => eb.fn.countAll<string>().as('n')).where('patient_key', '=', key).executeTakeFirstOrThrow()).n);
    const report = await ingestPaths(full.db, [mimicDemoDirectory], { hasher });
    // The ingest skips opted-out patients while it converts the export: none of their rows is stored, even briefly...
    expect(await countPatient()).toBe(0);
    const withoutEncounters = (await without.db.selectFrom('cohort_encounter').select('encounter_key').execute()).length;
    expect(report.loaded.encounters).toBe(withoutEncounters);
    // ...so applyOptOuts, which every ingest runs after it, finds nothing left to remove.
    expect(await applyOptOuts(full.db)).toEqual({ encounters: 0, items: 0, labDraws: 0 });
    dropCohortCaches(full.app);
    const tableCounts = async (db: Kysely<Database>) => ({
      encounters: (await db.selectFrom('cohort_encounter').select('encounter_key').execute()).length,
      items: (await db.selectFrom('encounter_item').select('encounter_key').execute()).length,
      draws: (await db.selectFrom('lab_draw').select('encounter_key').execute()).length,
    });
    expect(await tableCounts(full.db)).toEqual(await tableCounts(without.db));
    expect(await full.app.cohortSource.describeBaseline()).toEqual(await without.app.cohortSource.describeBaseline());
    expect(await full.app.cohortSource.describeCohort(criteria)).toEqual(await without.app.cohortSource.describeCohort(criteria));
  }, 120_000);
});
