/**
 * Counts the live streams (SSE and long-polls) each token holds open, so one token cannot tie
 * up the server's connections and re-check work: past the cap a new one is refused (429).
 */
export class LiveStreamSlots {
  private readonly open = new Map<string, number>();

  constructor(readonly perToken: number) {}

  /** A release function when a slot is free (call it exactly once, when the stream ends), else null. */
  acquire(token: string): (() => void) | null {
    const n = this.open.get(token) ?? 0;
    if (n >= this.perToken) return null;
    this.open.set(token, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(token) ?? 1) - 1;
      if (left <= 0) this.open.delete(token);
      else this.open.set(token, left);
    };
  }

  held(token: string): number {
    return this.open.get(token) ?? 0;
  }
}
