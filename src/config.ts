import { z } from 'zod';
import { parseTrustedIssuers, type TrustedIssuer } from './auth/trusted-issuers.js';
import { parseFhirServerAllowlist } from './fhir/fhir-server-allowlist.js';

/** Every setting the service reads from the environment, validated once at start. */
const environmentSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  /** Unset: the embedded PGlite database under DATA_DIR. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  /** Comma-separated postgres:// URLs of streaming replicas the hooks read from (docs/scaling.md). */
  DATABASE_READ_URL: z
    .string()
    .transform((value) => value.split(',').map((url) => url.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^postgres(ql)?:\/\//, 'each must be a postgres:// or postgresql:// URL')))
    .optional(),
  /** A replica whose oldest unreplayed change is older than this is not read from. */
  DATABASE_READ_MAX_LAG_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
  /** A database query not answered within this fails (503 on a hook) rather than hang on a silent server; 0: no limit. */
  DATABASE_QUERY_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(5000),
  DATA_DIR: z.string().min(1).default('./.data'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Key of the HMAC that turns patient and encounter identifiers into cohort keys (32+ characters). */
  PATIENT_HASH_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Public base URL of this service, used in links on cards; defaults to http://HOST:PORT. */
  PUBLIC_BASE_URL: z.string().url().optional(),
  /** Load the bundled MIMIC-IV demo cohort at start when the cohort is empty. */
  DEMO_COHORT: z
    .enum(['true', 'false'])
    .default('true')
    .transform((value) => value === 'true'),
  /** Total time a hook may spend fetching from the EHR's FHIR server. */
  FHIR_FETCH_TIMEOUT_MS: z.coerce.number().int().min(50).max(60000).default(2000),
  /** Largest accepted request body. */
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Cohorts kept in memory between hooks; 0 turns the cache off. */
  COHORT_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(2000),
  /**
   * Item counts kept over all cached cohorts: bounds the cache beside its size. Since the snapshot's statistics keep their
   * items packed, one is 8 bytes of a typed array (about 90 bytes of heap as an object before, measured).
   */
  COHORT_CACHE_ITEMS: z.coerce.number().int().min(1).max(100_000_000).default(1_000_000),
  /** How often the in-memory cohort aggregates check for a new ingest or an opt-out (another instance's too). */
  AGGREGATE_POLL_MS: z.coerce.number().int().min(100).max(60000).default(1000),
  /** Every this many ms, a log line of runtime statistics (event-loop delay, GC pauses, slowest answer); 0: none. */
  RUNTIME_STATS_INTERVAL_MS: z.coerce
    .number()
    .int()
    .refine((value) => value === 0 || (value >= 100 && value <= 3_600_000), 'must be 0 (off) or 100 to 3600000')
    .default(0),
  /** Comma-separated origins allowed by CORS on the CDS endpoints; `*` allows any. */
  CORS_ORIGINS: z.string().default('*'),
  /** Only `true` turns CDS client authentication off (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients). */
  CDS_AUTH_DISABLED: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  /** The CDS clients trusted: JSON, or the path of a JSON file (README "Security"). */
  CDS_TRUSTED_ISSUERS: z.string().optional(),
  /** Leeway for the JWT's exp and iat between the client's clock and ours. */
  CDS_JWT_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(60),
  /** Comma-separated FHIR base URLs the service may fetch from; empty allows none. */
  CDS_FHIR_SERVER_ALLOWLIST: z.string().default(''),
  /** Requests per minute per client (JWT iss + sub, else IP address); 0 turns the limit off. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).max(1_000_000).default(1200),
  /** Key that signs the explanation links on cards (32+ characters); derived from PATIENT_HASH_SECRET when unset. */
  LINK_SIGNING_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** How long the explanation link on a card opens without a login. */
  EXPLANATION_LINK_TTL_HOURS: z.coerce.number().min(0.1).max(24 * 90).default(24 * 7),
  /** Create a demo informaticist API key (written to DATA_DIR/demo-api-key.txt) when none exists; never in production. */
  DEMO_API_KEY: z
    .enum(['true', 'false'])
    .optional()
    .transform((value) => value === undefined ? undefined : value === 'true'),
});

export interface Config {
  readonly environment: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  /** Streaming replicas for the hook path's reads; empty: everything reads the primary. */
  readonly databaseReadUrls: readonly string[];
  readonly databaseReadMaxLagMs: number;
  /** Client-side limit on one query of the service's pool (PostgreSQL); 0: none. */
  readonly databaseQueryTimeoutMs: number;
  readonly dataDirectory: string;
  readonly logLevel: string;
  readonly patientHashSecret: string | undefined;
  readonly publicBaseUrl: string | undefined;
  readonly loadDemoCohort: boolean;
  readonly fhirFetchTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly corsOrigins: '*' | readonly string[];
  readonly cohortCacheSize: number;
  readonly cohortCacheItems: number;
  readonly aggregatePollMs: number;
  readonly runtimeStatsIntervalMs: number;
  /** True when CDS clients are not authenticated: set explicitly, or a non-production run without issuers. */
  readonly cdsAuthDisabled: boolean;
  readonly trustedIssuers: readonly TrustedIssuer[];
  readonly jwtClockSkewSeconds: number;
  /** Normalized FHIR base URLs (no trailing slash) the service may call; empty: none. */
  readonly fhirServerAllowlist: readonly string[];
  readonly rateLimitPerMinute: number;
  /** Signs explanation links; undefined: derived from the patient hash secret, else random per process. */
  readonly linkSigningSecret: string | undefined;
  readonly explanationLinkTtlMs: number;
  /** Make a demo informaticist key at start when there is no key at all. */
  readonly createDemoApiKey: boolean;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; throws a ConfigError naming each bad variable. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value !== ''));
  const parsed = environmentSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`).join('\n');
    throw new ConfigError(`Invalid configuration:\n${problems}`);
  }
  const env = parsed.data;
  const production = env.NODE_ENV === 'production';
  const problems: string[] = [];
  if (production && env.PATIENT_HASH_SECRET === undefined) problems.push('PATIENT_HASH_SECRET: required when NODE_ENV=production');
  if (env.DATABASE_READ_URL !== undefined && env.DATABASE_READ_URL.length > 0 && env.DATABASE_URL === undefined) {
    problems.push('DATABASE_READ_URL: needs DATABASE_URL (the primary); the embedded PGlite has no replicas');
  }
  if (production && env.DEMO_API_KEY === true) problems.push('DEMO_API_KEY: must not be true when NODE_ENV=production (create keys with `npm run cli -- api-key create`)');

  let trustedIssuers: TrustedIssuer[] = [];
  if (env.CDS_TRUSTED_ISSUERS !== undefined) {
    try {
      trustedIssuers = parseTrustedIssuers(env.CDS_TRUSTED_ISSUERS, { requireHttps: production });
      if (trustedIssuers.length === 0) problems.push('CDS_TRUSTED_ISSUERS: names no issuer, so every CDS call would be refused');
    } catch (error) {
      problems.push(`CDS_TRUSTED_ISSUERS: ${(error as Error).message}`);
    }
  }
  // Off only when asked, or for the demo: a production service never runs open by omission.
  const cdsAuthDisabled = env.CDS_AUTH_DISABLED === 'true' || (env.CDS_AUTH_DISABLED === undefined && !production && env.CDS_TRUSTED_ISSUERS === undefined);
  if (!cdsAuthDisabled && env.CDS_TRUSTED_ISSUERS === undefined) {
    problems.push(
      production
        ? 'CDS_TRUSTED_ISSUERS: required when NODE_ENV=production (or set CDS_AUTH_DISABLED=true to run without CDS client authentication)'
        : 'CDS_TRUSTED_ISSUERS: required when CDS_AUTH_DISABLED=false',
    );
  }
  // The JWT aud is this service's public URL; behind TLS or a proxy http://HOST:PORT is never it.
  if (production && !cdsAuthDisabled && env.PUBLIC_BASE_URL === undefined) {
    problems.push('PUBLIC_BASE_URL: required when NODE_ENV=production and CDS client authentication is on (the JWT aud is checked against it)');
  }

  let fhirServerAllowlist: string[] = [];
  try {
    fhirServerAllowlist = parseFhirServerAllowlist(env.CDS_FHIR_SERVER_ALLOWLIST);
  } catch (error) {
    problems.push(`CDS_FHIR_SERVER_ALLOWLIST: ${(error as Error).message}`);
  }

  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
  const origins = env.CORS_ORIGINS.trim();
  return Object.freeze({
    environment: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    databaseReadUrls: Object.freeze(env.DATABASE_READ_URL ?? []),
    databaseReadMaxLagMs: env.DATABASE_READ_MAX_LAG_MS,
    databaseQueryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
    dataDirectory: env.DATA_DIR,
    logLevel: env.LOG_LEVEL,
    patientHashSecret: env.PATIENT_HASH_SECRET,
    publicBaseUrl: env.PUBLIC_BASE_URL,
    loadDemoCohort: env.DEMO_COHORT,
    fhirFetchTimeoutMs: env.FHIR_FETCH_TIMEOUT_MS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    cohortCacheSize: env.COHORT_CACHE_SIZE,
    cohortCacheItems: env.COHORT_CACHE_ITEMS,
    aggregatePollMs: env.AGGREGATE_POLL_MS,
    runtimeStatsIntervalMs: env.RUNTIME_STATS_INTERVAL_MS,
    corsOrigins: origins === '*' ? '*' : Object.freeze(origins.split(',').map((origin) => origin.trim()).filter(Boolean)),
    cdsAuthDisabled,
    trustedIssuers: Object.freeze(trustedIssuers),
    jwtClockSkewSeconds: env.CDS_JWT_CLOCK_SKEW_SECONDS,
    fhirServerAllowlist: Object.freeze(fhirServerAllowlist),
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    linkSigningSecret: env.LINK_SIGNING_SECRET ?? env.PATIENT_HASH_SECRET,
    explanationLinkTtlMs: env.EXPLANATION_LINK_TTL_HOURS * 3600_000,
    // The demo (`npm start` with no configuration) can be logged into; a configured service makes its own keys.
    createDemoApiKey: env.DEMO_API_KEY ?? (!production && env.DEMO_COHORT),
  });
}

/** A configuration for tests and tools: defaults, overridden field by field. */
export function buildConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...loadConfig({}), ...overrides });
}
