/**
 * Counts failed authentications per client address in a fixed window and says when one has failed too often,
 * so API keys cannot be guessed at request speed. In memory, per process (README "Security": several
 * instances each keep their own count). Bounded: the oldest address is dropped when `maxClients` is reached.
 */
export class FailureThrottle {
  private readonly failures = new Map<string, { count: number; windowStart: number }>();

  constructor(
    private readonly options: { readonly maxFailures: number; readonly windowMs: number; readonly maxClients?: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until the client may try again; 0 when it may try now. */
  retryAfterMs(client: string): number {
    const entry = this.failures.get(client);
    if (!entry) return 0;
    const elapsed = this.now() - entry.windowStart;
    if (elapsed >= this.options.windowMs) {
      this.failures.delete(client);
      return 0;
    }
    return entry.count >= this.options.maxFailures ? this.options.windowMs - elapsed : 0;
  }

  recordFailure(client: string): void {
    const now = this.now();
    const entry = this.failures.get(client);
    if (entry && now - entry.windowStart < this.options.windowMs) {
      entry.count += 1;
      return;
    }
    this.failures.delete(client);
    if (this.failures.size >= (this.options.maxClients ?? 10000)) {
      const oldest = this.failures.keys().next();
      if (!oldest.done) this.failures.delete(oldest.value);
    }
    this.failures.set(client, { count: 1, windowStart: now });
  }
}
