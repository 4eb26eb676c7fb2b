/**
 * Lease-based leader election (coordination.k8s.io/v1), following client-go's
 * tools/leaderelection:
 *
 * - Acquire when the Lease is absent, released (empty holderIdentity), held by us, or expired.
 *   Expiry is judged on the LOCAL clock: a candidate remembers when it last saw the Lease
 *   record change (its resourceVersion) and treats it as expired only when it has not changed
 *   for the holder's leaseDurationSeconds. Remote renewTime values are never compared with
 *   the local clock, so clock skew between replicas does not matter.
 * - Every write is an update with the resourceVersion just read (optimistic concurrency):
 *   409 Conflict means someone else won the race; we retry next period. Creates race on
 *   AlreadyExists (409) the same way. Two leaders are therefore impossible while the lease
 *   holder stops acting within leaseDuration of its last successful renew.
 * - The leader renews every retryPeriod. If it cannot renew for renewDeadline (measured from the
 *   START of its last successful renew request, which is earlier than anyone else could have
 *   observed that write), or it sees another holder, it stops leading: the signal passed to
 *   onStartedLeading aborts and onStoppedLeading('lost') runs. The elector does not try to
 *   re-acquire afterwards; the process should stop reconciling and exit (a restart rejoins).
 * - `stop()` (graceful shutdown) releases the lease by default: holderIdentity '' and
 *   leaseDurationSeconds 1, so a successor takes over at its next retry instead of waiting out
 *   the lease.
 *
 * Requires leaseDuration > renewDeadline > retryPeriod * 1.2 (the retry jitter).
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import type { V1Lease } from "@kubernetes/client-node";
import type { ApiClient } from "./api-client.ts";
import { realClock, sleep, type Clock } from "./backoff.ts";
import { statusCode } from "./errors.ts";

/** The Lease spec fields the election uses; times are epoch milliseconds. */
export interface LeaderElectionRecord {
  /** '' when nobody holds the lease (released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: number | undefined;
  renewTime: number | undefined;
  leaseTransitions: number;
}

export interface VersionedRecord {
  record: LeaderElectionRecord;
  resourceVersion: string;
}

/**
 * Storage of the election record. Implementations throw an error with `code` (or
 * `statusCode`) 409 when a create finds the object existing or an update's
 * resourceVersion is stale.
 */
export interface LeaseLock {
  /** null when the Lease does not exist. */
  get(signal?: AbortSignal): Promise<VersionedRecord | null>;
  /** Returns the new resourceVersion. */
  create(record: LeaderElectionRecord, signal?: AbortSignal): Promise<string>;
  /** Returns the new resourceVersion. */
  update(record: LeaderElectionRecord, resourceVersion: string, signal?: AbortSignal): Promise<string>;
  describe(): string;
}

function toMillis(t: unknown): number | undefined {
  if (t instanceof Date) return t.getTime();
  if (typeof t === "string" && t) {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}

/** Pure: Lease -> record. */
export function leaseToRecord(lease: V1Lease): LeaderElectionRecord {
  const s = lease.spec ?? {};
  return {
    holderIdentity: s.holderIdentity ?? "",
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: toMillis(s.acquireTime),
    renewTime: toMillis(s.renewTime),
    leaseTransitions: s.leaseTransitions ?? 0,
  };
}

/**
 * A MicroTime as the API server requires it: RFC 3339 with exactly six fractional digits
 * (`2025-01-02T03:04:05.678000Z`); a plain `toISOString()` has three and is refused.
 */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, "000Z");
}

/** Pure: record -> Lease spec (raw JSON, times as MicroTime strings). */
export function recordToLeaseSpec(r: LeaderElectionRecord): NonNullable<V1Lease["spec"]> {
  const spec = {
    holderIdentity: r.holderIdentity || undefined,
    leaseDurationSeconds: r.leaseDurationSeconds,
    acquireTime: r.acquireTime !== undefined ? microTime(r.acquireTime) : undefined,
    renewTime: r.renewTime !== undefined ? microTime(r.renewTime) : undefined,
    leaseTransitions: r.leaseTransitions,
  };
  // V1Lease types the times as Date subclasses; on the wire (what is sent here) they are strings.
  return spec as unknown as NonNullable<V1Lease["spec"]>;
}

/** {@link LeaseLock} on a coordination.k8s.io/v1 Lease through the REST client. */
export class LeaseApiLock implements LeaseLock {
  readonly #client: ApiClient;
  readonly #namespace: string;
  readonly #name: string;

  constructor(client: ApiClient, namespace: string, name: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#name = name;
  }

  describe(): string {
    return `lease ${this.#namespace}/${this.#name}`;
  }

