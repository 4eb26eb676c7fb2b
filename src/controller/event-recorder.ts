/**
 * Records Events the way client-go's event recorder does (tools/record, EventCorrelator), so a job that repeats
 * itself costs one small write per repeat and never floods etcd:
 * - an Event identical to one recorded within the last 10 minutes (same object, type, reason and message) becomes
 *   a PATCH of that Event: count + 1 and lastTimestamp now (`kubectl describe` shows "x3 over 5m");
 * - per object, a token bucket (burst 25, one more every 5 minutes) drops what exceeds it.
 * Best effort: a failed write is reported to the caller's log and never retried; losing an Event must never fail
 * or repeat a reconcile. Memory is bounded (the newest 4096 Events and objects are remembered).
 */
import type { CoreV1Event } from "@kubernetes/client-node";
import { statusCode } from "../runtime/errors.ts";

export interface EventSink {
  create(event: CoreV1Event): Promise<unknown>;
  /** Merge patch of an existing Event (count, lastTimestamp). */
  patch(namespace: string, name: string, body: { count: number; lastTimestamp: Date }): Promise<unknown>;
}

export interface EventRecorderOptions {
  now?: () => number;
  /** Identical Events within this window are one Event with a count (client-go: 10 minutes). */
  dedupeWindowMs?: number;
  /** Token bucket per object (client-go: burst 25, 1 token per 5 minutes). */
  burst?: number;
  refillMs?: number;
  maxEntries?: number;
}

export type RecordOutcome = "created" | "patched" | "dropped";

interface Seen {
  namespace: string;
  name: string;
  count: number;
  lastMs: number;
}

export class EventRecorder {
  readonly #sink: EventSink;
  readonly #now: () => number;
  readonly #windowMs: number;
  readonly #burst: number;
  readonly #refillMs: number;
  readonly #max: number;
  readonly #seen = new Map<string, Seen>();
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(sink: EventSink, opts: EventRecorderOptions = {}) {
    this.#sink = sink;
    this.#now = opts.now ?? Date.now;
    this.#windowMs = opts.dedupeWindowMs ?? 10 * 60_000;
    this.#burst = opts.burst ?? 25;
    this.#refillMs = opts.refillMs ?? 5 * 60_000;
    this.#max = opts.maxEntries ?? 4096;
  }

  /** Creates `event`, or counts it on the identical one recorded recently, or drops it (spam filter). */
  async record(event: CoreV1Event): Promise<RecordOutcome> {
    const now = this.#now();
    const object = event.involvedObject.uid || `${event.involvedObject.namespace}/${event.involvedObject.name}`;
    if (!this.#take(object, now)) return "dropped";
    const key = JSON.stringify([object, event.type, event.reason, event.message]);
    const seen = this.#seen.get(key);
    if (seen && now - seen.lastMs < this.#windowMs) {
      seen.count++;
      seen.lastMs = now;
      this.#touch(this.#seen, key, seen);
      try {
        await this.#sink.patch(seen.namespace, seen.name, { count: seen.count, lastTimestamp: new Date(now) });
        return "patched";
      } catch (err) {
        if (statusCode(err) !== 404) throw err;
        // The Event expired (the API server's event TTL): record it anew below.
      }
    }
    const namespace = event.metadata?.namespace ?? "";
    const name = event.metadata?.name ?? "";
    this.#touch(this.#seen, key, { namespace, name, count: 1, lastMs: now });
    await this.#sink.create(event);
    return "created";
  }

  /** One token from the object's bucket, refilled one per refill period up to the burst. */
  #take(object: string, now: number): boolean {
    const b = this.#buckets.get(object) ?? { tokens: this.#burst, atMs: now };
    const refills = Math.floor((now - b.atMs) / this.#refillMs);
    if (refills > 0) {
      b.tokens = Math.min(this.#burst, b.tokens + refills);
      b.atMs += refills * this.#refillMs;
    }
    if (b.tokens < 1) {
      this.#touch(this.#buckets, object, b);
      return false;
    }
    b.tokens--;
    this.#touch(this.#buckets, object, b);
    return true;
  }

  /** Insert as most recent; evict the oldest beyond the bound. */
  #touch<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > this.#max) map.delete(map.keys().next().value!);
  }
}
