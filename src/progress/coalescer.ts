/**
 * Decides which progress reports become status writes, so the API cost of
 * progress is bounded twice over, whatever the trainers do:
 *  - per job: only the newest report waiting since the last flush is written
 *    (one write per job per flush interval at most);
 *  - per operator: at most `maxWritesPerFlush` writes per flush. When more jobs
 *    wait, the ones written longest ago go first and the rest keep waiting
 *    (still only their newest report), so with many jobs each one is updated a
 *    little less often instead of the API server getting more writes.
 * Pure and clock-free: the caller passes `now`.
 */
export class ProgressCoalescer<T> {
  readonly #pending = new Map<string, T>();
  readonly #lastWritten = new Map<string, number>();
  readonly #maxWritesPerFlush: number;

  constructor(maxWritesPerFlush: number) {
    this.#maxWritesPerFlush = Math.max(1, Math.floor(maxWritesPerFlush));
  }

  /** Keeps only the newest report per key. */
  put(key: string, report: T): void {
    this.#pending.set(key, report);
  }

  /** The report waiting for a key, if any (to carry parts of it into the next one). */
  peek(key: string): T | undefined {
    return this.#pending.get(key);
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** The reports to write now, least recently written first; they leave the buffer. */
  take(now: number): Array<[string, T]> {
    const order = [...this.#pending.keys()].sort((a, b) => (this.#lastWritten.get(a) ?? -Infinity) - (this.#lastWritten.get(b) ?? -Infinity));
    const batch: Array<[string, T]> = [];
    for (const key of order.slice(0, this.#maxWritesPerFlush)) {
      batch.push([key, this.#pending.get(key)!]);
      this.#pending.delete(key);
      this.#lastWritten.set(key, now);
    }
    return batch;
  }

  /** Forgets jobs not written for `maxAgeMs` (deleted or finished jobs). */
  prune(now: number, maxAgeMs: number): void {
    for (const [key, at] of this.#lastWritten) if (now - at > maxAgeMs && !this.#pending.has(key)) this.#lastWritten.delete(key);
  }
}