  #collection(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#namespace)}/leases`;
  }

  #lease(record: LeaderElectionRecord, resourceVersion?: string): V1Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.#name, namespace: this.#namespace, ...(resourceVersion ? { resourceVersion } : {}) },
      spec: recordToLeaseSpec(record),
    };
  }

  async get(signal?: AbortSignal): Promise<VersionedRecord | null> {
    try {
      const lease = await this.#client.get<V1Lease>(`${this.#collection()}/${encodeURIComponent(this.#name)}`, signal ? { signal } : {});
      return { record: leaseToRecord(lease), resourceVersion: lease.metadata?.resourceVersion ?? "" };
    } catch (err) {
      if (statusCode(err) === 404) return null;
      throw err;
    }
  }

  async create(record: LeaderElectionRecord, signal?: AbortSignal): Promise<string> {
    const lease = await this.#client.request<V1Lease>("POST", this.#collection(), { body: this.#lease(record), ...(signal ? { signal } : {}) });
    return lease.metadata?.resourceVersion ?? "";
  }

  async update(record: LeaderElectionRecord, resourceVersion: string, signal?: AbortSignal): Promise<string> {
    const lease = await this.#client.request<V1Lease>("PUT", `${this.#collection()}/${encodeURIComponent(this.#name)}`, {
      body: this.#lease(record, resourceVersion),
      ...(signal ? { signal } : {}),
    });
    return lease.metadata?.resourceVersion ?? "";
  }
}

export type StoppedReason = "lost" | "released" | "stopped";

/** The logging the election does (a pino Logger is one; the election thread brings a smaller one). */
export interface ElectionLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): ElectionLogger;
}

export interface RenewalReport {
  ok: boolean;
  /** Start of the attempt minus the time it was due (retryPeriod after the previous attempt ended). */
  latenessMs: number;
  durationMs: number;
  /** Time since the last successful renew, when this attempt ended. */
  sinceRenewMs: number;
}

export interface LeaderElectorOptions {
  /** Needed unless `lock` is given. */
  client?: ApiClient;
  namespace: string;
  name: string;
  /** Unique per replica; see {@link defaultIdentity}. */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  /**
   * Called once when we become leader. `signal` aborts when leadership ends (lost, released
   * or stopped): stop reconciling then.
   */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called once when leadership ends. 'lost': renewal failed or another holder appeared. */
  onStoppedLeading: (reason: StoppedReason) => void;
  /** Called when the observed holder changes (including to us). */
  onNewLeader?: (identity: string) => void;
  /**
   * After every renew attempt while leading: how late it started against its schedule (event-loop lag: a
   * saturated process runs its timers late), how long the request took, and whether it renewed.
   */
  onRenewal?: (r: RenewalReport) => void;
  /**
   * Called with true when renewal is in danger (more than half the renew deadline since the last successful
   * renew, or an attempt started more than a retry period late), and with false once it renews on time again.
   * Shed work while true (pause reconciles), so the Lease is not lost to our own load.
   */
  onPressure?: (underPressure: boolean) => void;
  logger?: ElectionLogger;
  /** Seams for tests. */
  clock?: Clock;
  lock?: LeaseLock;
  random?: () => number;
}

