import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { ComplaintVocabulary } from '../cohort/complaint.js';
import { listIcd10DescriptionWords, loadIcd9ToIcd10Map } from '../db/code-table.repository.js';
import {
  analyzeCohortTables,
  countCohortEncounters,
  dropItemKeysForBulkLoad,
  insertingCohortWriter,
  isItemBulkLoadPending,
  openCopyingCohortWriter,
  rebuildLabPanels,
  restoreItemKeys,
  type CohortWriter,
} from '../db/cohort-encounter.repository.js';
import { recordAuditEvent } from '../db/audit.repository.js';
import { refreshCohortAggregates } from '../db/cohort-aggregate.repository.js';
import { loadComplaintVocabulary } from '../db/complaint.repository.js';
import type { Database } from '../db/database.js';
import {
  findUnfinishedIngestRun,
  finishIngestRun,
  listIngestRunBatches,
  listOptedOutPatientKeys,
  recordIngestRunBatch,
  startIngestRun,
} from '../db/ingest-run.repository.js';
import { deleteEncountersOfPatients, recordOptOuts } from '../db/opt-out.repository.js';
import type { Icd9ToIcd10Map } from '../fhir/icd.js';
import { applyOptOuts, markEvaluationRunsBeforeOptOut } from '../privacy/opt-out.js';
import { recomputeClinicianReputation } from '../reputation/recompute.js';
import type { KeyHasher } from './deidentify.js';
import { defaultIngestThreads, openIngestProcessor, type ProcessedBatch } from './ingest-processor.js';
import { listNdjsonFiles, type MalformedLine } from './ndjson-reader.js';
import {
  chooseBatchCount,
  describeInputFiles,
  describeStagingKey,
  maximumMalformedListed,
  removeStagedBatch,
  removeStaging,
  stageInput,
} from './staging.js';

export interface IngestProgress {
  /**
   * reading: the input is staged; loading: batches of patients are converted and stored; indexing: after a
   * bulk load, the keys of the item tables are built; panels: lab panels are derived.
   */
  readonly phase: 'reading' | 'loading' | 'indexing' | 'panels' | 'done';
  /** The file being read, in the reading phase. */
  readonly file?: string;
  readonly filesRead: number;
  readonly filesTotal: number;
  readonly resourcesRead: number;
  /** reading: bytes of the input files read; loading: bytes of staged input converted and stored. */
  readonly done: number;
  /** …of this many. */
  readonly total: number;
  readonly batchesLoaded: number;
  readonly batchesTotal: number;
  /** Encounters stored by this run, including those stored before it was interrupted. */
  readonly encountersLoaded: number;
  /** Whether this run goes on from an interrupted one. */
  readonly resumed: boolean;
}

export interface IngestOptions {
  readonly hasher: KeyHasher;
  /** Loaded from complaint_synonym when absent. */
  readonly vocabulary?: ComplaintVocabulary;
  /** Loaded from icd9_to_icd10 when absent. */
  readonly icd9Map?: Icd9ToIcd10Map;
  /** See CohortConversionContext.clinicalWords; the words of icd10_code's descriptions when absent. */
  readonly clinicalWords?: ReadonlySet<string>;
  /** cohort_encounter.site of every row loaded. */
  readonly site?: string;
  /** See CohortConversionContext.labLeadMinutes. */
  readonly labLeadMinutes?: number;
  /** What ingest_run.source records; the paths by default. */
  readonly source?: string;
  /**
   * The postgres:// URL of the database `db` is on: rows are then loaded with COPY on a connection of the
   * ingest's own. Without it they go through `db` as multi-row INSERTs (PGlite, or small loads).
   */
  readonly databaseUrl?: string;
  /** Where runs stage their input, a folder per run, removed when it finishes; the system's temporary folder by default. */
  readonly stagingDirectory?: string;
  /** Batches of patients; by default about one per 16 MB of uncompressed input (staging.ts chooseBatchCount) (1 for the demo). */
  readonly batches?: number;
  /**
   * Worker threads that parse and convert (one per core, at most 4, by default). They need a hasher made by
   * createKeyHasher and the built JavaScript (or the project's TypeScript hooks); otherwise, or with 0, the
   * work stays on the main thread, with the same result.
   */
  readonly threads?: number;
  /** Called while reading (every few thousand resources) and after each batch; throttle in the caller. */
  readonly onProgress?: (progress: IngestProgress) => void;
  readonly log?: (message: string) => void;
}

