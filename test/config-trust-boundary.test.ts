import { describe, expect, it } from '@jest/globals';
import { buildConfig, ConfigError, loadConfig } from '../src/config.js';

const secret = { PATIENT_HASH_SECRET: 'x'.repeat(32) };
const issuers = JSON.stringify({ 'https://sandbox.cds-hooks.org': { jwksUrl: 'https://sandbox.cds-hooks.org/.well-known/jwks.json' } });

describe('loadConfig: the trust boundary', () => {
  it('runs the demo with authentication off, nothing allowed to be fetched, and a generous rate limit', () => {
    expect(loadConfig({})).toMatchObject({
      cdsAuthDisabled: true,
      trustedIssuers: [],
      jwtClockSkewSeconds: 60,
      fhirServerAllowlist: [],
      rateLimitPerMinute: 1200,
    });
    expect(buildConfig().cdsAuthDisabled).toBe(true);
  });

  it('turns authentication on as soon as issuers are given', () => {
    const config = loadConfig({ CDS_TRUSTED_ISSUERS: issuers, CDS_JWT_CLOCK_SKEW_SECONDS: '30' });
    expect(config.cdsAuthDisabled).toBe(false);
    expect(config.trustedIssuers.map((issuer) => issuer.issuer)).toEqual(['https://sandbox.cds-hooks.org']);
    expect(config.jwtClockSkewSeconds).toBe(30);
  });

  it('refuses to start in production with neither issuers nor an explicit CDS_AUTH_DISABLED=true', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ...secret })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: 'production', ...secret })).toThrow(/CDS_TRUSTED_ISSUERS: required when NODE_ENV=production/);
    expect(loadConfig({ NODE_ENV: 'production', ...secret, CDS_AUTH_DISABLED: 'true' }).cdsAuthDisabled).toBe(true);
  });

  it('needs PUBLIC_BASE_URL in production with authentication on, since aud is checked against it', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', ...secret, CDS_TRUSTED_ISSUERS: issuers })).toThrow(/PUBLIC_BASE_URL: required/);
    const config = loadConfig({ NODE_ENV: 'production', ...secret, CDS_TRUSTED_ISSUERS: issuers, PUBLIC_BASE_URL: 'https://cds.example.org' });
    expect(config.cdsAuthDisabled).toBe(false);
  });

  it('accepts only true or false for CDS_AUTH_DISABLED, and false needs issuers', () => {
    expect(() => loadConfig({ CDS_AUTH_DISABLED: 'yes' })).toThrow(/CDS_AUTH_DISABLED: must be true or false/);
    expect(() => loadConfig({ CDS_AUTH_DISABLED: 'false' })).toThrow(/CDS_TRUSTED_ISSUERS: required when CDS_AUTH_DISABLED=false/);
    expect(() => loadConfig({ CDS_TRUSTED_ISSUERS: '{}' })).toThrow(/names no issuer/);
  });

  it('names a bad issuer list, key URL or allowlist entry', () => {
    expect(() => loadConfig({ CDS_TRUSTED_ISSUERS: '{"iss": {}}' })).toThrow(/CDS_TRUSTED_ISSUERS: iss: needs keys/);
    expect(() => loadConfig({ NODE_ENV: 'production', ...secret, PUBLIC_BASE_URL: 'https://cds.example.org', CDS_TRUSTED_ISSUERS: '{"iss": {"jwksUrl": "http://ehr.example.org/k"}}' })).toThrow(
      /must be https in production/,
    );
    expect(() => loadConfig({ CDS_FHIR_SERVER_ALLOWLIST: 'https://ehr.example.org/fhir, https://u:p@ehr.example.org/fhir' })).toThrow(
      /CDS_FHIR_SERVER_ALLOWLIST: https:\/\/u:p@ehr.example.org\/fhir must not hold a user name or password/,
    );
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: '-1' })).toThrow(/RATE_LIMIT_PER_MINUTE/);
  });

  it('normalizes the FHIR server allowlist', () => {
    expect(loadConfig({ CDS_FHIR_SERVER_ALLOWLIST: 'https://EHR.example.org/fhir/R4/, http://127.0.0.1:8090/fhir' }).fhirServerAllowlist).toEqual([
      'https://ehr.example.org/fhir/R4',
      'http://127.0.0.1:8090/fhir',
    ]);
  });
});
