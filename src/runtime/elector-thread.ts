/**
 * Leader election on its own thread. A saturated operator (thousands of watch events and reconciles on two shared
 * cores) runs its event loop seconds behind; a renewal on that loop waits behind the backlog and misses the renew
 * deadline, although the process is healthy and only slow. On a worker thread the renewal has an event loop of its
 * own, which the operating system schedules beside the main one, so a slow main loop no longer costs the Lease.
 *
 * Safety stays as before: the main thread acts only between "started" and "stopped". When the worker loses the
 * Lease it tells the main thread, which stops reconciling at once and acknowledges; if the main thread is too busy
 * to acknowledge within `hardStopMs` (it might still be acting while a successor takes over after the lease
 * duration), the worker ends the whole process with SIGKILL.
 *
 * This file is the main thread's side; `lease-worker.ts` (next to main.ts) is the worker's. The protocol is
 * {@link ToWorker} and {@link FromWorker}.
 */
import { Worker } from "node:worker_threads";
import type { RenewalReport, StoppedReason } from "./leader-election.ts";

/** What the worker needs to run the election (plain data: it crosses threads). */
export interface ElectorThreadConfig {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number | undefined;
  renewDeadlineSeconds?: number | undefined;
  retryPeriodSeconds?: number | undefined;
  /** Lease lost and no acknowledgement from the main thread after this long: SIGKILL the process. */
  hardStopMs: number;
  logLevel: string;
  /** The main thread's resolved credentials (kube/access.ts ClusterAccess: plain data); absent: the worker resolves its own. */
  access?: unknown;
}

export type ToWorker = { type: "ack-stopped" } | { type: "stop"; release: boolean };
export type FromWorker =
  | { type: "started" }
  | { type: "stopped"; reason: StoppedReason }
  | { type: "pressure"; on: boolean }
  | { type: "renewal"; report: RenewalReport }
  | { type: "done" };

export interface ElectorThreadCallbacks {
  onStartedLeading: () => void;
  /** Stop acting before returning: the worker is told the main thread stopped as soon as this returns. */
  onStoppedLeading: (reason: StoppedReason) => void;
  onPressure?: (on: boolean) => void;
  onRenewal?: (report: RenewalReport) => void;
  /** The worker died (a bug or its own crash): treated as a lost Lease by the caller. */
  onError?: (err: unknown) => void;
}

/** The main thread's handle on the election worker. */
export class ElectorThread {
  readonly #worker: Worker;
  readonly #done: Promise<void>;
  #leading = false;

  /** `entry`: the worker script (lease-worker.ts, or .js once built). */
  constructor(entry: URL, config: ElectorThreadConfig, callbacks: ElectorThreadCallbacks) {
    this.#worker = new Worker(entry, { workerData: config });
    this.#done = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    this.#worker.on("message", (msg: FromWorker) => {
      switch (msg.type) {
        case "started":
          this.#leading = true;
          callbacks.onStartedLeading();
          break;
        case "stopped":
          this.#leading = false;
          callbacks.onStoppedLeading(msg.reason);
          this.#post({ type: "ack-stopped" });
          break;
        case "pressure":
          callbacks.onPressure?.(msg.on);
          break;
        case "renewal":
          callbacks.onRenewal?.(msg.report);
          break;
        case "done":
          break;
      }
    });
    // A worker that dies while we lead (a crash, or it exited without saying "stopped") takes the Lease's guarantee with it.
    const died = (err?: unknown) => {
      const wasLeading = this.#leading;
      this.#leading = false;
      if (err !== undefined) callbacks.onError?.(err);
      if (wasLeading) callbacks.onStoppedLeading("lost");
    };
    this.#worker.on("error", died);
    this.#worker.once("exit", () => died());
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /** Stops the election (releasing the Lease by default, so a successor takes over at once) and waits for the worker to end. */
  async stop(opts: { release?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.#post({ type: "stop", release: opts.release ?? true });
    const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), opts.timeoutMs ?? 5_000).unref());
    if ((await Promise.race([this.#done, timeout])) === "timeout") await this.#worker.terminate();
    this.#leading = false;
  }

  #post(msg: ToWorker): void {
    try {
      this.#worker.postMessage(msg);
    } catch {
      // The worker has exited: nothing to tell it.
    }
  }
}
