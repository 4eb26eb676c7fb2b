/**
 * Minimal JSON client for the apiserver (client-cert auth), used by the cluster
 * bootstrap and the hostPath provisioner. Tests should use e2e/lib instead.
 */
import { request as httpsRequest, Agent } from "node:https";
import type { IncomingMessage } from "node:http";
import type { ClientCredentials } from "./certs.ts";

export class ApiError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(method: string, path: string, status: number, body: string) {
    super(`${method} ${path} -> ${status}: ${body.slice(0, 500)}`);
    this.status = status;
    this.body = body;
  }
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

export class Api {
  readonly server: string;
  private readonly agent: Agent;

  constructor(server: string, creds: ClientCredentials) {
    this.server = server;
    this.agent = new Agent({ ca: creds.ca, cert: creds.cert, key: creds.key, keepAlive: true, maxSockets: 32 });
  }

  close(): void {
    this.agent.destroy();
  }

  private open(method: string, path: string, body: unknown, contentType: string, timeoutMs: number): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, this.server);
      const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
      const req = httpsRequest(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            accept: "application/json",
            ...(payload === undefined ? {} : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
          },
          timeout: timeoutMs,
        },
        resolve,
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs}ms`)));
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** Sends a request and parses the JSON response; throws ApiError on non-2xx. */
  async request<T = any>(method: string, path: string, body?: unknown, contentType = "application/json", timeoutMs = 120_000): Promise<T> {
    const res = await this.open(method, path, body, contentType, timeoutMs);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new ApiError(method, path, status, text);
    const ct = res.headers["content-type"] ?? "";
    return (ct.includes("json") && text ? JSON.parse(text) : text) as T;
  }

  get<T = any>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  /** Creates an object; an AlreadyExists (409) is not an error. */
  async createIfAbsent(path: string, obj: unknown): Promise<void> {
    try {
      await this.request("POST", path, obj);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
  }

  /**
   * Streams watch events until the server closes the stream or `signal` aborts.
   * Returns the last resourceVersion seen. Throws ApiError(410) when the version is too old.
   */
  async watch<T extends { metadata?: { resourceVersion?: string } }>(
    path: string,
    resourceVersion: string,
    onEvent: (ev: WatchEvent<T>) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<string> {
    const sep = path.includes("?") ? "&" : "?";
    const res = await this.open(
      "GET",
      `${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=300`,
      undefined,
      "",
      330_000,
    );
    if ((res.statusCode ?? 0) !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw new ApiError("WATCH", path, res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"));
    }
    const onAbort = () => res.destroy();
    signal?.addEventListener("abort", onAbort, { once: true });
    let rv = resourceVersion;
    let buf = "";
    try {
      for await (const chunk of res) {
        buf += (chunk as Buffer).toString("utf8");
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const ev = JSON.parse(line) as WatchEvent<T>;
          if (ev.type === "ERROR") {
            const st = ev.object as unknown as { code?: number; message?: string };
            throw new ApiError("WATCH", path, st.code ?? 500, st.message ?? line);
          }
          rv = ev.object.metadata?.resourceVersion ?? rv;
          if (ev.type !== "BOOKMARK") await onEvent(ev);
        }
      }
    } catch (err) {
      if (signal?.aborted) return rv;
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return rv;
  }
}
