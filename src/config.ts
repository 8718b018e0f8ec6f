import { z } from 'zod';

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
  /** Comma-separated origins allowed by CORS on the CDS endpoints; `*` allows any. */
  CORS_ORIGINS: z.string().default('*'),
});

export interface Config {
  readonly environment: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  readonly dataDirectory: string;
  readonly logLevel: string;
  readonly patientHashSecret: string | undefined;
  readonly publicBaseUrl: string | undefined;
  readonly loadDemoCohort: boolean;
  readonly fhirFetchTimeoutMs: number;
  readonly bodyLimitBytes: number;
  readonly corsOrigins: '*' | readonly string[];
  readonly cohortCacheSize: number;
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
  if (env.NODE_ENV === 'production' && env.PATIENT_HASH_SECRET === undefined) {
    throw new ConfigError('Invalid configuration:\n  PATIENT_HASH_SECRET: required when NODE_ENV=production');
  }
  const origins = env.CORS_ORIGINS.trim();
  return Object.freeze({
    environment: env.NODE_ENV,
    port: env.PORT,
    host: env.HOST,
    databaseUrl: env.DATABASE_URL,
    dataDirectory: env.DATA_DIR,
    logLevel: env.LOG_LEVEL,
    patientHashSecret: env.PATIENT_HASH_SECRET,
    publicBaseUrl: env.PUBLIC_BASE_URL,
    loadDemoCohort: env.DEMO_COHORT,
    fhirFetchTimeoutMs: env.FHIR_FETCH_TIMEOUT_MS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    cohortCacheSize: env.COHORT_CACHE_SIZE,
    corsOrigins: origins === '*' ? '*' : Object.freeze(origins.split(',').map((origin) => origin.trim()).filter(Boolean)),
  });
}

/** A configuration for tests and tools: defaults, overridden field by field. */
export function buildConfig(overrides: Partial<Config> = {}): Config {
  return Object.freeze({ ...loadConfig({}), ...overrides });
}