/** `hostname_<uuid>`: unique per process, recognisable in `kubectl get lease -o yaml`. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}

const JITTER_FACTOR = 1.2;

type Attempt = "ok" | "held" | "conflict";

class Timeout extends Error {
  override name = "TimeoutError";
}

export class LeaderElector {
  readonly identity: string;
  readonly #lock: LeaseLock;
  readonly #leaseMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryMs: number;
  readonly #opts: LeaderElectorOptions;
  readonly #logger: ElectionLogger | undefined;
  readonly #clock: Clock;
  readonly #random: () => number;

  #observedRV: string | undefined;
  #observed: LeaderElectionRecord | undefined;
  /** Local time at which the observed record last changed. */
  #observedTime = 0;
  #lastNotifiedLeader: string | undefined;

  #leading = false;
  #pressure = false;
  #leaderAbort: AbortController | undefined;
  #stop = new AbortController();
  #running: Promise<void> | undefined;
  #ended = false;

  constructor(opts: LeaderElectorOptions) {
    this.identity = opts.identity;
    this.#opts = opts;
    this.#leaseMs = (opts.leaseDurationSeconds ?? 15) * 1000;
    this.#renewDeadlineMs = (opts.renewDeadlineSeconds ?? 10) * 1000;
    this.#retryMs = (opts.retryPeriodSeconds ?? 2) * 1000;
    if (!opts.identity) throw new Error("leader election: identity is required");
    if (!Number.isInteger(this.#leaseMs / 1000) || this.#leaseMs < 1000) {
      throw new Error("leader election: leaseDurationSeconds must be a whole number >= 1 (it is written to the Lease)");
    }
    if (!(this.#retryMs > 0)) throw new Error("leader election: retryPeriod must be > 0");
    if (!(this.#leaseMs > this.#renewDeadlineMs)) throw new Error("leader election: leaseDuration must be greater than renewDeadline");
    if (!(this.#renewDeadlineMs > JITTER_FACTOR * this.#retryMs)) throw new Error("leader election: renewDeadline must be greater than retryPeriod*1.2");
    if (opts.lock) this.#lock = opts.lock;
    else if (opts.client) this.#lock = new LeaseApiLock(opts.client, opts.namespace, opts.name);
    else throw new Error("leader election: client or lock is required");
    this.#logger = opts.logger?.child({ lease: this.#lock.describe(), identity: opts.identity });
    this.#clock = opts.clock ?? realClock;
    this.#random = opts.random ?? Math.random;
  }

  /** True while we hold the lease (for /readyz and leader_election_master_status). */
  isLeader(): boolean {
    return this.#leading;
  }

  /** Holder identity last observed ('' when released, undefined before the first read). */
  getLeader(): string | undefined {
    return this.#observed?.holderIdentity;
  }

  /**
   * Start campaigning in the background. The returned promise resolves when the elector is
   * done: leadership lost, or `stop()` called. Calling start() again returns the same promise.
   */
  start(): Promise<void> {
    if (this.#ended) throw new Error("leader election: an elector cannot be restarted; create a new one");
    this.#running ??= this.#run();
    return this.#running;
  }

  /**
   * Stop campaigning/leading. With `release` (default true) a held lease is released so a
   * successor takes over at once. Calls onStoppedLeading('released' | 'stopped') if we led.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    const release = opts.release ?? true;
    this.#stop.abort();
    await this.#running?.catch(() => {});
    this.#ended = true;
    if (!this.#leading) return;
    let released = false;
    if (release) released = await this.release();
    this.#endLeading(released ? "released" : "stopped");
  }

  /**
   * Give the lease up: holderIdentity '' and leaseDurationSeconds 1, only if we still hold it.
   * Returns whether the lease was released. Normally called through `stop()`.
   */
  async release(): Promise<boolean> {
    try {
      const cur = await this.#withTimeout((signal) => this.#lock.get(signal), this.#renewDeadlineMs);
      if (!cur || cur.record.holderIdentity !== this.identity) return false;
      const now = this.#clock.now();
      await this.#withTimeout(
        (signal) =>
          this.#lock.update(
            { holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: cur.record.leaseTransitions },
            cur.resourceVersion,
            signal,
          ),
        this.#renewDeadlineMs,
      );
      this.#logger?.info("released leader lease");
      return true;
    } catch (err) {
      this.#logger?.warn({ err }, "failed to release leader lease");
      return false;
    }
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    // Acquire.
    let acquiredAt = 0;
    while (!stop.aborted) {
      const started = this.#clock.now();
      const res = await this.#attempt(this.#renewDeadlineMs);
      if (stop.aborted) return;
      if (res === "ok") {
        acquiredAt = started;
        break;
      }
      await sleep(this.#retryMs * (1 + (JITTER_FACTOR - 1) * this.#random()), stop, this.#clock);
    }
    if (stop.aborted) return;

    this.#leading = true;
    this.#leaderAbort = new AbortController();
    this.#logger?.info("became leader");
    try {
      void Promise.resolve(this.#opts.onStartedLeading(this.#leaderAbort.signal)).catch((err) => this.#logger?.error({ err }, "onStartedLeading failed"));
    } catch (err) {
      this.#logger?.error({ err }, "onStartedLeading failed");
    }

    // Renew.
    let lastRenew = acquiredAt;
    while (!stop.aborted) {
      const due = this.#clock.now() + this.#retryMs;
      await sleep(this.#retryMs, stop, this.#clock);
      if (stop.aborted) return;
      const started = this.#clock.now();
      const latenessMs = Math.max(0, started - due);
      // Shed before the request too: the renew should not have to compete with reconciles for the event loop.
      if (latenessMs > this.#retryMs || started - lastRenew > this.#renewDeadlineMs / 2) this.#setPressure(true);
      const remaining = this.#renewDeadlineMs - (started - lastRenew);
      let res: Attempt | "error" = "error";
      if (remaining > 0) res = await this.#attempt(remaining);
      if (stop.aborted) return;
      const ended = this.#clock.now();
      if (res === "ok") lastRenew = started;
      this.#report({ ok: res === "ok", latenessMs, durationMs: ended - started, sinceRenewMs: ended - lastRenew });
      if (res === "ok") {
        if (latenessMs <= this.#retryMs) this.#setPressure(false);
        continue;
      }
      if (ended - lastRenew > this.#renewDeadlineMs / 2) this.#setPressure(true);
      if (res === "held") {
        this.#logger?.warn({ holder: this.#observed?.holderIdentity }, "lease taken by another holder; stopping leading");
        break;
      }
      if (this.#clock.now() - lastRenew >= this.#renewDeadlineMs) {
        this.#logger?.error({ renewDeadlineMs: this.#renewDeadlineMs }, "failed to renew lease within the renew deadline; stopping leading");
        break;
      }
    }
    if (stop.aborted) return;
    this.#ended = true;
    this.#endLeading("lost");
  }

  #report(r: RenewalReport): void {
    try {
      this.#opts.onRenewal?.(r);
    } catch (err) {
      this.#logger?.error({ err }, "onRenewal failed");
    }
  }

  #setPressure(on: boolean): void {
    if (this.#pressure === on) return;
    this.#pressure = on;
    if (on) this.#logger?.warn("lease renewal is late; shedding work until it renews on time");
    else this.#logger?.info("lease renewal on time again");
    try {
      this.#opts.onPressure?.(on);
    } catch (err) {
      this.#logger?.error({ err }, "onPressure failed");
    }
  }

  /** True while renewal is in danger (see `onPressure`). */
  underPressure(): boolean {
    return this.#pressure;
  }

  // Pressure is never lifted when leadership ends: a paused queue stays paused until the process stops.
  #endLeading(reason: StoppedReason): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#leaderAbort?.abort();
    this.#logger?.info({ reason }, "stopped leading");
    try {
      this.#opts.onStoppedLeading(reason);
    } catch (err) {
      this.#logger?.error({ err }, "onStoppedLeading failed");
    }
  }

  /** One tryAcquireOrRenew bounded by `timeoutMs`; errors are logged and count as 'error'. */
  async #attempt(timeoutMs: number): Promise<Attempt | "error"> {
    try {
      return await this.#withTimeout((signal) => this.#tryAcquireOrRenew(signal), timeoutMs);
    } catch (err) {
      if (!this.#stop.signal.aborted) this.#logger?.warn({ err }, "error acquiring/renewing lease");
      return "error";
    }
  }

  /** Run `fn` with a signal that aborts on timeout or stop; reject on timeout even if `fn` ignores the signal. */
  #withTimeout<R>(fn: (signal: AbortSignal) => Promise<R>, timeoutMs: number): Promise<R> {
    const ac = new AbortController();
    const onStop = () => ac.abort(new Timeout("stopped"));
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    return new Promise<R>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        const e = new Timeout(`lease request timed out after ${Math.round(timeoutMs)} ms`);
        ac.abort(e);
        reject(e);
      }, timeoutMs);
      fn(ac.signal)
        .then(resolve, reject)
        .finally(() => {
          timer.cancel();
          this.#stop.signal.removeEventListener("abort", onStop);
        });
    });
  }

  #observe(v: VersionedRecord, now: number): void {
    if (v.resourceVersion !== this.#observedRV) {
      this.#observedRV = v.resourceVersion;
      this.#observed = v.record;
      this.#observedTime = now;
      const holder = v.record.holderIdentity;
      if (holder && holder !== this.#lastNotifiedLeader) {
        this.#lastNotifiedLeader = holder;
        this.#logger?.info({ leader: holder }, "new leader observed");
        try {
          this.#opts.onNewLeader?.(holder);
        } catch (err) {
          this.#logger?.error({ err }, "onNewLeader failed");
        }
      }
    }
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    const cur = await this.#lock.get(signal);
    const now = this.#clock.now();
    if (!cur) {
      const rec: LeaderElectionRecord = {
        holderIdentity: this.identity,
        leaseDurationSeconds: this.#leaseMs / 1000,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      };
      try {
        const rv = await this.#lock.create(rec, signal);
        this.#observe({ record: rec, resourceVersion: rv }, this.#clock.now());
        return "ok";
      } catch (err) {
        if (statusCode(err) === 409) return "conflict";
        throw err;
      }
    }
    this.#observe(cur, now);
    const old = cur.record;
    const heldByOther = old.holderIdentity !== "" && old.holderIdentity !== this.identity;
    if (heldByOther && this.#observedTime + old.leaseDurationSeconds * 1000 > now) return "held";
    const ours = old.holderIdentity === this.identity;
    const rec: LeaderElectionRecord = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.#leaseMs / 1000,
      acquireTime: ours ? (old.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: ours ? old.leaseTransitions : old.leaseTransitions + 1,
    };
    try {
      const rv = await this.#lock.update(rec, cur.resourceVersion, signal);
      this.#observe({ record: rec, resourceVersion: rv }, this.#clock.now());
      return "ok";
    } catch (err) {
      if (statusCode(err) === 409) return "conflict";
      throw err;
    }
  }
}
