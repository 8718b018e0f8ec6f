/** Jest runs the TypeScript sources as ES modules through swc; `tsc --noEmit` does the type-checking. */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60000,
  // Two workers on this 2-core machine: jest's default (cores - 1) runs every suite in one process, one after another,
  // while most of a suite's time is one core's work (PGlite, the ingest, swc), so the second core sat idle.
  maxWorkers: 2,
};
