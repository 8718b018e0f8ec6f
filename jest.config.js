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
  // A worker that ran many suites held gigabytes (8.2 and 5.7 GB resident near the end of a PGlite run, 2026-12-02):
  // each suite's PGlite instances and module registry stay reachable from jest's per-file contexts, and the paging and
  // collecting of that heap cost a third of the run's CPU. Recycling a worker once its heap passes 256 MB after a suite
  // (jest measures heapUsed; the WebAssembly memory that goes with it is not counted but goes with the worker) took the
  // PGlite run from 11 min 37 s to 8 min 20 s on this machine, with 17.6 → 11.8 min of user CPU.
  workerIdleMemoryLimit: '256MB',
};