export interface IngestReport {
  readonly ingestRunId: string;
  readonly read: {
    readonly files: number;
    readonly lines: number;
    readonly resources: number;
    readonly byResourceType: Record<string, number>;
  };
  /** What the run stored, counting batches stored before an interruption. */
  readonly loaded: {
    readonly encounters: number;
    readonly items: number;
    /** Specimens drawn, and the lab results on them. */
    readonly draws: number;
    readonly labResults: number;
    readonly labPanels: number;
  };
  readonly skipped: {
    /** Malformed lines. */
    readonly lines: number;
    /** ED stays found but not loaded. */
    readonly encounters: number;
    /** Every skip by reason: encounters, and resources that belong to no ED stay. */
    readonly reasons: Record<string, number>;
  };
  /** The malformed lines (the first 1,000), with file and line number. */
  readonly malformed: readonly MalformedLine[];
  readonly batches: {
    readonly total: number;
    /** Batches an interrupted run had stored, skipped by this one. */
    readonly storedBefore: number;
  };
  /** Whether the run went on from an interrupted one. */
  readonly resumed: boolean;
  /** Patients kept out of the cohort (docs/privacy.md). */
  readonly optOuts: {
    /** Patients whose Consent in the input refuses research use; recorded in patient_opt_out (source `consent`). */
    readonly consentRefusals: number;
    /** …of which had not opted out before. */
    readonly newlyOptedOut: number;
    /** Refusals whose patient could not be told (no `Patient/<id>` reference): nobody could be excluded for them. */
    readonly unresolvedConsents: number;
    /** Encounters of opted-out patients deleted by this run (loaded by earlier ingests, or opted out while it ran). */
    readonly encountersRemoved: number;
  };
  /** Time taken by this process. */
  readonly durationMs: number;
}

/** Fewer batches than this are loaded into the indexed tables even when the cohort is empty. */
const minimumBulkLoadBatches = 4;

function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

function fingerprintOf(inputKey: string, options: IngestOptions): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        inputKey,
        site: options.site ?? 'default',
        labLeadMinutes: options.labLeadMinutes ?? null,
        // Another hashing secret gives other keys: a run resumed with it would store a mix.
        keys: options.hasher('patient', '\u0000cohort-cds ingest fingerprint'),
      }),
    )
    .digest('hex');
}

/**
 * Reads FHIR NDJSON files or Bulk Data export folders, turns each ED stay into de-identified cohort rows and
 * stores them (idempotently: an encounter key is replaced, and left untouched when nothing changed), then
 * rebuilds the lab panels. Memory stays bounded whatever the input size: the input is streamed once into
 * staging files by patient (staging.ts), then converted and stored one batch of patients at a time, each
 * batch in one transaction that also marks it done. A run that was interrupted (killed, a lost connection)
 * is resumed by calling this again with the same paths and options: staging goes on from its last
 * checkpoint and stored batches are skipped.
 */
