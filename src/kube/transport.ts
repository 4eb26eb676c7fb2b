/**
 * How bytes reach the API server. Two implementations of one small interface:
 *
 * - `DirectTransport`: node:http(s) with one keep-alive Agent per credential set. This is the
 *   operator's normal path. Why not fetch: Node's built-in fetch cannot take a custom CA or a
 *   client certificate without an undici Agent from the npm package, and importing that costs
 *   about 29 MiB RSS (measured: bare node 46 MiB, + `undici` 75 MiB, + `node:https` 52 MiB).
 *   Pooling matters as much as it did for client-node (see pooled-config.ts): one TLS handshake
 *   per connection, not per request.
 * - `clientNodeTransport()`: for credentials only client-node understands (exec plugins, auth
 *   providers, proxies, merged kubeconfigs), it loads @kubernetes/client-node on demand and lets
 *   its KubeConfig sign each request. Nobody else pays for the library.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { delimiter } from "node:path";
import { Readable } from "node:stream";
import type { ClusterAccess, Secret } from "./access.ts";

export interface HttpRequest {
  method: string;
  /** Path and query, e.g. `/api/v1/namespaces/ns/pods?limit=500`. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  /** Socket inactivity limit; 0 for none (watches keep their own timer). */
  timeoutMs: number;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export interface Transport {
  send(req: HttpRequest): Promise<HttpResponse>;
  /** Where requests go and how they authenticate, for logs. */
  readonly description: string;
  close(): void;
}

/** The service account token is re-read this often: the kubelet rotates projected tokens (client-go re-reads every minute). */
export const TOKEN_REREAD_MS = 60_000;
/** Certificates and CA are re-read this often; a new pool is built only when they changed. */
export const TLS_REREAD_MS = 10 * 60_000;

function readSecret(s: Secret): string {
  return "data" in s ? s.data : readFileSync(s.file, "utf8");
}

interface Pool {
  agent: HttpAgent;
  /** The TLS material the pool was built with, to see whether a re-read changed anything. */
  material: string;
  checkedAt: number;
}

export class DirectTransport implements Transport {
  readonly description: string;
  readonly #access: ClusterAccess;
  readonly #url: URL;
  readonly #now: () => number;
  #pool: Pool | undefined;
  #token: { value: string; readAt: number } | undefined;

  constructor(access: ClusterAccess, opts: { now?: () => number } = {}) {
    this.#access = access;
    this.#url = new URL(access.server);
    this.#now = opts.now ?? Date.now;
    const auth = access.token ? "bearer token" : access.clientCert ? "client certificate" : access.basic ? "basic auth" : "anonymous";
    this.description = `${access.server} from ${access.source}, ${auth}`;
  }

  close(): void {
    this.#pool?.agent.destroy();
    this.#pool = undefined;
  }

