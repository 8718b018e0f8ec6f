/**
 * Which FHIR servers this service may call. `fhirServer` is a field of the request body: without a list, a
 * caller could make the service fetch from any address its network reaches (cloud metadata, internal admin
 * pages) and hand the EHR's access token to a server of the caller's choosing.
 *
 * An entry allows one origin (scheme, host, port) and every path at or under its path. Both sides are parsed
 * as WHATWG URLs, the same parser fetch uses, so dot segments, default ports, host case and trailing slashes
 * cannot make two spellings of one URL disagree; userinfo, queries, fragments and encoded slashes or dots are
 * never allowed.
 */

interface AllowedBase {
  readonly origin: string;
  /** Without a trailing slash; '' allows the whole origin. */
  readonly path: string;
}

function toBase(url: URL): AllowedBase {
  return { origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
}

/** Why a URL cannot be (or be under) an allowlist entry; undefined when it can. */
function problemWith(url: URL): string | undefined {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be http or https';
  if (url.username !== '' || url.password !== '') return 'must not hold a user name or password';
  if (url.search !== '' || url.hash !== '') return 'must not have a query or fragment';
  // A server that decodes %2F or %2E before resolving its path could see a path outside the one checked here.
  if (/%(2f|5c|2e)/i.test(url.pathname)) return 'must not hold an encoded slash, backslash or dot';
  return undefined;
}

/** Parses CDS_FHIR_SERVER_ALLOWLIST (comma-separated base URLs) into normalized entries; throws naming a bad one. */
export function parseFhirServerAllowlist(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry) => {
      let url: URL;
      try {
        url = new URL(entry);
      } catch {
        throw new Error(`${entry} is not a URL`);
      }
      const problem = problemWith(url);
      if (problem !== undefined) throw new Error(`${entry} ${problem}`);
      const base = toBase(url);
      return `${base.origin}${base.path}`;
    });
}

/** Whether `fhirServer` is one of the allowed bases or under one of them. */
export function isFhirServerAllowed(allowlist: readonly string[], fhirServer: URL): boolean {
  if (problemWith(fhirServer) !== undefined) return false;
  const candidate = toBase(fhirServer);
  return allowlist.some((entry) => {
    const allowed = toBase(new URL(entry));
    return candidate.origin === allowed.origin && (candidate.path === allowed.path || candidate.path.startsWith(`${allowed.path}/`));
  });
}

/** The `allowFhirServer` option of the context resolver: the allowlist, with each refusal logged (origin only). */
export function fhirServerGate(allowlist: readonly string[], log?: { warn(object: object, message: string): void }): (fhirServer: URL) => boolean {
  return (fhirServer) => {
    const allowed = isFhirServerAllowed(allowlist, fhirServer);
    if (!allowed) log?.warn({ fhirServerOrigin: fhirServer.origin }, 'fhirServer is not on CDS_FHIR_SERVER_ALLOWLIST');
    return allowed;
  };
}
