/**
 * Exponential backoff, an injectable clock and an abortable sleep, shared by the
 * work queue, the informer and the leader elector.
 */

/** Handle returned by {@link Clock.setTimeout}. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Time seam. The real clock uses `Date.now()` and unref'd Node timers (a pending
 * backoff or delayed add never keeps the process alive); tests inject {@link FakeClock}.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * Deterministic clock for tests: time only moves with {@link advance}, which fires
 * due timers in time order (timers scheduled by fired timers run too when due).
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return { cancel: () => this.#timers.delete(id) };
  }

  /** Number of timers not yet fired or cancelled. */
  pending(): number {
    return this.#timers.size;
  }

  /** Move time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, t] of this.#timers) {
        if (t.at <= target && (t.at < nextAt || (t.at === nextAt && id < nextId))) {
          nextId = id;
          nextAt = t.at;
        }
      }
      if (nextId < 0) break;
      const t = this.#timers.get(nextId)!;
      this.#timers.delete(nextId);
      this.#now = Math.max(this.#now, t.at);
      t.fn();
    }
    this.#now = target;
  }
}

export interface BackoffOptions {
  /** First delay. */
  baseMs: number;
  /** Upper bound on any delay. */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /**
   * Jitter fraction in [0, 1]: the delay is drawn uniformly from
   * [d * (1 - jitter), d] so that it never exceeds the cap (default 0).
   */
  jitter?: number;
}

/**
 * Delay before retry number `attempt` (0-based): min(base * factor^attempt, max),
 * then jittered downwards. Pure apart from `random`.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0));
  // Compute in log space so that large attempt counts cannot overflow to Infinity/NaN.
  const exp = Math.max(0, attempt);
  const raw = opts.baseMs * Math.pow(factor, Math.min(exp, 1024));
  const capped = Number.isFinite(raw) ? Math.min(raw, opts.maxMs) : opts.maxMs;
  if (jitter === 0) return capped;
  return capped * (1 - jitter * random());
}

/** Stateful backoff: `next()` returns the next delay and grows; `reset()` after success. */
export class ExponentialBackoff {
  #attempt = 0;
  readonly #opts: BackoffOptions;
  readonly #random: () => number;

  constructor(opts: BackoffOptions, random: () => number = Math.random) {
    this.#opts = opts;
    this.#random = random;
  }

  get attempts(): number {
    return this.#attempt;
  }

  next(): number {
    return backoffDelay(this.#attempt++, this.#opts, this.#random);
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms` on `clock`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = realClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
