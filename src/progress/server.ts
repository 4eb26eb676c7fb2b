/**
 * The progress endpoint: trainers POST /v1/progress/<namespace>/<name>.
 * Authenticated (auth.ts), body-capped, rate-limited per job, and written to
 * status with coalescing (coalescer.ts): at most one status patch per job per
 * write interval carrying only the newest report, and at most
 * `maxWritesPerSecond` patches per second in total however many jobs report.
 * Progress writes are last-writer-wins merge patches of
 * status.progress/checkpoints, so any replica may serve them.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { KubeApi } from "../kube/api.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import type { ProgressAuthenticator } from "./auth.ts";
import { ProgressCoalescer } from "./coalescer.ts";
import { addLoss } from "./loss.ts";
import { MAX_BODY_BYTES, parseReport, type ParsedReport } from "./report.ts";

export interface ProgressServerOptions {
  api: Pick<KubeApi, "patchStatus">;
  auth: Pick<ProgressAuthenticator, "authenticate">;
  getJob(namespace: string, name: string): FineTuneJobObject | undefined;
  logger: Logger;
  host: string;
  port: number;
  /** Reports accepted per job at most this often (default 2 s); more get 429. */
  minReportIntervalMs?: number;
  /** Status writes per job at most this often (default 30 s). */
  writeIntervalMs?: number;
  /** Status writes by this server in total at most this often (default 5 per second). */
  maxWritesPerSecond?: number;
  tls?: { certFile: string; keyFile: string };
  /** Called once per request with its outcome (for metrics). */
  onReport?(result: ReportResult): void;
  /** Called after each status write attempt (for metrics). */
  onWrite?(ok: boolean): void;
}

export type ReportResult = "accepted" | "unauthorized" | "forbidden" | "not_found" | "too_large" | "rate_limited" | "invalid";

/** Losses carried from coalesced reports into one write: a write interval's worth at one report per 2 s. */
const MAX_LOSS_SAMPLES = 64;

const PATH = /^\/v1\/progress\/([a-z0-9][-a-z0-9]{0,62})\/([a-z0-9][-a-z0-9.]{0,252})$/;

export class ProgressServer {
  readonly #opts: ProgressServerOptions;
  readonly #server: Server;
  readonly #lastAccepted = new Map<string, number>();
  readonly #lastWasFinal = new Set<string>();
  readonly #pending: ProgressCoalescer<ParsedReport>;
  #timer: NodeJS.Timeout | undefined;
  #flushing = false;
  #port = 0;
  readonly stats = { accepted: 0, rejected: 0, writes: 0 };