  #currentPool(): Pool {
    const now = this.#now();
    const pool = this.#pool;
    if (pool && now - pool.checkedAt < TLS_REREAD_MS) return pool;
    const a = this.#access;
    const tls = {
      ...(a.ca ? { ca: readSecret(a.ca) } : {}),
      ...(a.clientCert ? { cert: readSecret(a.clientCert) } : {}),
      ...(a.clientKey ? { key: readSecret(a.clientKey) } : {}),
    };
    const material = JSON.stringify(tls);
    if (pool && pool.material === material) {
      pool.checkedAt = now;
      return pool;
    }
    const common = { keepAlive: true, keepAliveMsecs: 30_000, scheduling: "lifo" as const };
    const agent =
      this.#url.protocol === "http:"
        ? new HttpAgent(common)
        : new HttpsAgent({ ...common, ...tls, rejectUnauthorized: !a.insecureSkipTLSVerify, ...(a.tlsServerName ? { servername: a.tlsServerName } : {}) });
    this.#pool = { agent, material, checkedAt: now };
    // Rotated certificates: requests already on the old pool (watches last up to 10 minutes) finish there.
    if (pool) setTimeout(() => pool.agent.destroy(), 11 * 60_000).unref();
    return this.#pool;
  }

  #authorization(): string | undefined {
    const a = this.#access;
    if (a.token) {
      const now = this.#now();
      if (!this.#token || ("file" in a.token && now - this.#token.readAt >= TOKEN_REREAD_MS)) {
        this.#token = { value: readSecret(a.token).trim(), readAt: now };
      }
      return `Bearer ${this.#token.value}`;
    }
    if (a.basic) return `Basic ${Buffer.from(`${a.basic.username}:${a.basic.password}`).toString("base64")}`;
    return undefined;
  }

  send(req: HttpRequest): Promise<HttpResponse> {
    return this.#send(req, true);
  }

  #send(req: HttpRequest, mayRetry: boolean): Promise<HttpResponse> {
    const { agent } = this.#currentPool();
    const authorization = this.#authorization();
    const headers: Record<string, string> = { ...req.headers, ...(authorization ? { authorization } : {}) };
    if (req.body !== undefined) headers["content-length"] = String(Buffer.byteLength(req.body));
    const send = this.#url.protocol === "http:" ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const r = send(
        {
          protocol: this.#url.protocol,
          hostname: this.#url.hostname.replace(/^\[|\]$/g, ""),
          port: this.#url.port,
          path: this.#url.pathname.replace(/\/$/, "") + req.path,
          method: req.method,
          headers,
          agent,
          ...(req.signal ? { signal: req.signal } : {}),
        },
        (res: IncomingMessage) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
      );
      if (req.timeoutMs > 0)
        r.setTimeout(req.timeoutMs, () =>
          r.destroy(Object.assign(new Error(`${req.method} ${req.path}: no answer in ${req.timeoutMs} ms`), { name: "TimeoutError" })),
        );
      r.on("error", (err: NodeJS.ErrnoException) => {
        // A pooled connection the server closed while idle: the request never reached it, so one retry is safe (Node's documented pattern).
        if (mayRetry && r.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) resolve(this.#send(req, false));
        else reject(err);
      });
      r.end(req.body);
    });
  }
}

/**
 * client-node's KubeConfig for credentials the direct transport does not handle. Its module graph
 * (about 85 MiB RSS) is loaded here, on first use, and only by processes that need it.
 */
export async function clientNodeTransport(reason: string, env: NodeJS.ProcessEnv = process.env): Promise<Transport> {
  const [{ PooledKubeConfig }, cn] = await Promise.all([import("./pooled-config.ts"), import("@kubernetes/client-node")]);
  const kc = new PooledKubeConfig();
  // loadFromDefault, but with the given environment's KUBECONFIG (several files merged as loadFromDefault merges them).
  const [first, ...rest] = (env.KUBECONFIG ?? "").split(delimiter).filter(Boolean);
  if (first) {
    kc.loadFromFile(first);
    for (const file of rest) {
      const more = new cn.KubeConfig();
      more.loadFromFile(file);
      kc.mergeConfig(more);
    }
  } else {
    kc.loadFromDefault();
  }
  const server = (kc.getCurrentCluster()?.server ?? "").replace(/\/+$/, "");
  const make = (): Transport => ({
    description: `${server} through client-node (${reason})`,
    close: () => {},
    async send(req) {
      const ctx = new cn.RequestContext(server + req.path, req.method as never);
      for (const [k, v] of Object.entries(req.headers)) ctx.setHeaderParam(k, v);
      if (req.body !== undefined) ctx.setBody(req.body);
      if (req.signal) ctx.setSignal(req.signal);
      await kc.applySecurityAuthentication(ctx);
      const res = await new cn.IsomorphicFetchHttpLibrary().send(ctx).toPromise();
      const stream = res.body.stream();
      return { status: res.httpStatusCode, headers: res.headers, body: stream ? Readable.fromWeb(stream as never) : Readable.from([]) };
    },
  });
  return make();
}
