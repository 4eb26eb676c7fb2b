/**
 * The informer's in-memory cache: objects by namespace and name, secondary indexes, and
 * the pure relist reconciliation that turns "the cache" + "a fresh list" into add / update /
 * delete events (client-node's relist never re-emits adds, kubernetes-client/javascript#795;
 * this does, so no object is ever lost across a watch restart).
 *
 * No I/O here. Objects stored are the ones passed in (no copies); callers must treat them as
 * read-only.
 */
import type { KubernetesObject } from "@kubernetes/client-node";

/** `namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export function keyOf(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Inverse of {@link objectKey}. */
export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf("/");
  return i < 0 ? { namespace: "", name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export type IndexFunc<T> = (obj: T) => readonly string[];

export type CacheEvent<T> =
  | { type: "add"; obj: T }
  | { type: "update"; obj: T; old: T }
  /** `finalStateUnknown`: the delete was inferred from a relist, `obj` is the last state seen. */
  | { type: "delete"; obj: T; finalStateUnknown: boolean };

function sameVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const ra = a.metadata?.resourceVersion;
  return ra !== undefined && ra !== "" && ra === b.metadata?.resourceVersion;
}

interface Index<T> {
  fn: IndexFunc<T>;
  values: Map<string, Set<string>>;
}

export class Store<T extends KubernetesObject> {
  readonly #byNs = new Map<string, Map<string, T>>();
  readonly #indexes = new Map<string, Index<T>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /**
   * Register a secondary index. `fn` returns the index values of an object (e.g. its owner
   * UIDs). May be called before or after objects are stored.
   */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.#indexes.has(name)) throw new Error(`index ${name} already registered`);
    const idx: Index<T> = { fn, values: new Map() };
    this.#indexes.set(name, idx);
    for (const m of this.#byNs.values()) for (const obj of m.values()) this.#indexAdd(idx, obj, objectKey(obj));
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#byNs.get(namespace ?? "")?.get(name);
  }

  getByKey(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.get(namespace, name);
  }

  /** All objects, or those in `namespace`. A fresh array of cached (read-only) objects. */
  list(namespace?: string): T[] {
    if (namespace !== undefined) return [...(this.#byNs.get(namespace)?.values() ?? [])];
    const out: T[] = [];
    for (const m of this.#byNs.values()) for (const o of m.values()) out.push(o);
    return out;
  }

  *keys(): IterableIterator<string> {
    for (const [ns, m] of this.#byNs) for (const name of m.keys()) yield keyOf(ns, name);
  }

  /** Objects whose index `indexName` contains `value`. */
  byIndex(indexName: string, value: string): T[] {
    const idx = this.#indexes.get(indexName);
    if (!idx) throw new Error(`unknown index ${indexName}`);
    const keys = idx.values.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) {
      const o = this.getByKey(k);
      if (o) out.push(o);
    }
    return out;
  }

  /**
   * Insert or replace. Returns the event to emit: `add` when new, `update` when the
   * resourceVersion changed, `undefined` when the same version is already stored.
   */
  upsert(obj: T): CacheEvent<T> | undefined {
    const ns = obj.metadata?.namespace ?? "";
    const name = obj.metadata?.name ?? "";
    let m = this.#byNs.get(ns);
    if (!m) {
      m = new Map();
      this.#byNs.set(ns, m);
    }
    const old = m.get(name);
    if (old && sameVersion(old, obj)) return undefined;
    const key = keyOf(ns, name);
    if (old) for (const idx of this.#indexes.values()) this.#indexRemove(idx, old, key);
    m.set(name, obj);
    for (const idx of this.#indexes.values()) this.#indexAdd(idx, obj, key);
    if (old) return { type: "update", obj, old };
    this.#size++;
    return { type: "add", obj };
  }

  /** Remove; returns the stored object, if any. */
  remove(namespace: string | undefined, name: string): T | undefined {
    const ns = namespace ?? "";
    const m = this.#byNs.get(ns);
    const old = m?.get(name);
    if (!m || !old) return undefined;
    m.delete(name);
    if (m.size === 0) this.#byNs.delete(ns);
    this.#size--;
    const key = keyOf(ns, name);
    for (const idx of this.#indexes.values()) this.#indexRemove(idx, old, key);
    return old;
  }

  clear(): void {
    this.#byNs.clear();
    for (const idx of this.#indexes.values()) idx.values.clear();
    this.#size = 0;
  }

  #indexAdd(idx: Index<T>, obj: T, key: string): void {
    for (const v of idx.fn(obj)) {
      let s = idx.values.get(v);
      if (!s) {
        s = new Set();
        idx.values.set(v, s);
      }
      s.add(key);
    }
  }

  #indexRemove(idx: Index<T>, obj: T, key: string): void {
    for (const v of idx.fn(obj)) {
      const s = idx.values.get(v);
      if (!s) continue;
      s.delete(key);
      if (s.size === 0) idx.values.delete(v);
    }
  }
}

/**
 * One relist, fed page by page: `page(items)` upserts and returns add/update events,
 * `finish()` removes every cached object the list did not contain and returns delete events
 * (`finalStateUnknown: true`). Applying pages as they arrive means old and new copies of the
 * whole collection never coexist in memory. If the list fails half-way, drop the Relist
 * without calling `finish()`: the cache holds a mix of valid versions and nothing is deleted.
 */
export class Relist<T extends KubernetesObject> {
  readonly #store: Store<T>;
  readonly #seen = new Set<string>();

  constructor(store: Store<T>) {
    this.#store = store;
  }

  page(items: Iterable<T>): CacheEvent<T>[] {
    const events: CacheEvent<T>[] = [];
    for (const obj of items) {
      this.#seen.add(objectKey(obj));
      const ev = this.#store.upsert(obj);
      if (ev) events.push(ev);
    }
    return events;
  }

  finish(): CacheEvent<T>[] {
    const events: CacheEvent<T>[] = [];
    const gone: string[] = [];
    for (const k of this.#store.keys()) if (!this.#seen.has(k)) gone.push(k);
    for (const k of gone) {
      const { namespace, name } = splitKey(k);
      const old = this.#store.remove(namespace, name);
      if (old) events.push({ type: "delete", obj: old, finalStateUnknown: true });
    }
    return events;
  }
}

/** Reconcile `store` with a complete list in one go (pure apart from mutating `store`). */
export function reconcileList<T extends KubernetesObject>(store: Store<T>, items: Iterable<T>): CacheEvent<T>[] {
  const r = new Relist(store);
  return [...r.page(items), ...r.finish()];
}

/** Recursively `Object.freeze` a plain JSON object graph. Returns it. */
export function deepFreeze<T>(obj: T): T {
  if (obj === null || typeof obj !== "object" || Object.isFrozen(obj)) return obj;
  Object.freeze(obj);
  for (const v of Object.values(obj as object)) deepFreeze(v);
  return obj;
}