  constructor(opts: ProgressServerOptions) {
    this.#opts = opts;
    const writeIntervalMs = opts.writeIntervalMs ?? 30_000;
    this.#pending = new ProgressCoalescer(Math.ceil((opts.maxWritesPerSecond ?? 5) * (writeIntervalMs / 1000)));
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        opts.logger.warn({ err: errorMessage(err) }, "progress request failed");
        reply(res, 500, "internal error");
      });
    };
    this.#server = opts.tls
      ? createHttpsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, handler)
      : createHttpServer(handler);
    this.#server.requestTimeout = 10_000;
  }

  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#opts.port, this.#opts.host, () => resolve());
    });
    const addr = this.#server.address();
    this.#port = typeof addr === "object" && addr ? addr.port : this.#opts.port;
    this.#timer = setInterval(() => void this.flush(), this.#opts.writeIntervalMs ?? 30_000);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.flush();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = PATH.exec(req.url ?? "");
    if (req.method !== "POST" || !match) return reply(res, 404, "POST /v1/progress/<namespace>/<name>");
    const [, namespace, name] = match as unknown as [string, string, string];
    const key = `${namespace}/${name}`;
    const auth = req.headers.authorization;
    if (!auth?.startsWith("Bearer ")) return this.#reject(res, 401, "bearer token required");
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES) return this.#reject(res, 413, `body larger than ${MAX_BODY_BYTES} bytes`);
    const body = await readBody(req, MAX_BODY_BYTES);
    if (body === undefined) return this.#reject(res, 413, `body larger than ${MAX_BODY_BYTES} bytes`);
    const verdict = await this.#opts.auth.authenticate(auth.slice(7).trim(), namespace, name);
    if (!verdict.ok) return this.#reject(res, verdict.status, verdict.reason);
    const job = this.#opts.getJob(namespace, name);
    if (!job) return this.#reject(res, 404, "no such FineTuneJob");
    const now = Date.now();
    const report = parseReport(body, new Date(now));
    if ("error" in report) return this.#reject(res, 400, report.error);
    const minIntervalMs = this.#opts.minReportIntervalMs ?? 2_000;
    // The trainer's final report (last step, final checkpoint) follows its previous one closely; refusing it would
    // leave status one interval behind forever. It may bypass the limit once: a second "final" in a row may not.
    const finalBypass = report.final && !this.#lastWasFinal.has(key);
    if (now - (this.#lastAccepted.get(key) ?? 0) < minIntervalMs && !finalBypass) {
      return this.#reject(res, 429, `too many reports; at most one per ${minIntervalMs / 1000} s`);
    }
    this.#lastAccepted.set(key, now);
    if (report.final) this.#lastWasFinal.add(key);
    else this.#lastWasFinal.delete(key);
    // Only the newest report is written, but every loss it replaces belongs in the history (bounded per flush).
    const waiting = this.#pending.peek(key);
    if (waiting) report.lossSamples = [...waiting.lossSamples, ...report.lossSamples].slice(-MAX_LOSS_SAMPLES);
    this.#pending.put(key, report);
    this.stats.accepted++;
    this.#opts.onReport?.("accepted");
    reply(res, 202, "accepted");
  }

  #reject(res: ServerResponse, status: number, reason: string): void {
    this.stats.rejected++;
    this.#opts.onReport?.(RESULTS[status] ?? "invalid");
    reply(res, status, reason);
  }

  /** Writes the newest waiting report of as many jobs as the write budget allows (the rest wait for the next flush). */
  async flush(): Promise<void> {
    // A slow API server can make one flush outlast the interval; overlapping flushes would exceed the write budget.
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      await this.#flushOnce();
    } finally {
      this.#flushing = false;
    }
  }

  async #flushOnce(): Promise<void> {
    const now = Date.now();
    const batch = this.#pending.take(now);
    for (const [key, report] of batch) {
      const [namespace, name] = key.split("/") as [string, string];
      const latest = report.checkpoints[report.checkpoints.length - 1];
      // Merged into the history the cache shows (our previous write, a flush interval ago), in the same patch.
      const known = this.#opts.getJob(namespace, name)?.status?.lossHistory;
      const lossHistory = addLoss(known, report.lossSamples);
      try {
        await this.#opts.api.patchStatus(namespace, name, {
          progress: report.progress,
          ...(report.checkpoints.length ? { checkpoints: report.checkpoints } : {}),
          ...(latest ? { latestCheckpoint: latest } : {}),
          ...(lossHistory && lossHistory !== known ? { lossHistory } : {}),
        });
        this.stats.writes++;
        this.#opts.onWrite?.(true);
      } catch (err) {
        this.#opts.onWrite?.(false);
        if (!isNotFound(err)) this.#opts.logger.warn({ job: key, err: errorMessage(err) }, "could not write progress");
      }
    }
    for (const [key, at] of this.#lastAccepted) {
      if (now - at > 10 * 60_000) {
        this.#lastAccepted.delete(key);
        this.#lastWasFinal.delete(key);
      }
    }
    this.#pending.prune(now, 10 * 60_000);
  }

  /** Reports accepted but not yet written. */
  get pendingWrites(): number {
    return this.#pending.pending;
  }
}

const RESULTS: Record<number, ReportResult> = {
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  413: "too_large",
  429: "rate_limited",
  400: "invalid",
};

function reply(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(`${message}\n`);
}

function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      if (!over) chunks.push(chunk);
    });
    req.on("end", () => resolve(over ? undefined : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
