/**
 * The CDS clients this service trusts, read from CDS_TRUSTED_ISSUERS: one entry per JWT `iss`, each with where
 * its public keys are and which `jku` URLs it may name. https://cds-hooks.hl7.org/2.0/#trusting-cds-clients:
 * "CDS Services SHOULD maintain an allowlist of the `iss` and `jku` fields to only the CDS Clients they trust."
 *
 * Written as JSON (or the path of a JSON file):
 *   { "<iss>": { "jwks": { "keys": [...] } | "jwksFile": "path" | "jwksUrl": "https://…", "jku": ["https://…"] } }
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { JSONWebKeySet, JWK } from 'jose';
import { z } from 'zod';

export interface TrustedIssuer {
  /** The `iss` claim, compared as an exact string. */
  readonly issuer: string;
  /** Keys given inline or read from a file at start. */
  readonly jwks: JSONWebKeySet | undefined;
  /** A JWK Set fetched over HTTP, cached, and fetched again when a token names an unknown `kid`. */
  readonly jwksUrl: string | undefined;
  /** `jku` header values this issuer may use; a token naming any other `jku` is refused. */
  readonly jku: readonly string[];
}

/** Asymmetric key types only: the spec forbids symmetric (HMAC) signatures. */
const publicJwkSchema = z.looseObject({
  kty: z.enum(['RSA', 'EC'], { error: 'kty must be RSA or EC (symmetric and other keys are not accepted)' }),
  kid: z.string({ error: 'every key needs a kid (the JWT header names it)' }).min(1),
});

/** Members of a JWK that only a private (or symmetric) key has: such a key in this file is a mistake. */
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

const jwkSetSchema = z.object({ keys: z.array(publicJwkSchema).min(1, 'keys must not be empty') }).superRefine((set, context) => {
  set.keys.forEach((key, index) => {
    const found = privateMembers.filter((member) => Object.hasOwn(key, member));
    if (found.length > 0) context.addIssue({ code: 'custom', path: ['keys', index], message: `holds private key material (${found.join(', ')}): give only the public key` });
  });
});

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

const issuerEntrySchema = z
  .strictObject({
    jwks: jwkSetSchema.optional(),
    jwksFile: z.string().min(1).optional(),
    jwksUrl: httpUrl.optional(),
    jku: z.array(httpUrl).default([]),
  })
  .refine((entry) => [entry.jwks, entry.jwksFile, entry.jwksUrl].filter((source) => source !== undefined).length <= 1, {
    message: 'give at most one of jwks, jwksFile, jwksUrl',
  })
  .refine((entry) => entry.jwks !== undefined || entry.jwksFile !== undefined || entry.jwksUrl !== undefined || entry.jku.length > 0, {
    message: 'needs keys: one of jwks, jwksFile, jwksUrl, or a jku list',
  });

const issuersSchema = z.record(z.string().min(1, 'an issuer must not be empty'), issuerEntrySchema);

export interface ParseIssuersOptions {
  /** Require https for jwksUrl and jku (production): keys fetched in clear text could be swapped. */
  readonly requireHttps: boolean;
  /** Relative file paths are resolved from here (default: the working directory). */
  readonly baseDirectory?: string;
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue.message}`).join('; ');
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${what} ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what} ${file} is not valid JSON`);
  }
}

/** The same URL written the same way, so that an allowlist compares like with like. */
export function normalizeUrl(url: string): string {
  return new URL(url).href;
}

/**
 * Parses CDS_TRUSTED_ISSUERS (JSON, or the path of a JSON file) and reads any jwksFile; throws an Error whose
 * message says what is wrong, without echoing key material.
 */
export function parseTrustedIssuers(value: string, options: ParseIssuersOptions): TrustedIssuer[] {
  const trimmed = value.trim();
  const fromFile = !trimmed.startsWith('{');
  let baseDirectory = options.baseDirectory ?? process.cwd();
  let json: unknown;
  if (fromFile) {
    const file = path.resolve(baseDirectory, trimmed);
    json = readJson(file, 'issuers file');
    // A jwksFile named in an issuers file is found beside it, wherever the service is started from.
    baseDirectory = path.dirname(file);
  } else {
    try {
      json = JSON.parse(trimmed);
    } catch {
      throw new Error('is neither valid JSON nor the path of a JSON file');
    }
  }

  const parsed = issuersSchema.safeParse(json);
  if (!parsed.success) throw new Error(describeIssues(parsed.error));

  const issuers: TrustedIssuer[] = [];
  for (const [issuer, entry] of Object.entries(parsed.data)) {
    let jwks = entry.jwks as JSONWebKeySet | undefined;
    if (entry.jwksFile !== undefined) {
      const fileJson = readJson(path.resolve(baseDirectory, entry.jwksFile), `jwksFile of ${issuer}:`);
      const keys = jwkSetSchema.safeParse(fileJson);
      if (!keys.success) throw new Error(`${issuer}: jwksFile ${entry.jwksFile}: ${describeIssues(keys.error)}`);
      jwks = keys.data as { keys: JWK[] };
    }
    const remote = [...(entry.jwksUrl === undefined ? [] : [entry.jwksUrl]), ...entry.jku];
    if (options.requireHttps) {
      const insecure = remote.find((url) => new URL(url).protocol !== 'https:');
      if (insecure !== undefined) throw new Error(`${issuer}: ${insecure} must be https in production (keys fetched in clear text could be swapped)`);
    }
    issuers.push({
      issuer,
      jwks,
      jwksUrl: entry.jwksUrl === undefined ? undefined : normalizeUrl(entry.jwksUrl),
      jku: Object.freeze(entry.jku.map(normalizeUrl)),
    });
  }
  return issuers;
}
