/**
 * A keyed work queue with the semantics of client-go's workqueue:
 *
 * - `add(key)` deduplicates: a key is queued at most once however often it is added.
 * - A key is never processed by two handlers at once. A key re-added while it is being
 *   processed is marked dirty and queued again when the current run finishes.
 * - `addAfter(key, ms)` delays an add; per key only the earliest pending time is kept.
 * - `addRateLimited(key)` adds after a per-key exponential backoff; `forget(key)` resets it.
 * - `start(handler, {concurrency})` runs up to `concurrency` handlers in parallel. A handler
 *   that throws is retried with `addRateLimited`; one that resolves is `forget`-ed and, when it
 *   returns `{ requeueAfterMs }`, re-added after that delay.
 * - `shutdown({ drainTimeoutMs })` stops handing out work (queued and delayed keys are
 *   dropped, later adds are ignored) and waits, bounded, for in-flight handlers.
 *
 * Periodic resync is the caller's job: call `resync(keys)` yourself, or `resyncEvery(ms, keysFn)`
 * which re-adds every key returned by `keysFn` each period (timer unref'd, stopped by shutdown).
 * Because adds deduplicate, a resync never stacks work for keys already queued.
 */
import type { Logger } from "pino";
import { backoffDelay, realClock, type BackoffOptions, type Clock, type TimerHandle } from "./backoff.ts";

/**
 * Metric hooks, named after what controller-runtime exports (label `name` = queue name):
 * adds -> workqueue_adds_total, depth -> workqueue_depth,
 * queueLatency -> workqueue_queue_duration_seconds, workDuration -> workqueue_work_duration_seconds,
 * retries -> workqueue_retries_total, unfinishedWork -> workqueue_unfinished_work_seconds
 * (+ workqueue_longest_running_processor_seconds).
 */
export interface QueueMetrics {
  adds(): void;
  depth(n: number): void;
  queueLatency(seconds: number): void;
  workDuration(seconds: number): void;
  retries(): void;
  /** Called when scraped via {@link WorkQueue.updateUnfinishedWork}. */
  unfinishedWork?(totalSeconds: number, longestSeconds: number): void;
}

export const noopQueueMetrics: QueueMetrics = {
  adds() {},
  depth() {},
  queueLatency() {},
  workDuration() {},
  retries() {},
};

export type HandlerResult = { requeueAfterMs?: number } | void;
export type Handler = (key: string) => Promise<HandlerResult>;

export interface WorkQueueOptions {
  /** Queue name, used in logs (and by whoever builds the metrics). */
  name?: string;
  /** Per-key retry backoff. Default 5 ms doubling to 5 minutes, no jitter. */
  rateLimit?: BackoffOptions;
  metrics?: QueueMetrics;
  logger?: Logger;
  clock?: Clock;
}

export interface StartOptions {
  /** Maximum handlers running at once (default 1). */
  concurrency?: number;
}

export interface ShutdownOptions {
  /** Wait at most this long for in-flight handlers (default 30 s). */
  drainTimeoutMs?: number;
}

export const DEFAULT_RATE_LIMIT: BackoffOptions = { baseMs: 5, maxMs: 5 * 60_000, factor: 2 };

/** Binary min-heap on `at`, used for delayed adds (lazy deletion of superseded entries). */
class DelayHeap {
  readonly items: { key: string; at: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): { key: string; at: number } | undefined {
    return this.items[0];
  }

  push(item: { key: string; at: number }): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): { key: string; at: number } | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}

export class WorkQueue {
  readonly name: string;
  readonly #rateLimit: BackoffOptions;
  readonly #metrics: QueueMetrics;
  readonly #logger: Logger | undefined;
  readonly #clock: Clock;

  /** Keys ready to be handed out, in FIFO order (Set keeps insertion order). */
  readonly #queue = new Set<string>();
  /** Keys that need processing: queued, or re-added while processing. */
  readonly #dirty = new Set<string>();
  /** Keys being processed -> start time. */
  readonly #processing = new Map<string, number>();
  /** Time each queued key was first added (for queue latency). */
  readonly #addedAt = new Map<string, number>();
  /** Earliest pending delayed-add time per key. */
  readonly #waiting = new Map<string, number>();
  readonly #heap = new DelayHeap();
  #heapTimer: TimerHandle | undefined;
  #heapTimerAt = Infinity;
  /** Per-key failure count for addRateLimited. */
  readonly #failures = new Map<string, number>();

