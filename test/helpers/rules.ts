/**
 * The body of POST /admin/rules/{version}/activate that skips the backtest a draft needs, on the record: for
 * tests about what a version does, not whether it does better (the backtest gate has its own tests in
 * test/http/admin-api.int.test.ts).
 */
export const forcedActivation = { force: true, reason: 'test setup: activated without a backtest' } as const;
