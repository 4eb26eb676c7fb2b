/**
 * The log-tail progress fallback, run by the leader only: every interval it
 * reads the tail of rank 0's log for each training job without fresh pushed
 * progress (log-plan.ts decides which), parses it (log-parse.ts) and writes
 * status.progress (source "logs") only when something moved. Cost per such
 * job and interval: at most one GET pods/log and one status merge patch.
 * Jobs and pods come from the controller's informer caches, never from a LIST.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { KubeApi } from "../kube/api.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import { TRAINER_CONTAINER } from "../render/names.ts";
import { parseLogTail } from "./log-parse.ts";
import { logProgressPatch, needsLogProgress, nextTailLines, rankZeroPod } from "./log-plan.ts";

export interface LogPollerOptions {
  api: Pick<KubeApi, "readPodLogTail" | "patchStatus">;
  /** Every FineTuneJob in the cache. */
  jobs(): FineTuneJobObject[];
  /** The cached FineTuneJob (re-read right before a write, so a push that just landed wins). */
  getJob(namespace: string, name: string): FineTuneJobObject | undefined;
  /** The cached pods of a FineTuneJob. */
  podsOf(namespace: string, name: string): V1Pod[];
  logger: Logger;
  intervalMs: number;
  /** Pushed progress older than this no longer holds the log off (default 3 intervals). */
  pushStaleMs?: number;
  /** Lines asked for (default 500); fewer after a tail hit limitBytes. */
  tailLines?: number;
  /** Bytes asked for at most (default 256 KiB): bounds the kubelet's and the operator's work per read. */
  limitBytes?: number;
  /** Log reads in flight at most (default 4): the kubelets, not the operator, do the work. */
  concurrency?: number;
  now?: () => number;
}

export class LogProgressPoller {
  readonly #opts: LogPollerOptions;
  /** Per job: lines to ask for next, and the pod last written from. */
  readonly #tailLines = new Map<string, number>();
  readonly #writtenFrom = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  readonly stats = { reads: 0, writes: 0, errors: 0 };

  constructor(opts: LogPollerOptions) {
    this.#opts = opts;
  }

  start(): void {
    if (this.#timer || this.#opts.intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.poll(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a round in progress. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One round; a round still running (slow kubelets) makes this one a no-op rather than pile up. */
  poll(): Promise<void> {
    if (this.#running) return this.#running;
    this.#running = this.#round().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #round(): Promise<void> {
    const now = (this.#opts.now ?? Date.now)();
    const staleMs = this.#opts.pushStaleMs ?? 3 * this.#opts.intervalMs;
    const due = this.#opts.jobs().filter((j) => needsLogProgress(j, now, staleMs));
    const keys = new Set(due.map(keyOf));
    for (const map of [this.#tailLines, this.#writtenFrom]) for (const k of map.keys()) if (!keys.has(k)) map.delete(k);
    let next = 0;
    const worker = async () => {
      while (next < due.length) await this.#pollJob(due[next++]!, staleMs);
    };
    await Promise.all(Array.from({ length: Math.min(this.#opts.concurrency ?? 4, due.length) }, worker));
  }

  async #pollJob(job: FineTuneJobObject, staleMs: number): Promise<void> {
    const key = keyOf(job);
    const { namespace = "", name = "" } = job.metadata;
    const pod = rankZeroPod(job, this.#opts.podsOf(namespace, name));
    const podName = pod?.metadata?.name;
    if (!podName) return;
    const maxLines = this.#opts.tailLines ?? 500;
    const limitBytes = this.#opts.limitBytes ?? 256 * 1024;
    const lines = this.#tailLines.get(key) ?? maxLines;
    try {
      const container = pod.spec?.containers?.some((c) => c.name === TRAINER_CONTAINER) ? TRAINER_CONTAINER : undefined;
      const text = await this.#opts.api.readPodLogTail(namespace, podName, { ...(container ? { container } : {}), tailLines: lines, limitBytes });
      this.stats.reads++;
      this.#tailLines.set(key, nextTailLines(lines, Buffer.byteLength(text), limitBytes, maxLines));
      // Re-read the cache: a push report may have landed while the log was read, and push wins.
      const fresh = this.#opts.getJob(namespace, name);
      if (!fresh || !needsLogProgress(fresh, (this.#opts.now ?? Date.now)(), staleMs)) return;
      const parsed = parseLogTail(text, { ...(fresh.status?.progress?.totalSteps ? { totalSteps: fresh.status.progress.totalSteps } : {}) });
      const patch = logProgressPatch(fresh.status, parsed, new Date((this.#opts.now ?? Date.now)()), { allowStepBack: this.#writtenFrom.get(key) !== podName });
      if (!patch) return;
      this.#opts.logger.debug({ job: key, pod: podName, step: parsed.step, loss: parsed.loss }, "progress from the log tail");
      await this.#opts.api.patchStatus(namespace, name, patch);
      this.#writtenFrom.set(key, podName);
      this.stats.writes++;
    } catch (err) {
      this.stats.errors++;
      // A pod or job that went away between the cache and the call is normal churn.
      if (!isNotFound(err)) this.#opts.logger.warn({ job: key, pod: podName, err: errorMessage(err) }, "could not read progress from the log");
    }
  }
}

const keyOf = (job: FineTuneJobObject) => `${job.metadata.namespace}/${job.metadata.name}`;
