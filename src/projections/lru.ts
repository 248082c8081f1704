/** What a projection's scratch cache offers (`ApplyContext.cache`). */
export interface KeyCache<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  set(key: K, value: V): void;
  delete(key: K): void;
  clear(): void;
}

/** A bounded map that forgets the least recently used entry (Map keeps insertion order). */
export class LruCache<K, V> implements KeyCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    readonly capacity: number,
    /** Told of each entry the bound pushes out (not of deletes or clears). */
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`LRU capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) {
        const value = this.map.get(oldest.value)!;
        this.map.delete(oldest.value);
        this.onEvict?.(oldest.value, value);
      }
    }
    this.map.set(key, value);
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }
}
