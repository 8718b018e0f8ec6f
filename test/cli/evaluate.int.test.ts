import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { runCli } from '../../src/cli/program.js';
import { buildConfig } from '../../src/config.js';
import { openDatabase } from '../../src/db/connection.js';
import { listEvaluationRuns } from '../../src/db/evaluation-run.repository.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { seedDefaultRuleSet } from '../../src/db/rule-set.repository.js';
import { openTestDatabase, seedPgliteDataDirectory } from '../helpers/database.js';
import { makeSyntheticCohort } from '../evaluate/fixtures.js';

/**
 * `cohort-cds evaluate` on a small synthetic cohort (300 visits): the demo's figures are checked in
 * test/evaluate/evaluation.int.test.ts; here, the command's flags, output and the run it records.
 */
describe('cohort-cds evaluate', () => {
  let directory: string;
  let databaseUrl: string | undefined;
  let closeServerDatabase: (() => Promise<void>) | undefined;
  let output: string[];
  let errors: string[];

  // On PostgreSQL a fresh database of the suite's own; else PGlite files in a temporary folder, as `npm start` keeps them.
  const config = () => buildConfig({ dataDirectory: path.join(directory, 'data'), databaseUrl, patientHashSecret: undefined });
  const withDatabase = async <T>(work: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> => {
    const handle = await openDatabase({ databaseUrl, dataDirectory: path.join(directory, 'data') });
    try {
      return await work(handle.db);
    } finally {
      await handle.close();
    }
  };

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'cohort-evaluate-'));
    if (process.env.DATABASE_URL) {
      const database = await openTestDatabase();
      databaseUrl = database.url;
      closeServerDatabase = database.close;
    } else {
      await seedPgliteDataDirectory(path.join(directory, 'data'), 'migrated');
    }
    await withDatabase(async (db) => {
      await migrateToLatest(db);
      await seedDefaultRuleSet(db);
      const cohort = makeSyntheticCohort();
      await db
        .insertInto('cohort_encounter')
        .values(
          cohort.map((encounter) => ({
            encounter_key: encounter.encounterKey,
            patient_key: encounter.patientKey,
            age_years: encounter.ageYears,
            sex: encounter.sex,
            acuity: encounter.acuity,
            chief_complaint_text: encounter.chiefComplaintText,
            complaint_concepts: [...encounter.complaintConcepts],
            icd10_codes: [...encounter.icd10Codes],
            icd10_categories: [...new Set(encounter.icd10Codes.map((code) => code.slice(0, 3)))],
            history_icd10_codes: [...encounter.historyIcd10Codes],
            start_year: encounter.startYear,
            admitted: encounter.admitted,
            ed_los_minutes: encounter.edLosMinutes,
            hospital_los_minutes: encounter.hospitalLosMinutes,
            returned_72h: encounter.returned72h,
            returned_30d: encounter.returned72h,
          })),
        )
        .execute();
      await db
        .insertInto('encounter_item')
        .values(
          cohort.flatMap((encounter) =>
            encounter.items.map((item) => ({
              encounter_key: encounter.encounterKey,
              item_code: item.itemCode,
              category: item.category,
              kind: item.kind,
              display: item.display,
              code_system: item.codeSystem,
              code: item.code,
            })),
          ),
        )
        .execute();
    });
  }, 60000);
  afterAll(async () => {
    await closeServerDatabase?.();
    await rm(directory, { recursive: true, force: true });
  });

  const capture = () => {
    output = [];
    errors = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      output.push(String(chunk));
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      errors.push(String(chunk));
      return true;
    });
  };
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('backtests the active rules, prints the tables and records the run as the CLI', async () => {
    capture();
    const exitCode = await runCli(['node', 'cohort-cds', 'evaluate', '--resamples', '200'], config);
    jest.restoreAllMocks();
    expect(errors.join('')).not.toContain('error:');
    expect(exitCode).toBe(0);
    const printed = output.join('');
    expect(printed).toContain('Backtest of rules v1: patient split, holdout 0.2, seed 1');
    expect(printed).toMatch(/Workup \(\d+ held-out encounters received at least one item\)/);
    expect(printed).toMatch(/Rules v1 +Rules v1, weighted by clinician reputation +Most frequent items overall +Most frequent items for the chief complaint/);
    expect(printed).toMatch(/weighted recall@10 +\d\.\d{3} \(\d\.\d\d–\d\.\d\d\) n=\d+/);
    expect(printed).toMatch(/admission AUROC/);
    expect(printed).toContain('Calibration, admission: Rules v1');
    expect(printed).toMatch(/any card: +\d+ of \d+ held-out encounters/);
    expect(printed).toContain('Relaxation steps needed');
    const progress = errors.join('');
    expect(progress).toMatch(/evaluation run \d+: rules v1 on 300 encounters \(patient split\)/);
    expect(progress).toMatch(/predicting: \d+\/\d+ held-out encounters/);
    expect(progress).toContain('bootstrapping: 200/200 resamples');

    const runs = await withDatabase((db) => listEvaluationRuns(db, 1));
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'succeeded', requestedBy: 'cli', rulesVersion: 1 });
    expect(runs[0]!.options).toMatchObject({ split: 'patient', holdout: 0.2, seed: 1, mode: 'arrival', bootstrapResamples: 200 });
  });

  it('takes the rules version, split, holdout, seed and mode; --json prints the stored result', async () => {
    capture();
    const exitCode = await runCli(
      ['node', 'cohort-cds', 'evaluate', '--rules', '1', '--split', 'temporal', '--holdout', '0.3', '--seed', '4', '--mode', 'with-diagnoses', '--resamples', '0', '--json'],
      config,
    );
    jest.restoreAllMocks();
    expect(errors.join('')).not.toContain('error:');
    expect(exitCode).toBe(0);
    const result = JSON.parse(output.join('')) as { options: Record<string, unknown>; split: { kind: string; cutoffYear: number }; mode: { id: string } };
    expect(result.options).toMatchObject({ split: 'temporal', holdout: 0.3, seed: 4, mode: 'with-diagnoses' });
    expect(result.split.kind).toBe('temporal');
    expect(result.mode.id).toBe('with-diagnoses');
  });

  it('refuses bad flags and an unknown rules version with a message naming them', async () => {
    capture();
    const holdout = await runCli(['node', 'cohort-cds', 'evaluate', '--holdout', '1.5'], config);
    const split = await runCli(['node', 'cohort-cds', 'evaluate', '--split', 'sideways'], config);
    const seed = await runCli(['node', 'cohort-cds', 'evaluate', '--seed', 'abc'], config);
    const version = await runCli(['node', 'cohort-cds', 'evaluate', '--rules', '42'], config);
    jest.restoreAllMocks();
    expect([holdout, split, seed, version]).toEqual([1, 1, 1, 1]);
    const messages = errors.join('');
    expect(messages).toContain('error: --holdout: must be below 1');
    expect(messages).toMatch(/error: --split: .*patient.*temporal/);
    expect(messages).toMatch(/error: --seed: /);
    expect(messages).toContain('error: there is no rules version 42');
    expect(messages).not.toMatch(/\n\s+at /);
  });
});
