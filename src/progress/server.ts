/**
 * The progress endpoint: trainers POST /v1/progress/<namespace>/<name>.
 * Authenticated (auth.ts), body-capped, rate-limited per job, and written to
 * status with coalescing: at most one status patch per job per write interval,
 * carrying only the newest report. Progress writes are last-writer-wins merge
 * patches of status.progress/checkpoints, so any replica may serve them.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { KubeApi } from "../kube/api.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import type { ProgressAuthenticator } from "./auth.ts";
import { MAX_BODY_BYTES, parseReport, type ParsedReport } from "./report.ts";

export interface ProgressServerOptions {
  api: KubeApi;
  auth: ProgressAuthenticator;
  getJob(namespace: string, name: string): FineTuneJobObject | undefined;
  logger: Logger;
  host: string;
  port: number;
  /** Reports accepted per job at most this often (default 2 s); more get 429. */
  minReportIntervalMs?: number;
  /** Status writes per job at most this often (default 30 s). */
  writeIntervalMs?: number;
  tls?: { certFile: string; keyFile: string };
}

const PATH = /^\/v1\/progress\/([a-z0-9][-a-z0-9]{0,62})\/([a-z0-9][-a-z0-9.]{0,252})$/;

export class ProgressServer {
  readonly #opts: ProgressServerOptions;
  readonly #server: Server;
  readonly #lastAccepted = new Map<string, number>();
  readonly #pending = new Map<string, ParsedReport>();
  #timer: NodeJS.Timeout | undefined;
  #port = 0;
  readonly stats = { accepted: 0, rejected: 0, writes: 0 };

  constructor(opts: ProgressServerOptions) {
    this.#opts = opts;
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
    const last = this.#lastAccepted.get(key) ?? 0;
    if (now - last < (this.#opts.minReportIntervalMs ?? 2_000)) return this.#reject(res, 429, "too many reports; at most one per 2 s");
    const report = parseReport(body, new Date(now));
    if ("error" in report) return this.#reject(res, 400, report.error);
    this.#lastAccepted.set(key, now);
    this.#pending.set(key, report);
    this.stats.accepted++;
    reply(res, 202, "accepted");
  }

  #reject(res: ServerResponse, status: number, reason: string): void {
    this.stats.rejected++;
    reply(res, status, reason);
  }

  /** Writes the newest report of every job that has one waiting. */
  async flush(): Promise<void> {
    const batch = [...this.#pending];
    this.#pending.clear();
    for (const [key, report] of batch) {
      const [namespace, name] = key.split("/") as [string, string];
      const latest = report.checkpoints[report.checkpoints.length - 1];
      try {
        await this.#opts.api.patchStatus(namespace, name, {
          progress: report.progress,
          ...(report.checkpoints.length ? { checkpoints: report.checkpoints } : {}),
          ...(latest ? { latestCheckpoint: latest } : {}),
        });
        this.stats.writes++;
      } catch (err) {
        if (!isNotFound(err)) this.#opts.logger.warn({ job: key, err: errorMessage(err) }, "could not write progress");
      }
    }
    for (const [key, at] of this.#lastAccepted) if (Date.now() - at > 10 * 60_000) this.#lastAccepted.delete(key);
  }
}

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
