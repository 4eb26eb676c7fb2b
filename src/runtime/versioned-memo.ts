/**
 * One memoised value per key (a job), computed again when the key's version changes, forgotten with the key.
 *
 * Why not a bounded LRU (512 entries before): in a burst of thousands of jobs, a job's later passes (its pods
 * running, its stage done) come after thousands of other jobs' passes, so an LRU smaller than the number of jobs
 * misses on each of them, and each miss is a YAML parse or a spec validation. Memory grows with the jobs, as the
 * informers' caches do: the owner forgets a key when its job is gone.
 */
export class VersionedMemo<V> {
  readonly #entries = new Map<string, { version: string; value: V }>();
  hits = 0;
  misses = 0;

  get size(): number {
    return this.#entries.size;
  }

  /** The value remembered for `key` at `version`, or `compute()`, remembered in its place. */
  get(key: string, version: string, compute: () => V): V {
    const entry = this.#entries.get(key);
    if (entry && entry.version === version) {
      this.hits++;
      return entry.value;
    }
    this.misses++;
    const value = compute();
    this.#entries.set(key, { version, value });
    return value;
  }

  forget(key: string): void {
    this.#entries.delete(key);
  }
}
