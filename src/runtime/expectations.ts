/**
 * Expectations: the operator's own writes that its caches do not show yet (as the Kubernetes Job controller keeps
 * them, pkg/controller/controller_utils.go). A watch event can trail the write that caused it, and events of
 * different resources arrive in any order: a reconcile that decides from a cache missing its own last write
 * repeats it (409 AlreadyExists / Conflict). So each write is recorded here, the informers' events clear it when
 * the cache shows it, and a timeout clears it when the cache never does (an object deleted before it was seen, a
 * no-op write that causes no event).
 *
 * Keys are owners (the FineTuneJob's `namespace/name`). Memory only: after a restart the worst case is those
 * harmless conflicts.
 */

/** How long an own write is expected before it is assumed lost or superseded. */
export const EXPECTATION_TIMEOUT_MS = 30_000;

export interface ExpectationsOptions {
  timeoutMs?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export class Expectations<T extends { metadata?: { name?: string; deletionTimestamp?: unknown } }> {
  readonly timeoutMs: number;
  readonly #now: () => number;
  /** Objects created per owner that the cache has not shown yet. */
  readonly #creations = new Map<string, Array<{ object: T; at: number }>>();
  /** Deletions asked per owner (object name -> when) that the cache does not show yet (no deletionTimestamp). */
  readonly #deletions = new Map<string, Map<string, number>>();
  /**
   * Per owner, until the cache shows a newer version: the resourceVersion a status write was based on, the one it
   * produced, and whether a reconcile was put off until the cache shows it.
   */
  readonly #statusWrites = new Map<string, { basedOn: string; produced: string; waitedFor: boolean; at: number }>();

  constructor(opts: ExpectationsOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? EXPECTATION_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** Records a creation the owner's cache should show soon. */
  expectCreation(owner: string, object: T): void {
    this.#creations.set(owner, [...(this.#creations.get(owner) ?? []), { object, at: this.#now() }]);
  }

  /** Informer event: the cache shows the object. */
  creationObserved(owner: string, name: string | undefined): void {
    const left = (this.#creations.get(owner) ?? []).filter((c) => c.object.metadata?.name !== name);
    if (left.length > 0) this.#creations.set(owner, left);
    else this.#creations.delete(owner);
  }

  /** The created objects `cached` (the owner's cache content) does not show yet, and that are still expected. */
  pendingCreations(owner: string, cached: readonly T[]): T[] {
    const expected = this.#creations.get(owner);
    if (!expected) return [];
    const names = new Set(cached.map((o) => o.metadata?.name));
    const now = this.#now();
    const left = expected.filter((c) => !names.has(c.object.metadata?.name) && now - c.at < this.timeoutMs);
    if (left.length > 0) this.#creations.set(owner, left);
    else this.#creations.delete(owner);
    return left.map((c) => c.object);
  }

  /** Records a deletion the owner's cache should show soon (a deletionTimestamp, or the object gone). */
  expectDeletion(owner: string, name: string): void {
    const known = this.#deletions.get(owner);
    if (known) known.set(name, this.#now());
    else this.#deletions.set(owner, new Map([[name, this.#now()]]));
  }

  /**
   * `cached` (the owner's cache content) with the objects whose deletion is still expected shown as being deleted
   * (a copy with a deletionTimestamp): a reconcile before the cache shows the deletion does not ask for it again.
   */
  withPendingDeletions(owner: string, cached: readonly T[]): readonly T[] {
    const expected = this.#deletions.get(owner);
    if (!expected) return cached;
    const now = this.#now();
    for (const [name, at] of expected) {
      const found = cached.find((o) => o.metadata?.name === name);
      if (!found || found.metadata?.deletionTimestamp !== undefined || now - at >= this.timeoutMs) expected.delete(name);
    }
    if (expected.size === 0) {
      this.#deletions.delete(owner);
      return cached;
    }
    return cached.map((o) => {
      const at = o.metadata?.name !== undefined ? expected.get(o.metadata.name) : undefined;
      return at === undefined ? o : ({ ...o, metadata: { ...o.metadata, deletionTimestamp: new Date(at).toISOString() } } as T);
    });
  }

  /**
   * Records a status write that replaced version `basedOn` with a new one. Only a write that produced a new
   * resourceVersion may be expected: a no-op update produces no event.
   */
  expectStatusWrite(owner: string, basedOn: string, produced: string): void {
    this.#statusWrites.set(owner, { basedOn, produced, waitedFor: false, at: this.#now() });
  }

  /**
   * Informer event: the cache shows the owner at `resourceVersion`. Answers whether that version is only the echo
   * of our own status write: exactly the version the write produced (so nobody else changed the object since the
   * version it was decided from), with no reconcile put off until it arrived. The planner's decision is a fixed
   * point of its own output (planner tests, "decide() on its own output is a fixed point"), so deciding again from
   * the echo finds nothing to do: it needs no reconcile.
   */
  statusObserved(owner: string, resourceVersion: string | undefined): boolean {
    const write = this.#statusWrites.get(owner);
    if (!write || write.basedOn === resourceVersion) return false;
    this.#statusWrites.delete(owner);
    return write.produced === resourceVersion && !write.waitedFor;
  }

  /**
   * True while the cache still shows the owner as it was before our status write (and the write is still expected):
   * the caller puts its reconcile off until the write's own event, which then must enqueue it.
   */
  awaitingStatusWrite(owner: string, cachedResourceVersion: string | undefined): boolean {
    const write = this.#statusWrites.get(owner);
    if (!write) return false;
    if (write.basedOn === cachedResourceVersion && this.#now() - write.at < this.timeoutMs) {
      write.waitedFor = true;
      return true;
    }
    this.#statusWrites.delete(owner);
    return false;
  }

  /** The owner is gone: nothing of it is expected any more. */
  forget(owner: string): void {
    this.#creations.delete(owner);
    this.#deletions.delete(owner);
    this.#statusWrites.delete(owner);
  }
}
