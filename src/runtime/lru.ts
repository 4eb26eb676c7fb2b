/**
 * A small least-recently-used map: bounded memory for memoised values whose
 * keys carry their own version (e.g. `<key>@<resourceVersion>`), so an entry
 * is never stale, only evicted.
 */
export class LruCache<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();
  hits = 0;
  misses = 0;

  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  get size(): number {
    return this.#map.size;
  }

  /** The cached value, or `compute()` stored as the most recently used. */
  getOrCompute(key: string, compute: () => V): V {
    if (this.#map.has(key)) {
      const value = this.#map.get(key)!;
      this.#map.delete(key); // Map keeps insertion order: re-insert to mark as most recent
      this.#map.set(key, value);
      this.hits++;
      return value;
    }
    this.misses++;
    const value = compute();
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
    return value;
  }
}
