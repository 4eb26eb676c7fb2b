/**
 * ResilientInformer: list + watch of one collection into an in-memory {@link Store}, built
 * directly on the lean REST client's watch (src/kube/client.ts), not on client-node's
 * `ListWatch`/`makeInformer`, which stop for good on any error other than 410 and do not
 * re-emit adds after a relist (kubernetes-client/javascript#795).
 *
 * Behaviour
 * - `start()` lists (paginated, raw JSON), fills the cache, emits `add` for each object, then
 *   watches from the list's resourceVersion with `allowWatchBookmarks=true`. It resolves once
 *   the first list is in the cache (`hasSynced()`), or when `stop()` is called first.
 * - A watch that ends cleanly (server-side timeout, the client's 30 s inactivity timeout) is
 *   resumed from the last resourceVersion seen (bookmarks advance it).
 * - 410 Gone (HTTP status or watch ERROR event) -> immediate relist.
 * - ANY other error (list failure, connection refused, non-200, ERROR event, stream error)
 *   -> wait with jittered exponential backoff (default 1 s doubling, capped at 30 s), then
 *   relist. The informer never stops by itself.
 * - A relist reconciles the cache: `add` for new objects, `update` for changed
 *   resourceVersions, `delete` (with `finalStateUnknown: true`) for objects that vanished.
 *
 * Cached objects are shared, read-only JSON (raw API JSON, never client-node model classes,
 * so timestamps are strings). Never mutate them: deep-copy (`structuredClone`) before
 * editing. They are deep-frozen unless `freeze: false` or NODE_ENV=production.
 * `metadata.managedFields` is dropped by default to save memory (`keepManagedFields` to keep it);
 * `transform` can drop more (see README.md here for measured cache sizes).
 */
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import type { ApiClient, WatchOptions } from "./api-client.ts";
import type { Logger } from "pino";
import { ExponentialBackoff, sleep, type BackoffOptions } from "./backoff.ts";
import { statusCode } from "./errors.ts";
import { deepFreeze, objectKey, Relist, Store, type CacheEvent, type IndexFunc } from "./store.ts";

export { objectKey, splitKey, type IndexFunc, type CacheEvent } from "./store.ts";

export interface ListPage {
  limit?: number;
  continue?: string;
  signal?: AbortSignal;
}

/**
 * Lists one page. A client-node `ListPromise` (`() => Promise<list>`) fits too; one that
 * ignores `page` just returns everything in one page. Prefer the default (raw JSON): the
 * generated typed APIs turn objects into model classes (Dates, dropped unknown fields) while
 * watch events are raw JSON, so the cache would hold two shapes.
 */
export type ListFn<T extends KubernetesObject> = (page: ListPage) => Promise<KubernetesListObject<T>>;

/** The part of {@link ApiClient} used to watch (a seam for tests). */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    done: (err: any) => void,
    opts?: WatchOptions,
  ): Promise<AbortController>;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** The API server connection (may be omitted when both `listFn` and `watch` are given, as in unit tests). */
  client?: ApiClient;
  /** Collection path, e.g. `/apis/batch/v1/jobs` or `/api/v1/namespaces/NS/configmaps`. */
  path: string;
  /** Defaults to a raw paginated GET of `path` (with the selectors). */
  listFn?: ListFn<T>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Name for logs (defaults to `path`). */
  name?: string;
  logger?: Logger;
  /** List page size (default 500). */
  pageSize?: number;
  /** Restart backoff (default 1 s doubling to 30 s, jitter 0.5). */
  backoff?: BackoffOptions;
  /**
   * Applied to every object (from lists and watch events) before it is cached and handed to
   * handlers; may mutate and return its argument. Use it to drop fields the controller never
   * reads, e.g. `omitPaths('data', 'binaryData')` for ConfigMaps or
   * `omitPaths('spec.template.spec')` for Jobs (see README.md in this directory for measured
   * cache sizes). Runs after `metadata.managedFields` is dropped.
   */
  transform?: (obj: T) => T;
  /** Keep `metadata.managedFields` (dropped by default: often a third of an object). */
  keepManagedFields?: boolean;
  /** Deep-freeze cached objects (default: unless NODE_ENV=production). */
  freeze?: boolean;
  /** Watch seam (default: `client.watch`). */
  watch?: WatchLike;
}