export async function ingestPaths(db: Kysely<Database>, paths: readonly string[], options: IngestOptions): Promise<IngestReport> {
  const started = Date.now();
  const files = await listNdjsonFiles(paths);
  if (files.length === 0) throw new Error(`no NDJSON files (*.ndjson, *.ndjson.gz) in ${paths.join(', ')}`);
  const inputs = await describeInputFiles(files);
  const batchCount = options.batches ?? chooseBatchCount(inputs);
  const fingerprint = fingerprintOf(describeStagingKey(inputs, batchCount), options);

  // The COPY writer takes the database's ingest lock before a run is looked up, so two runs never share one.
  const writer: CohortWriter = options.databaseUrl ? await openCopyingCohortWriter(options.databaseUrl) : insertingCohortWriter(db);
  try {
    const unfinished = await findUnfinishedIngestRun(db, fingerprint);
    const stagingBase = path.resolve(options.stagingDirectory ?? path.join(tmpdir(), 'cohort-cds-ingest'));
    const stagingDirectory = unfinished?.stagingDirectory ?? path.join(stagingBase, `run-${randomBytes(8).toString('hex')}`);
    const ingestRunId = unfinished?.ingestRunId ?? (await startIngestRun(db, { source: options.source ?? paths.join(', '), fingerprint, stagingDirectory }));
    const resumed = unfinished !== undefined;
    if (resumed) options.log?.(`resuming ingest run ${ingestRunId}, interrupted earlier`);
    const vocabulary = options.vocabulary ?? (await loadComplaintVocabulary(db));
    const icd9Map = options.icd9Map ?? (await loadIcd9ToIcd10Map(db));
    // What a stored chief complaint may keep besides the vocabulary's words (docs/privacy.md).
    const clinicalWords = options.clinicalWords ?? (await listIcd10DescriptionWords(db));
    // Patients opted out before the run are never converted; those who opt out while it runs are removed at the end.
    const optedOutPatientKeys = await listOptedOutPatientKeys(db);

    const storedBefore = await listIngestRunBatches(db, ingestRunId);
    let encountersLoaded = [...storedBefore.values()].reduce((sum, counts) => sum + (counts.encounters ?? 0), 0);
    const progress = (update: Partial<IngestProgress> & Pick<IngestProgress, 'phase' | 'done' | 'total'>) =>
      options.onProgress?.({
        filesRead: 0,
        filesTotal: inputs.length,
        resourcesRead: 0,
        batchesLoaded: storedBefore.size,
        batchesTotal: batchCount,
        encountersLoaded,
        resumed,
        ...update,
      });

    const processor = await openIngestProcessor({
      threads: options.threads ?? defaultIngestThreads(),
      batchCount,
      stagingDirectory,
      hasher: options.hasher,
      settings: {
        vocabulary,
        icd9Map,
        site: options.site ?? 'default',
        optedOutPatientKeys,
        clinicalWords,
        ...(options.labLeadMinutes === undefined ? {} : { labLeadMinutes: options.labLeadMinutes }),
      },
      output: writer.method === 'copy' ? 'copy' : 'records',
      ...(options.log ? { log: options.log } : {}),
    });
    let staged;
    let bulkLoad = false;
    const malformedAtConversion: MalformedLine[] = [];
    try {
      staged = await stageInput(stagingDirectory, inputs, batchCount, {
        stage: (bytes, firstLine, fileIndex) => processor.stage(bytes, firstLine, fileIndex),
        concurrency: Math.max(1, processor.threads * 2),
        storedBatches: new Set(storedBefore.keys()),
        onProgress: (reading) =>
          progress({
            phase: 'reading',
            file: reading.file,
            filesRead: reading.fileIndex,
            resourcesRead: reading.resourcesRead,
            done: reading.bytesRead,
            total: reading.bytesTotal,
          }),
      });
      options.log?.(
        `read ${staged.counts.resources} resources from ${inputs.length} files; converting ${batchCount} batch(es) of patients` +
          (processor.threads > 0 ? ` on ${processor.threads} worker threads` : ''),
      );

      if (process.env.INGEST_DEBUG) options.log?.(`phase: staged at ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const stagedBytes = staged.batchBytes.reduce((sum, bytes) => sum + bytes, 0);
      let bytesLoaded = 0;
      for (const batch of storedBefore.keys()) bytesLoaded += staged.batchBytes[batch] ?? 0;
      let batchesLoaded = storedBefore.size;
      const loadingProgress = () =>
        progress({ phase: 'loading', done: bytesLoaded, total: stagedBytes, batchesLoaded, resourcesRead: staged!.counts.resources, filesRead: inputs.length });
      loadingProgress();

      // A large load into an empty cohort (or one that a bulk load left without item keys) goes in bare and
      // builds the keys once at the end; otherwise rows are added to the indexed tables.
      const todo = Array.from({ length: batchCount }, (_, batch) => batch).filter((batch) => !storedBefore.has(batch));
      const bulkLoadPending = await isItemBulkLoadPending(db);
      if (writer.method === 'copy') {
        bulkLoad = bulkLoadPending || (todo.length >= minimumBulkLoadBatches && (await countCohortEncounters(db)) === 0);
        if (bulkLoad) {
          options.log?.('bulk load into an empty cohort: item keys and indexes are built once at the end');
          await dropItemKeysForBulkLoad(db);
        }
      } else if (bulkLoadPending) {
        // An interrupted bulk load left the item tables bare; INSERT … ON CONFLICT needs their keys.
        await restoreItemKeys(db);
      }

      // Conversions run ahead (one per worker, and one queued) while the previous batch is written: the database,
      // which needs a core of its own, and the conversion overlap. Batches are written one at a time, in order. The
      // queued one keeps a worker that finishes before the previous save from idling (measured at 100,000 encounters
      // with one per worker: each worker idle 15% of the loading phase).
      const ahead = processor.threads > 0 ? processor.threads + 1 : 1;
      // Lines staged unparsed that the conversion found not to be resources (stageBytes), with their file.
      const collectMalformed = (found: ProcessedBatch['malformed']) => {
        for (const { fileIndex, line, message } of found) {
          if (malformedAtConversion.length < maximumMalformedListed) malformedAtConversion.push({ file: inputs[fileIndex]?.path ?? '?', line, message });
        }
      };
      const conversions = new Map<number, Promise<ProcessedBatch>>();
      const convert = (index: number) => {
        const batch = todo[index];
        if (batch === undefined || conversions.has(batch)) return;
        const converting = processor.convert(batch);
        converting.catch(() => undefined);
        conversions.set(batch, converting);
      };
      let saving: Promise<Error | null> = Promise.resolve(null);
      for (let index = 0; index < todo.length; index += 1) {
        for (let next = index; next < index + ahead; next += 1) convert(next);
        const batch = todo[index]!;
        const waitStarted = Date.now();
        const converted = await conversions.get(batch)!;
        conversions.delete(batch);
        const failure = await saving;
        if (failure) throw failure;
        collectMalformed(converted.malformed);
        const saveStarted = Date.now();
        if (process.env.INGEST_DEBUG) options.log?.(`batch ${batch} converted; waited ${saveStarted - waitStarted} ms`);
        saving = writer
          .save(converted.batch, async (trx, saved) => {
            const optOutCounts: Record<string, number> = {};
            if (converted.consentRefusalKeys.length > 0) {
              // With the batch: the refusal is on record before the run can be seen as done, and what earlier
              // ingests loaded for these patients goes in the same transaction.
              const keys = [...converted.consentRefusalKeys];
              optOutCounts.newlyOptedOut = await recordOptOuts(
                trx,
                keys.map((patientKey) => ({ patientKey, source: 'consent' as const, recordedBy: 'ingest' })),
              );
              optOutCounts.encountersRemoved = (await deleteEncountersOfPatients(trx, keys)).encounters;
            }
            await recordIngestRunBatch(trx, ingestRunId, batch, { ...converted.counts, ...saved, ...optOutCounts });
          })
          .then(
            (saved) => {
              if (process.env.INGEST_DEBUG) options.log?.(`batch ${batch} saved in ${Date.now() - saveStarted} ms`);
              removeStagedBatch(stagingDirectory, batch);
              encountersLoaded += saved.encounters;
              bytesLoaded += staged!.batchBytes[batch] ?? 0;
              batchesLoaded += 1;
              loadingProgress();
              return null;
            },
            (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
          );
      }
      const failure = await saving;
      if (failure) throw failure;
    } finally {
      await processor.close();
    }
    const { counts: read } = staged;
    const stagedBytes = staged.batchBytes.reduce((sum, bytes) => sum + bytes, 0);
    const batchesLoaded = batchCount;

    if (process.env.INGEST_DEBUG) options.log?.(`phase: loaded at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (bulkLoad) {
      progress({ phase: 'indexing', done: stagedBytes, total: stagedBytes, batchesLoaded });
      await restoreItemKeys(db);
    }
    // Patients who opted out through the API while the run went on (docs/privacy.md): after the keys are back,
    // since their deletion cascades to the items.
    const removedAfterLoad = await applyOptOuts(db);
    // Fresh statistics after a load that changed the cohort's make-up (a bulk load, or a tenth of it and more); a daily
    // increment leaves them to autovacuum (measured: 3.1 s of a 1,000-encounter run into 100,000).
    if (writer.method === 'copy' && (bulkLoad || encountersLoaded * 10 >= (await countCohortEncounters(db)))) await analyzeCohortTables(db);
    progress({ phase: 'panels', done: stagedBytes, total: stagedBytes, batchesLoaded });
    const panels = await rebuildLabPanels(db);
    // Hooks read precomputed cohort statistics: a new generation of them, switched to when complete.
    // After a bulk load a new generation from the whole cohort; otherwise the active one brought up to date with the
    // encounters this run added, replaced or removed (a rebuild when it cannot be).
    await refreshCohortAggregates(db, { full: bulkLoad });
    // Clinician reputations are statistics of the cohort too (docs/reputation.md): from the cohort as it is now.
    await recomputeClinicianReputation(db, { countItems: false });

    // The totals of every batch of the run, those stored before an interruption included.
    const totals: Record<string, number> = {};
    for (const counts of (await listIngestRunBatches(db, ingestRunId)).values()) {
      for (const [key, value] of Object.entries(counts)) increment(totals, key, value);
    }
    const reasons: Record<string, number> = {};
    if (read.withoutPatient > 0) reasons['resource-without-patient'] = read.withoutPatient;
    for (const [key, value] of Object.entries(totals)) if (key.startsWith('skipped.')) increment(reasons, key.slice('skipped.'.length), value);
    const skippedEncounters = Object.entries(reasons)
      .filter(([reason]) => reason.startsWith('encounter-'))
      .reduce((sum, [, count]) => sum + count, 0);
    // Lines staged as resources that the conversion could not read: malformed after all (an interrupted run's
    // earlier batches give their number, not their messages).
    const malformedLater = totals.malformedLines ?? 0;
    const byResourceType = { ...read.byResourceType };
    for (const [key, value] of Object.entries(totals)) {
      if (!key.startsWith('malformedLines.')) continue;
      const type = key.slice('malformedLines.'.length);
      if (byResourceType[type] !== undefined) byResourceType[type] -= value;
      if (byResourceType[type] === 0) delete byResourceType[type];
    }
    const fileOrder = new Map(inputs.map((input, index) => [input.path, index]));
    const malformed = [...read.malformed, ...malformedAtConversion]
      .sort((a, b) => (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) || a.line - b.line)
      .slice(0, maximumMalformedListed);
    const loaded = {
      encounters: totals.encounters ?? 0,
      items: totals.items ?? 0,
      draws: totals.draws ?? 0,
      labResults: totals.labResults ?? 0,
      labPanels: panels.length,
    };
    const optOuts = {
      consentRefusals: totals.consentRefusals ?? 0,
      newlyOptedOut: totals.newlyOptedOut ?? 0,
      unresolvedConsents: read.unresolvedConsents,
      encountersRemoved: (totals.encountersRemoved ?? 0) + removedAfterLoad.encounters,
    };
    // Backtests that may have read the encounters a Consent removed during the run are marked (applyOptOuts marks its own).
    if ((totals.encountersRemoved ?? 0) > 0) await markEvaluationRunsBeforeOptOut(db);

    const report: IngestReport = {
      ingestRunId,
      read: { files: read.files, lines: read.lines, resources: read.resources - malformedLater, byResourceType },
      loaded,
      skipped: { lines: read.malformedCount + malformedLater, encounters: skippedEncounters, reasons },
      malformed,
      batches: { total: batchCount, storedBefore: storedBefore.size },
      resumed,
      optOuts,
      durationMs: Date.now() - started,
    };
    if (optOuts.consentRefusals + optOuts.unresolvedConsents > 0) {
      // How many, never who; before the run is marked finished, so that a resumed run cannot lose it (as recordConsentOptOuts in privacy/opt-out.ts).
      await recordAuditEvent(db, {
        actor: 'ingest',
        action: 'patient.opt-out.consent',
        details: {
          source: 'consent',
          ingestRunId,
          patients: optOuts.consentRefusals,
          newlyOptedOut: optOuts.newlyOptedOut,
          unresolved: optOuts.unresolvedConsents,
          encountersRemoved: totals.encountersRemoved ?? 0,
        },
      });
    }
    await finishIngestRun(db, ingestRunId, {
      files: read.files,
      lines: read.lines,
      resources: read.resources - malformedLater,
      emergencyStays: totals.emergencyStays ?? 0,
      encounters: loaded.encounters,
      items: loaded.items,
      draws: loaded.draws,
      labResults: loaded.labResults,
      labPanels: panels.length,
      skippedLines: read.malformedCount + malformedLater,
      skippedEncounters,
      batches: batchCount,
      batchesStoredBefore: storedBefore.size,
      consentRefusals: optOuts.consentRefusals,
      unresolvedConsents: optOuts.unresolvedConsents,
      optOutEncountersRemoved: optOuts.encountersRemoved,
      ...Object.fromEntries(Object.entries(reasons).map(([reason, count]) => [`skipped.${reason}`, count])),
      durationMs: report.durationMs,
    });
    removeStaging(staged.directory);
    progress({ phase: 'done', done: stagedBytes, total: stagedBytes, batchesLoaded });
    return report;
  } finally {
    await writer.close();
  }
}