  #handler: Handler | undefined;
  #concurrency = 1;
  #shuttingDown = false;
  #paused = false;
  readonly #idleWaiters: (() => void)[] = [];
  readonly #resyncTimers = new Set<TimerHandle>();

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? "default";
    this.#rateLimit = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
    this.#metrics = opts.metrics ?? noopQueueMetrics;
    this.#logger = opts.logger;
    this.#clock = opts.clock ?? realClock;
  }

  /** Keys waiting to be processed (not counting in-flight or delayed ones). */
  len(): number {
    return this.#queue.size;
  }

  /** Keys currently being processed. */
  inFlight(): number {
    return this.#processing.size;
  }

  /** Keys with a pending delayed add. */
  delayed(): number {
    return this.#waiting.size;
  }

  /**
   * Hand out no new keys until `resume()`; keys in flight finish, adds still queue and deduplicate. For shedding
   * load (leader election pauses reconciles while its Lease renewal is late), not for shutdown.
   */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  isPaused(): boolean {
    return this.#paused;
  }

  isShuttingDown(): boolean {
    return this.#shuttingDown;
  }

  add(key: string): void {
    if (this.#shuttingDown) return;
    if (this.#dirty.has(key)) return;
    this.#metrics.adds();
    this.#dirty.add(key);
    this.#addedAt.set(key, this.#clock.now());
    if (this.#processing.has(key)) return; // re-queued by done()
    this.#queue.add(key);
    this.#metrics.depth(this.#queue.size);
    this.#pump();
  }

  /** Add `key` after `ms`. Keeps only the earliest pending time per key. `ms <= 0` adds now. */
  addAfter(key: string, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.#clock.now() + ms;
    const existing = this.#waiting.get(key);
    if (existing !== undefined && existing <= at) return;
    this.#waiting.set(key, at);
    this.#heap.push({ key, at });
    this.#armHeapTimer();
  }

  /** Add `key` after its per-key backoff (which then grows). */
  addRateLimited(key: string): void {
    if (this.#shuttingDown) return;
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    this.#metrics.retries();
    this.addAfter(key, backoffDelay(n, this.#rateLimit));
  }

  /** Reset the backoff of `key` (does not cancel a pending delayed add). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Add every key (deduplicated against what is already queued). */
  resync(keys: Iterable<string>): void {
    for (const k of keys) this.add(k);
  }

  /** Call `resync(keysFn())` every `intervalMs` until shutdown. Returns a stop function. */
  resyncEvery(intervalMs: number, keysFn: () => Iterable<string>): () => void {
    let handle: TimerHandle | undefined;
    const tick = () => {
      if (handle) this.#resyncTimers.delete(handle);
      if (this.#shuttingDown) return;
      try {
        this.resync(keysFn());
      } catch (err) {
        this.#logger?.error({ err, queue: this.name }, "resync keys function failed");
      }
      handle = this.#clock.setTimeout(tick, intervalMs);
      this.#resyncTimers.add(handle);
    };
    handle = this.#clock.setTimeout(tick, intervalMs);
    this.#resyncTimers.add(handle);
    return () => {
      if (handle) {
        handle.cancel();
        this.#resyncTimers.delete(handle);
        handle = undefined;
      }
    };
  }

  /** Begin processing with `handler`. Call once. */
  start(handler: Handler, opts: StartOptions = {}): void {
    if (this.#handler) throw new Error(`workqueue ${this.name}: already started`);
    this.#handler = handler;
    this.#concurrency = Math.max(1, Math.floor(opts.concurrency ?? 1));
    this.#pump();
  }

  /**
   * Stop taking new work and wait for in-flight handlers, at most `drainTimeoutMs`.
   * Resolves `true` when everything in flight finished, `false` on timeout.
   */
  async shutdown(opts: ShutdownOptions = {}): Promise<boolean> {
    this.#shuttingDown = true;
    this.#heapTimer?.cancel();
    this.#heapTimer = undefined;
    this.#heap.clear();
    this.#waiting.clear();
    for (const t of this.#resyncTimers) t.cancel();
    this.#resyncTimers.clear();
    this.#queue.clear();
    this.#addedAt.clear();
    this.#metrics.depth(0);
    if (this.#processing.size === 0) return true;
    const drainTimeoutMs = opts.drainTimeoutMs ?? 30_000;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const timer = realClock.setTimeout(() => {
        if (settled) return;
        settled = true;
        this.#logger?.warn({ queue: this.name, inFlight: [...this.#processing.keys()] }, "workqueue drain timed out");
        resolve(false);
      }, drainTimeoutMs);
      this.#idleWaiters.push(() => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(true);
      });
    });
  }

  /**
   * Report in-flight work to `metrics.unfinishedWork` (call it from a metrics scrape):
   * total seconds all running handlers have been running, and the longest.
   */
  updateUnfinishedWork(): void {
    if (!this.#metrics.unfinishedWork) return;
    const now = this.#clock.now();
    let total = 0;
    let longest = 0;
    for (const started of this.#processing.values()) {
      const s = (now - started) / 1000;
      total += s;
      if (s > longest) longest = s;
    }
    this.#metrics.unfinishedWork(total, longest);
  }

  #armHeapTimer(): void {
    const top = this.#heap.peek();
    if (!top) return;
    if (this.#heapTimer && this.#heapTimerAt <= top.at) return;
    this.#heapTimer?.cancel();
    this.#heapTimerAt = top.at;
    this.#heapTimer = this.#clock.setTimeout(() => {
      this.#heapTimer = undefined;
      this.#heapTimerAt = Infinity;
      this.#fireDue();
    }, top.at - this.#clock.now());
  }

  #fireDue(): void {
    const now = this.#clock.now();
    for (;;) {
      const top = this.#heap.peek();
      if (!top || top.at > now) break;
      this.#heap.pop();
      // Skip entries superseded by an earlier addAfter for the same key.
      if (this.#waiting.get(top.key) !== top.at) continue;
      this.#waiting.delete(top.key);
      this.add(top.key);
    }
    this.#armHeapTimer();
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler) return;
    while (!this.#shuttingDown && !this.#paused && this.#processing.size < this.#concurrency && this.#queue.size > 0) {
      const key = this.#queue.values().next().value as string;
      this.#queue.delete(key);
      this.#dirty.delete(key);
      const now = this.#clock.now();
      const addedAt = this.#addedAt.get(key);
      this.#addedAt.delete(key);
      if (addedAt !== undefined) this.#metrics.queueLatency((now - addedAt) / 1000);
      this.#metrics.depth(this.#queue.size);
      this.#processing.set(key, now);
      void this.#run(handler, key);
    }
  }

  async #run(handler: Handler, key: string): Promise<void> {
    let result: HandlerResult = undefined;
    let failed = false;
    try {
      // Never run handler code synchronously inside add(): callers (informer event
      // handlers) may be in the middle of updating their cache.
      await Promise.resolve();
      result = await handler(key);
    } catch (err) {
      failed = true;
      this.#logger?.error({ err, key, queue: this.name, retries: this.numRequeues(key) }, "reconcile failed; requeueing with backoff");
    }
    const started = this.#processing.get(key) ?? this.#clock.now();
    this.#metrics.workDuration((this.#clock.now() - started) / 1000);
    this.#processing.delete(key);
    if (failed) {
      this.addRateLimited(key);
    } else {
      this.forget(key);
      const after = result?.requeueAfterMs;
      if (after !== undefined) this.addAfter(key, after);
    }
    // done(): a key re-added while processing goes back on the queue now.
    if (this.#dirty.has(key) && !this.#shuttingDown) {
      this.#queue.add(key);
      this.#metrics.depth(this.#queue.size);
    }
    if (this.#shuttingDown && this.#processing.size === 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
    this.#pump();
  }
}