export type AddHandler<T> = (obj: T) => void;
export type UpdateHandler<T> = (obj: T, old: T) => void;
export type DeleteHandler<T> = (obj: T, info: { finalStateUnknown: boolean }) => void;
export type ErrorHandler = (err: unknown) => void;

export const DEFAULT_INFORMER_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };

export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/**
 * A transform deleting dotted paths (`'data'`, `'spec.template.spec'`) from an object in
 * place. Missing intermediate fields are ignored.
 */
export function omitPaths<T extends object>(...paths: string[]): (obj: T) => T {
  const split = paths.map((p) => p.split("."));
  return (obj) => {
    for (const parts of split) {
      let cur: unknown = obj;
      for (let i = 0; i < parts.length - 1 && cur && typeof cur === "object"; i++) cur = (cur as Record<string, unknown>)[parts[i]!];
      if (cur && typeof cur === "object") delete (cur as Record<string, unknown>)[parts[parts.length - 1]!];
    }
    return obj;
  };
}

/** Apply transforms left to right. */
export function composeTransforms<T>(...fns: ((obj: T) => T)[]): (obj: T) => T {
  return (obj) => fns.reduce((o, f) => f(o), obj);
}

function isTimeout(err: unknown): boolean {
  return !!err && typeof err === "object" && (err as { name?: unknown }).name === "TimeoutError";
}

/** A {@link ListFn} doing raw paginated GETs of `path`. */
export function rawListFn<T extends KubernetesObject>(
  client: ApiClient,
  path: string,
  selectors: { labelSelector?: string; fieldSelector?: string } = {},
): ListFn<T> {
  return (page) =>
    client.get<KubernetesListObject<T>>(path, {
      query: { limit: page.limit, continue: page.continue, labelSelector: selectors.labelSelector, fieldSelector: selectors.fieldSelector },
      ...(page.signal ? { signal: page.signal } : {}),
    });
}

class ForcedRestart extends Error {
  override name = "ForcedRestart";
}

export class ResilientInformer<T extends KubernetesObject> {
  readonly name: string;
  readonly #path: string;
  readonly #listFn: ListFn<T>;
  readonly #watch: WatchLike;
  readonly #labelSelector: string | undefined;
  readonly #fieldSelector: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #pageSize: number;
  readonly #backoff: ExponentialBackoff;
  readonly #transform: (obj: T) => T;
  readonly #freeze: boolean;
  readonly #dropManagedFields: boolean;
  readonly #store = new Store<T>();

  readonly #onAdd: AddHandler<T>[] = [];
  readonly #onUpdate: UpdateHandler<T>[] = [];
  readonly #onDelete: DeleteHandler<T>[] = [];
  readonly #onError: ErrorHandler[] = [];

  #resourceVersion = "";
  #synced = false;
  #running = false;
  #stop: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #syncWaiters: (() => void)[] = [];
  /** Aborts the current watch (set while one is open). */
  #abortWatch: ((reason: Error) => void) | undefined;
  #restarts = 0;
  #pendingRestart: ForcedRestart | undefined;

  constructor(opts: InformerOptions<T>) {
    this.#path = opts.path;
    this.name = opts.name ?? opts.path;
    this.#labelSelector = opts.labelSelector;
    this.#fieldSelector = opts.fieldSelector;
    const client = opts.client;
    if (!client && !(opts.listFn && opts.watch)) throw new Error(`informer ${this.name}: a client, or both listFn and watch, are needed`);
    this.#listFn = opts.listFn ?? rawListFn<T>(client!, opts.path, { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector });
    this.#watch = opts.watch ?? client!;
    this.#logger = opts.logger?.child({ informer: this.name });
    this.#pageSize = opts.pageSize ?? 500;
    this.#backoff = new ExponentialBackoff(opts.backoff ?? DEFAULT_INFORMER_BACKOFF);
    const user = opts.transform;
    const strip = !opts.keepManagedFields;
    this.#dropManagedFields = strip;
    this.#transform = strip && user ? (o) => user(stripManagedFields(o)) : strip ? stripManagedFields : (user ?? ((o) => o));
    this.#freeze = opts.freeze ?? process.env.NODE_ENV !== "production";
  }

