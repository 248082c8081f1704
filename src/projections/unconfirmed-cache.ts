import { LruCache, type KeyCache } from './lru.js';

/**
 * A worker's scratch cache while its writes are committed by another thread: an entry the bound
 * pushes out is kept until the batch that may have written it is confirmed committed, so a later
 * miss never reads a row older than what this worker already wrote. Batches are numbered by the
 * worker (`batch`); `confirm(n)` says batches up to n are visible to its read connection.
 */
export class UnconfirmedCache<V> implements KeyCache<string, V> {
  /** The batch being folded now: evictions are tagged with it. */
  batch = 0;
  private readonly lru: LruCache<string, V>;
  /** Evicted, not yet confirmed: in eviction order, so batch tags never decrease along it. */
  private readonly unconfirmed = new Map<string, { value: V; batch: number }>();

  constructor(capacity: number) {
    this.lru = new LruCache<string, V>(capacity, (key, value) => this.unconfirmed.set(key, { value, batch: this.batch }));
  }

  get size(): number {
    return this.lru.size + this.unconfirmed.size;
  }

  get(key: string): V | undefined {
    const hit = this.lru.get(key);
    if (hit !== undefined) return hit;
    const kept = this.unconfirmed.get(key);
    if (!kept) return undefined;
    this.unconfirmed.delete(key);
    this.lru.set(key, kept.value);
    return kept.value;
  }

  set(key: string, value: V): void {
    this.unconfirmed.delete(key);
    this.lru.set(key, value);
  }

  delete(key: string): void {
    this.lru.delete(key);
    this.unconfirmed.delete(key);
  }

  clear(): void {
    this.lru.clear();
    this.unconfirmed.clear();
  }

  /** Batches up to `batch` are committed: what they wrote can be read back. */
  confirm(batch: number): void {
    for (const [key, kept] of this.unconfirmed) {
      if (kept.batch > batch) break;
      this.unconfirmed.delete(key);
    }
  }
}
