import { describe, expect, it } from '@jest/globals';
import { ReferenceDataCache, type ReferenceData } from '../../src/hooks/reference-data.js';

/** Only the identity of a load matters here. */
const loaded = (n: number) => ({ rules: { version: n } }) as unknown as ReferenceData;

describe('ReferenceDataCache', () => {
  it('reuses a load within the TTL and shares one load between concurrent callers', async () => {
    let loads = 0;
    const cache = new ReferenceDataCache(async () => loaded(++loads), 30_000);
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect(a).toBe(b);
    expect(await cache.get()).toBe(a);
    expect(loads).toBe(1);
  });

  it('loads afresh after invalidate(), even when a load that began before it is still under way', async () => {
    let loads = 0;
    let release: () => void = () => undefined;
    const cache = new ReferenceDataCache(async () => {
      const n = ++loads;
      // The first load is slow: it read the data before the change that invalidate() announces.
      if (n === 1) await new Promise<void>((resolve) => (release = resolve));
      return loaded(n);
    }, 30_000);
    const stale = cache.get();
    cache.invalidate();
    const fresh = cache.get();
    release();
    expect((await stale).rules.version).toBe(1);
    expect((await fresh).rules.version).toBe(2);
    // The stale load, finishing last or first, is never kept as the fresh value.
    expect((await cache.get()).rules.version).toBe(2);
    expect(loads).toBe(2);
  });

  it('serves a stale value while one reload runs in the background, then the reloaded one', async () => {
    let clock = 0;
    let loads = 0;
    let release: () => void = () => undefined;
    const cache = new ReferenceDataCache(
      async () => {
        const n = ++loads;
        if (n === 2) await new Promise<void>((resolve) => (release = resolve));
        return loaded(n);
      },
      1000,
      () => clock,
    );
    expect((await cache.get()).rules.version).toBe(1);
    clock = 1500; // past the TTL, within the stale window
    // Nobody waits for the slow second load: both callers get the first value, and only one reload starts.
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect([a.rules.version, b.rules.version]).toEqual([1, 1]);
    expect(loads).toBe(2);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    expect((await cache.get()).rules.version).toBe(2);
    expect(loads).toBe(2);
  });

  it('makes callers wait when the value is far too old or was invalidated, and reports a failed load', async () => {
    let clock = 0;
    let loads = 0;
    let fail = false;
    const cache = new ReferenceDataCache(
      async () => {
        loads += 1;
        if (fail) throw new Error('database away');
        return loaded(loads);
      },
      1000,
      () => clock,
    );
    await cache.get();
    fail = true;
    clock = 10_000; // ten TTLs: too old to serve
    await expect(cache.get()).rejects.toThrow('database away');
    fail = false;
    expect((await cache.get()).rules.version).toBe(3);
    cache.invalidate();
    expect((await cache.get()).rules.version).toBe(4);
  });
});
