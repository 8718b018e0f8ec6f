import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('gives the documented defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: undefined,
      dataDirectory: './.data',
      logLevel: 'info',
      loadDemoCohort: true,
      fhirFetchTimeoutMs: 2000,
      corsOrigins: '*',
      cohortCacheSize: 2000,
      cohortCacheItems: 1_000_000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names every bad variable in one readable error', () => {
    expect(() => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' })).toThrow(
      /PORT:[\s\S]*DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL[\s\S]*LOG_LEVEL/,
    );
  });

  it('bounds the cohort cache by item counts too, at least one', () => {
    expect(loadConfig({ COHORT_CACHE_ITEMS: '20000' }).cohortCacheItems).toBe(20000);
    expect(() => loadConfig({ COHORT_CACHE_ITEMS: '0' })).toThrow(/COHORT_CACHE_ITEMS/);
  });

  it('requires the hashing secret in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => loadConfig({ PATIENT_HASH_SECRET: 'short' })).toThrow(/at least 32 characters/);
  });

  it('splits CORS origins and treats empty variables as unset', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example', PORT: '' }).corsOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ]);
  });
});
