import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { runBulkExport, type BulkExportEvent } from '../bulk/bulk-export-client.js';
import { BackendServicesTokenSource } from '../bulk/smart-backend-auth.js';
import type { Config } from '../config.js';
import type { DatabaseHandle } from '../db/connection.js';
import { migrateToLatest } from '../db/migrate.js';
import { createKeyHasher } from '../ingest/deidentify.js';
import { ingestPaths } from '../ingest/ingest.js';
import { ensureReferenceData } from '../ingest/reference-data.js';
import { resolvePatientHashSecret } from '../ingest/secret.js';

type WithDatabase = <T>(config: Config, work: (handle: DatabaseHandle) => Promise<T>) => Promise<T>;

interface BulkExportFlags {
  fhirServer: string;
  group?: string;
  type?: string;
  since?: string;
  clientId?: string;
  privateKey?: string;
  keyId?: string;
  alg: string;
  scope: string;
  tokenEndpoint?: string;
  out?: string;
  site: string;
  ingest: boolean;
}

function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

function describeEvent(event: BulkExportEvent): string {
  switch (event.phase) {
    case 'kick-off':
      return 'export started; polling its status';
    case 'waiting':
      return `export in progress${event.progress ? ` (${event.progress})` : ''}; next check in ${Math.round(event.waitMs / 1000)} s`;
    case 'downloading':
      return `downloading [${event.index + 1}/${event.total}] ${event.file}`;
    case 'done':
      return `downloaded ${event.files} file(s)`;
  }
}

/** `bulk-export`: FHIR Bulk Data $export from the EHR, then the ingest of what it wrote. */
export function registerBulkExportCommand(program: Command, config: () => Config, withDatabase: WithDatabase, usageError: (message: string) => Error): void {
  program
    .command('bulk-export')
    .description('run a FHIR Bulk Data $export (system, or --group) on the EHR, download the NDJSON and ingest it')
    .requiredOption('--fhir-server <url>', 'FHIR base URL of the EHR')
    .option('--group <id>', 'export this Group only (Group/[id]/$export)')
    .option('--type <types>', 'comma-separated resource types (_type); default: what the ingest reads')
    .option('--since <instant>', 'only resources changed since this FHIR instant (_since), for daily loads')
    .option('--client-id <id>', 'SMART Backend Services client id (with --private-key and --key-id)')
    .option('--private-key <file>', 'the client private key: a JWK (JSON) or PKCS#8 PEM file')
    .option('--key-id <kid>', 'kid of the registered public key')
    .option('--alg <alg>', 'RS384 or ES384', 'ES384')
    .option('--scope <scope>', 'scopes asked for', 'system/*.read')
    .option('--token-endpoint <url>', 'token endpoint; default: from the server .well-known/smart-configuration')
    .option('--out <dir>', 'where the NDJSON files go; default DATA_DIR/bulk-export/<time>')
    .option('--site <site>', 'site label stored with every encounter', 'default')
    .option('--no-ingest', 'download only')
    .action(async (flags: BulkExportFlags) => {
      let fhirBase: URL;
      try {
        fhirBase = new URL(flags.fhirServer);
      } catch {
        throw usageError('--fhir-server must be an absolute URL');
      }
      if (fhirBase.protocol !== 'https:' && fhirBase.protocol !== 'http:') throw usageError('--fhir-server must be an http(s) URL');
      const authFlags = [flags.clientId, flags.privateKey, flags.keyId].filter((value) => value !== undefined).length;
      if (authFlags !== 0 && authFlags !== 3) throw usageError('--client-id, --private-key and --key-id go together');
      if (flags.alg !== 'RS384' && flags.alg !== 'ES384') throw usageError('--alg must be RS384 or ES384');
      const settings = config();
      const tokenSource =
        authFlags === 3
          ? new BackendServicesTokenSource(
              {
                clientId: flags.clientId as string,
                privateKey: await readFile(flags.privateKey as string, 'utf8'),
                keyId: flags.keyId as string,
                algorithm: flags.alg,
                scope: flags.scope,
                ...(flags.tokenEndpoint === undefined ? {} : { tokenEndpoint: flags.tokenEndpoint }),
              },
              fhirBase.toString(),
            )
          : undefined;
      const outputDirectory = path.resolve(flags.out ?? path.join(settings.dataDirectory, 'bulk-export', new Date().toISOString().replace(/[:.]/g, '-')));
      const types = flags.type?.split(',').map((type) => type.trim()).filter(Boolean);
      const result = await runBulkExport({
        fhirBase: fhirBase.toString(),
        outputDirectory,
        ...(flags.group === undefined ? {} : { groupId: flags.group }),
        ...(types === undefined ? {} : { types }),
        ...(flags.since === undefined ? {} : { since: flags.since }),
        ...(tokenSource ? { tokenSource } : {}),
        onProgress: (event) => say(describeEvent(event)),
      });
      process.stdout.write(`export of ${result.manifest.transactionTime || 'unknown time'}: ${result.files.length} file(s) in ${outputDirectory}\n`);
      if (result.errorFiles.length > 0) process.stdout.write(`the server reported errors: ${result.errorFiles.length} OperationOutcome file(s) in ${path.join(outputDirectory, 'errors')}\n`);
      if (!flags.ingest || result.files.length === 0) return;
      await withDatabase(settings, async ({ db }) => {
        await migrateToLatest(db);
        await ensureReferenceData(db);
        const hasher = createKeyHasher(await resolvePatientHashSecret(settings));
        const report = await ingestPaths(db, [outputDirectory], { hasher, site: flags.site, source: `bulk-export ${fhirBase.origin}`, log: say });
        process.stdout.write(`ingested: ${report.loaded.encounters} encounters, ${report.loaded.items} items (run ${report.ingestRunId})\n`);
      });
    });
}