  on(event: "add", fn: AddHandler<T>): void;
  on(event: "update", fn: UpdateHandler<T>): void;
  on(event: "delete", fn: DeleteHandler<T>): void;
  /** Errors are reported here (and logged); the informer restarts by itself regardless. */
  on(event: "error", fn: ErrorHandler): void;
  on(event: "add" | "update" | "delete" | "error", fn: (...args: any[]) => void): void {
    switch (event) {
      case "add":
        this.#onAdd.push(fn);
        break;
      case "update":
        this.#onUpdate.push(fn);
        break;
      case "delete":
        this.#onDelete.push(fn);
        break;
      case "error":
        this.#onError.push(fn);
        break;
    }
  }

  /** Register a secondary index, e.g. owner UIDs: `addIndex('owner', o => o.metadata?.ownerReferences?.map(r => r.uid) ?? [])`. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    this.#store.addIndex(name, fn);
  }

  /**
   * Start list+watch in the background. Resolves once the first list is cached (or at
   * once if already synced, or when `stop()` is called before that).
   */
  start(): Promise<void> {
    if (!this.#running) {
      this.#running = true;
      this.#stop = new AbortController();
      this.#loop = this.#run(this.#stop.signal);
    }
    return this.waitForSync();
  }

  /** Resolves when synced or stopped. */
  waitForSync(): Promise<void> {
    if (this.#synced || !this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /** Stop watching. The cache keeps its contents. Resolves when the loop has exited. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#pendingRestart = undefined;
    this.#stop?.abort();
    this.#abortWatch?.(new ForcedRestart("informer stopped"));
    this.#releaseSyncWaiters();
    await this.#loop;
  }

  /** True once the first list has been cached (stays true across restarts). */
  hasSynced(): boolean {
    return this.#synced;
  }

  /** Number of restarts after errors so far (for tests and metrics). */
  get restarts(): number {
    return this.#restarts;
  }

  /** Last resourceVersion seen (list, event or bookmark). */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /**
   * Drop the current watch as if it had failed: the informer backs off, relists and
   * reconciles. For tests, and for callers that suspect the cache is stale.
   */
  forceRestart(reason = "forced restart"): void {
    const err = new ForcedRestart(reason);
    if (this.#abortWatch) this.#abortWatch(err);
    else if (this.#running) this.#pendingRestart = err; // consumed by the next watch attempt
  }

  // ---- cache reads (objects are read-only) ----

  get(namespace: string | undefined, name: string): T | undefined {
    return this.#store.get(namespace, name);
  }

  getByKey(key: string): T | undefined {
    return this.#store.getByKey(key);
  }

  list(namespace?: string): T[] {
    return this.#store.list(namespace);
  }

  keys(): IterableIterator<string> {
    return this.#store.keys();
  }

  get size(): number {
    return this.#store.size;
  }

  byIndex(indexName: string, value: string): T[] {
    return this.#store.byIndex(indexName, value);
  }

  // ---- internals ----

  #releaseSyncWaiters(): void {
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  #prepare(obj: T, listKind?: string, listApiVersion?: string): T {
    let o = this.#transform(obj);
    // List items of built-in types carry no kind/apiVersion; watch events do. Make them agree.
    if (listKind && !o.kind) o.kind = listKind;
    if (listApiVersion && !o.apiVersion) o.apiVersion = listApiVersion;
    if (this.#freeze) o = deepFreeze(o);
    return o;
  }

  #emit(events: CacheEvent<T>[]): void {
    for (const ev of events) this.#emitOne(ev);
  }

  #emitOne(ev: CacheEvent<T>): void {
    try {
      switch (ev.type) {
        case "add":
          for (const fn of this.#onAdd) fn(ev.obj);
          break;
        case "update":
          for (const fn of this.#onUpdate) fn(ev.obj, ev.old);
          break;
        case "delete":
          for (const fn of this.#onDelete) fn(ev.obj, { finalStateUnknown: ev.finalStateUnknown });
          break;
      }
    } catch (err) {
      this.#logger?.error({ err, event: ev.type, key: objectKey(ev.obj) }, "informer event handler threw");
    }
  }

  #reportError(err: unknown): void {
    for (const fn of this.#onError) {
      try {
        fn(err);
      } catch {
        // an error observer must not break the informer
      }
    }
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (!this.#resourceVersion) await this.#relist(signal);
        if (signal.aborted) break;
        const outcome = await this.#watchOnce(signal);
        if (outcome === "quick-close") await sleep(this.#backoff.next(), signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#resourceVersion = "";
        if (statusCode(err) === 410) {
          this.#logger?.info("resourceVersion too old (410 Gone); relisting");
          continue;
        }
        this.#restarts++;
        const delay = this.#backoff.next();
        this.#logger?.warn({ err, delayMs: Math.round(delay), restarts: this.#restarts }, "list/watch failed; restarting after backoff");
        this.#reportError(err);
        await sleep(delay, signal);
      }
    }
  }

  async #relist(signal: AbortSignal): Promise<void> {
    const relist = new Relist(this.#store);
    let cont: string | undefined;
    let rv = "";
    let pages = 0;
    do {
      const list = await this.#listFn({ limit: this.#pageSize, continue: cont, signal });
      if (signal.aborted) return;
      pages++;
      const kind = list.kind?.endsWith("List") ? list.kind.slice(0, -4) : undefined;
      const items = (list.items ?? []).map((o) => this.#prepare(o, kind, list.apiVersion));
      this.#emit(relist.page(items));
      cont = list.metadata?._continue || (list.metadata as { continue?: string } | undefined)?.continue || undefined;
      rv = list.metadata?.resourceVersion ?? "";
    } while (cont);
    this.#emit(relist.finish());
    this.#resourceVersion = rv;
    this.#logger?.debug({ objects: this.#store.size, pages, resourceVersion: rv }, "listed");
    if (!this.#synced) {
      this.#synced = true;
      this.#releaseSyncWaiters();
    }
  }

  /**
   * One watch request. Resolves 'closed' on a clean end (resume from resourceVersion),
   * 'quick-close' on a clean end with no events within a second (resume after backoff),
   * throws on errors (caller relists).
   */
  #watchOnce(signal: AbortSignal): Promise<"closed" | "quick-close"> {
    if (this.#pendingRestart) {
      const err = this.#pendingRestart;
      this.#pendingRestart = undefined;
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      let events = 0;
      let controller: AbortController | undefined;
      let failure: unknown;
      const startedAt = Date.now();
      const finish = (err: unknown) => {
        if (settled) return;
        settled = true;
        this.#abortWatch = undefined;
        signal.removeEventListener("abort", onStop);
        controller?.abort();
        const e = failure ?? err;
        if (signal.aborted) return resolve("closed");
        if (e && !isTimeout(e)) return reject(e);
        if (events === 0 && Date.now() - startedAt < 1000) return resolve("quick-close");
        if (events > 0 || isTimeout(e)) this.#backoff.reset();
        resolve("closed");
      };
      const onStop = () => finish(null);
      signal.addEventListener("abort", onStop, { once: true });
      this.#abortWatch = (reason) => {
        failure = reason;
        finish(reason);
      };

      const onEvent = (phase: string, obj: any) => {
        if (settled) return;
        events++;
        switch (phase) {
          case "ADDED":
          case "MODIFIED": {
            const ev = this.#store.upsert(this.#prepare(obj as T));
            if (ev) this.#emitOne(ev);
            break;
          }
          case "DELETED": {
            const old = this.#store.remove(obj?.metadata?.namespace, obj?.metadata?.name ?? "");
            if (old) this.#emitOne({ type: "delete", obj: this.#prepare(obj as T), finalStateUnknown: false });
            break;
          }
          case "BOOKMARK":
            break;
          case "ERROR": {
            const code = typeof obj?.code === "number" ? obj.code : undefined;
            const err = Object.assign(new Error(`watch ERROR event: ${obj?.message ?? JSON.stringify(obj)}`), { statusCode: code });
            failure = err;
            finish(err);
            return;
          }
          default:
            return;
        }
        const rv = obj?.metadata?.resourceVersion;
        if (rv) this.#resourceVersion = rv;
      };

      const params: Record<string, string | number | boolean | undefined> = {
        resourceVersion: this.#resourceVersion,
        allowWatchBookmarks: true,
        // Server-side timeout, randomised like client-go (5-10 min) to spread reconnects.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        labelSelector: this.#labelSelector,
        fieldSelector: this.#fieldSelector,
      };
      // The informer drops managedFields anyway; the client may then skip parsing it (most of a pod or Job event).
      this.#watch.watch(this.#path, params, onEvent, finish, { dropManagedFields: this.#dropManagedFields }).then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        (err) => finish(err ?? new Error("watch failed")),
      );
    });
  }
}
