/**
 * Probe and metrics endpoints on node:http:
 *   GET /healthz  200 "ok" while the process serves requests (liveness)
 *   GET /readyz   200 "ok" when `ready()` is true, else 503 (readiness: caches synced, ...)
 *   GET /metrics  200, body from `metrics()`, Content-Type text/plain; version=0.0.4
 * HEAD is answered like GET without a body; other methods get 405, other paths 404.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface HttpServerOptions {
  /** Bind address (default '0.0.0.0'). */
  host?: string;
  /** Port (default 8081; 0 picks a free one, see `port` on the result). */
  port?: number;
  /** Readiness check; a throw or rejection counts as not ready. Default: always ready. */
  ready?: () => boolean | Promise<boolean>;
  /** Prometheus text exposition. Omit to serve 404 on /metrics. */
  metrics?: () => Promise<string> | string;
  logger?: Logger;
}

export interface RuntimeHttpServer {
  /** The port actually bound. */
  readonly port: number;
  readonly server: Server;
  /** Stop accepting connections and close idle ones; resolves when closed. */
  close(): Promise<void>;
}

function send(res: ServerResponse, head: boolean, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store" });
  res.end(head ? undefined : body);
}

export async function startHttpServer(opts: HttpServerOptions = {}): Promise<RuntimeHttpServer> {
  const logger = opts.logger;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, false, 405, "method not allowed\n");
    }
    switch (path) {
      case "/healthz":
      case "/livez":
        return send(res, head, 200, "ok\n");
      case "/readyz": {
        let ok = true;
        try {
          ok = opts.ready ? await opts.ready() : true;
        } catch (err) {
          logger?.warn({ err }, "readiness check failed");
          ok = false;
        }
        return ok ? send(res, head, 200, "ok\n") : send(res, head, 503, "not ready\n");
      }
      case "/metrics": {
        if (!opts.metrics) return send(res, head, 404, "not found\n");
        try {
          const text = await opts.metrics();
          return send(res, head, 200, text, METRICS_CONTENT_TYPE);
        } catch (err) {
          logger?.error({ err }, "metrics collection failed");
          return send(res, head, 500, "metrics collection failed\n");
        }
      }
      default:
        return send(res, head, 404, "not found\n");
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger?.error({ err }, "http handler failed");
      if (!res.headersSent) send(res, false, 500, "internal error\n");
      else res.destroy();
    });
  });
  // Probes are tiny; don't let slow clients hold sockets forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8081, opts.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger?.info({ host: opts.host ?? "0.0.0.0", port }, "probe/metrics server listening");

  return {
    port,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}
