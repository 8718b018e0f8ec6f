import type { LoggerOptions } from 'pino';
import type { Config } from './config.js';

/**
 * Paths redacted from every log line: credentials and anything that could carry a patient identifier.
 * Request bodies are never logged; these cover what a handler might log by mistake.
 */
export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'fhirAuthorization',
  '*.fhirAuthorization',
  'access_token',
  '*.access_token',
  'token',
  '*.token',
  'jwt',
  'patientId',
  '*.patientId',
  'context.patientId',
  // POST /admin/opt-outs carries the identifier to be hashed; bodies are never logged, this covers a mistake.
  'req.body.patientId',
  'request.body.patientId',
  'prefetch',
  '*.prefetch',
];

/** pino JSON logs at the configured level, with credentials and patient identifiers removed. */
export function loggerOptions(config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: redactedPaths, censor: '[redacted]' },
  };
}
