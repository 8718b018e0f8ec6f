import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isFhirServerAllowed, parseFhirServerAllowlist } from '../../src/fhir/fhir-server-allowlist.js';

const allowlist = parseFhirServerAllowlist('https://ehr.example.org/fhir/R4/, http://127.0.0.1:8090/fhir');
const allowed = (url: string) => isFhirServerAllowed(allowlist, new URL(url));

describe('parseFhirServerAllowlist', () => {
  it('normalizes entries: no trailing slash, lower-case host, default port dropped', () => {
    expect(parseFhirServerAllowlist(' https://EHR.example.org:443/fhir/R4// ,http://127.0.0.1:8090/fhir')).toEqual([
      'https://ehr.example.org/fhir/R4',
      'http://127.0.0.1:8090/fhir',
    ]);
    expect(parseFhirServerAllowlist('')).toEqual([]);
  });

  it('refuses entries that are not plain http(s) base URLs', () => {
    expect(() => parseFhirServerAllowlist('ehr.example.org/fhir')).toThrow(/not a URL/);
    expect(() => parseFhirServerAllowlist('ftp://ehr.example.org/fhir')).toThrow(/http or https/);
    expect(() => parseFhirServerAllowlist('https://user:secret@ehr.example.org/fhir')).toThrow(/user name or password/);
    expect(() => parseFhirServerAllowlist('https://ehr.example.org/fhir?x=1')).toThrow(/query or fragment/);
  });
});

describe('isFhirServerAllowed', () => {
  it('allows an entry and the paths under it, however the same URL is spelled', () => {
    expect(allowed('https://ehr.example.org/fhir/R4')).toBe(true);
    expect(allowed('https://ehr.example.org/fhir/R4/')).toBe(true);
    expect(allowed('https://EHR.Example.ORG:443/fhir/R4')).toBe(true);
    expect(allowed('https://ehr.example.org/fhir/R4/tenant-2')).toBe(true);
    expect(allowed('https://ehr.example.org/fhir/x/../R4')).toBe(true);
    expect(allowed('http://127.0.0.1:8090/fhir')).toBe(true);
  });

  it('refuses everything else', () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://ehr.example.org/fhir/R4', // another scheme
      'https://ehr.example.org:8443/fhir/R4', // another port
      'https://ehr.example.org/fhir', // above the entry
      'https://ehr.example.org/fhir/R4x', // a prefix of the text, not of the path
      'https://ehr.example.org/fhir/R4/../../admin', // dot segments walking out
      'https://ehr.example.org/fhir/R4/%2e%2e/%2e%2e/admin', // the same, percent-encoded
      'https://ehr.example.org.evil.example/fhir/R4', // a longer host
      'https://ehr.example.org@evil.example/fhir/R4', // userinfo that looks like the host
      'https://user:pw@ehr.example.org/fhir/R4', // userinfo on the right host
      'https://ehr.example.org/fhir/R4?_format=json', // a query
      'https://ehr.example.org/fhir/R4/%2F..%2F..%2Fadmin', // slashes a server might decode before resolving
      'http://127.0.0.1:8091/fhir', // the redirect target of the tests
      'http://localhost:8090/fhir', // same machine, another name
    ]) {
      expect({ url, allowed: allowed(url) }).toEqual({ url, allowed: false });
    }
  });

  it('allows nothing with an empty list', () => {
    expect(isFhirServerAllowed([], new URL('https://ehr.example.org/fhir/R4'))).toBe(false);
  });

  it('never allows a URL that fetch would send outside an allowed base, whatever is appended', () => {
    const tricky = fc.constantFrom('/', '.', '..', '%2e', '%2F', '\\', '@', ':', '?', '#', '//', 'R4', 'x', '%00', ' ');
    fc.assert(
      fc.property(fc.array(tricky, { maxLength: 12 }), (parts) => {
        const text = `https://ehr.example.org/fhir/R4${parts.join('')}`;
        let url: URL;
        try {
          url = new URL(text);
        } catch {
          return;
        }
        if (!isFhirServerAllowed(allowlist, url)) return;
        // What the client requests is this URL (or a path under it): it must stay under the allowed base.
        expect(url.origin).toBe('https://ehr.example.org');
        expect(url.pathname === '/fhir/R4' || url.pathname.startsWith('/fhir/R4/')).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
