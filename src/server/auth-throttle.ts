/**
 * Failed authentications per client address in a fixed window. Past the limit the address is
 * refused outright (valid tokens included, or guessing would go on unlimited) until the window
 * ends. Runs before token lookup; the per-token rate limit runs after it.
 */
export class AuthFailureThrottle {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();
  /** Addresses tracked at most: a flood of spoofed-looking sources cannot grow memory without bound. */
  private static readonly MAX_TRACKED = 100_000;

  constructor(
    readonly max: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds until `address` may try again, or 0 when it is not blocked. */
  retryAfterMs(address: string): number {
    const f = this.failures.get(address);
    if (!f) return 0;
    const left = f.resetAt - this.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return f.count >= this.max ? left : 0;
  }

  fail(address: string): void {
    const t = this.now();
    const f = this.failures.get(address);
    if (f && f.resetAt > t) {
      f.count++;
      return;
    }
    if (this.failures.size >= AuthFailureThrottle.MAX_TRACKED) this.evict(t);
    this.failures.set(address, { count: 1, resetAt: t + this.windowMs });
  }

  private evict(t: number): void {
    for (const [k, f] of this.failures) if (f.resetAt <= t) this.failures.delete(k);
    // Still full: forget the oldest entries (insertion order) rather than grow.
    for (const k of this.failures.keys()) {
      if (this.failures.size < AuthFailureThrottle.MAX_TRACKED) break;
      this.failures.delete(k);
    }
  }
}
