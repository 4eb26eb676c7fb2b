/**
 * A small REST client for the Kubernetes API: JSON in, JSON out, plain objects
 * (never client-node model classes: timestamps stay strings, unknown fields
 * survive), errors with the HTTP status as `code` (what runtime/errors.ts
 * `statusCode` reads) and the API server's Status as `body`, and a watch that
 * streams newline-delimited events. It is all the operator process needs (and
 * the runtime's `ApiClient`); its types come from `import type` of
 * @kubernetes/client-node, which is erased at runtime.
 */
import { homedir } from "node:os";
import { existsSync, readFileSync } from "node:fs";
import type { ClusterAccess, FileSystem } from "./access.ts";
import { clientNodeTransport, DirectTransport, type Transport } from "./transport.ts";
import type { WatchOptions } from "../runtime/api-client.ts";
import { parseObjectWithoutManagedFields, parseWatchLine } from "./watch-text.ts";

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Default application/json; `application/merge-patch+json` for merge patches. */
  contentType?: string;
  signal?: AbortSignal;
  /** The answer's object may come without metadata.managedFields (cut out of the text before parsing). */
  dropManagedFields?: boolean;
}

/** An API error: `code` is the HTTP status, `body` the parsed Status (or the raw text). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly code: number;
  readonly body: unknown;
  constructor(code: number, message: string, body: unknown) {
    super(message);
    this.code = code;
    this.body = body;
  }
}

/** The kube-apiserver's own default request timeout (--request-timeout): an answer later than this is not coming. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** A watch with no bytes for this long is ended as a TimeoutError and resumed (client-node's Watch does the same). */
export const WATCH_INACTIVITY_MS = 30_000;

export type WatchCallback = (phase: string, obj: any, event?: any) => void;

function withQuery(path: string, query: Query | undefined): string {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString("utf8");
}

function timeoutError(ms: number): Error {
  return Object.assign(new Error(`watch: no data for ${ms / 1000} s`), { name: "TimeoutError" });
}

export class KubeClient {
  readonly #transport: Transport;
  readonly #watchInactivityMs: number;
  #access: ClusterAccess | undefined;

  constructor(transport: Transport, opts: { watchInactivityMs?: number } = {}) {
    this.#transport = transport;
    this.#watchInactivityMs = opts.watchInactivityMs ?? WATCH_INACTIVITY_MS;
  }

  /**
   * The client for this process's environment: $KUBECONFIG, ~/.kube/config or the in-cluster service
   * account through the direct transport; client-node's KubeConfig for what only it understands.
   */
  static async fromEnvironment(env: NodeJS.ProcessEnv = process.env): Promise<KubeClient> {
    // Loaded here, not at the top: a client built from given access (the leader-election thread) needs no kubeconfig parser.
    const { resolveAccess } = await import("./access.ts");
    const fs: FileSystem = { exists: existsSync, read: (p) => readFileSync(p, "utf8") };
    const resolved = resolveAccess(env, fs, env.HOME ?? homedir());
    if (resolved.kind === "fallback") return new KubeClient(await clientNodeTransport(resolved.reason, env));
    const client = new KubeClient(new DirectTransport(resolved.access));
    client.#access = resolved.access;
    return client;
  }

  /** A client on already resolved credentials (plain data, so they can be handed to another thread). */
  static fromAccess(access: ClusterAccess): KubeClient {
    const client = new KubeClient(new DirectTransport(access));
    client.#access = access;
    return client;
  }

  /** The credentials this client was built from, when the direct transport serves them (not client-node's). */
  get access(): ClusterAccess | undefined {
    return this.#access;
  }

  /** For logs: server, credential source, and which transport. */
  get description(): string {
    return this.#transport.description;
  }

  close(): void {
    this.#transport.close();
  }

  async #send(method: string, path: string, opts: RequestOptions, accept: string): Promise<{ status: number; text: string }> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.#transport.send({
      method,
      path: withQuery(path, opts.query),
      headers: { accept, ...(body !== undefined ? { "content-type": opts.contentType ?? "application/json" } : {}) },
      ...(body !== undefined ? { body } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    const text = await readAll(res.body);
    if (res.status < 200 || res.status > 299) {
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not a Status object; keep the text
      }
      const msg = (parsed as { message?: unknown } | undefined)?.message;
      throw new ApiError(res.status, `${method} ${path}: HTTP ${res.status}: ${typeof msg === "string" ? msg : text.slice(0, 200)}`, parsed);
    }
    return { status: res.status, text };
  }

  /** One request with a JSON answer. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const { text } = await this.#send(method, path, opts, "application/json");
    if (!text) return undefined as T;
    return opts.dropManagedFields ? parseObjectWithoutManagedFields<T>(text) : (JSON.parse(text) as T);
  }

  /** One request with a text answer (pods/log). */
  async requestText(method: string, path: string, opts: RequestOptions = {}): Promise<string> {
    return (await this.#send(method, path, opts, "text/plain, */*")).text;
  }

  get<T>(path: string, opts?: RequestOptions): Promise<T> {
    return this.request<T>("GET", path, opts);
  }

  /**
   * Watch `path` (the informer's WatchLike): `callback(type, object, event)` per event, `done(err)` once at the
   * end: null for a clean end, a TimeoutError after 30 s without bytes (the informer resumes
   * from its resourceVersion, as it did with client-node's Watch), the error otherwise (with `statusCode`
   * when the API server refused the watch). The returned controller ends the watch. With `dropManagedFields`, each
   * event's managedFields is cut out of its text before parsing (watch-text.ts).
   */
  async watch(path: string, query: Query, callback: WatchCallback, done: (err: unknown) => void, opts: WatchOptions = {}): Promise<AbortController> {
    const dropManagedFields = opts.dropManagedFields === true;
    const controller = new AbortController();
    let finished = false;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      controller.abort();
      done(timedOut ? timeoutError(this.#watchInactivityMs) : err);
    };
    // One timer per watch, pushed back on every chunk (refresh) rather than a new timer per chunk: a busy watch
    // receives thousands of chunks a minute.
    const arm = () => {
      if (timer) timer.refresh();
      else
        timer = setTimeout(() => {
          timedOut = true;
          finish(null);
        }, this.#watchInactivityMs).unref();
    };
    controller.signal.addEventListener("abort", () => finish(null), { once: true });
    arm();
    try {
      const res = await this.#transport.send({
        method: "GET",
        path: withQuery(path, { ...query, watch: true }),
        headers: { accept: "application/json" },
        signal: controller.signal,
        timeoutMs: 0,
      });
      if (res.status !== 200) {
        const text = await readAll(res.body).catch(() => "");
        throw Object.assign(new Error(`watch ${path}: HTTP ${res.status}: ${text.slice(0, 200)}`), { statusCode: res.status });
      }
      arm();
      let pending = "";
      res.body.on("data", (chunk: Buffer) => {
        if (finished) return;
        arm();
        pending += chunk.toString("utf8");
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0 && !finished) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line.trim()) continue;
          let event: { type?: string; object?: unknown };
          try {
            event = parseWatchLine(line, dropManagedFields);
          } catch {
            continue; // a torn line is not an event; the informer relists on errors anyway
          }
          callback(event.type ?? "", event.object, event);
        }
      });
      res.body.on("end", () => finish(null));
      res.body.on("error", (err) => finish(controller.signal.aborted ? null : err));
      res.body.on("close", () => finish(null));
      if (finished) res.body.destroy();
      else controller.signal.addEventListener("abort", () => res.body.destroy(), { once: true });
    } catch (err) {
      finish(controller.signal.aborted && !timedOut ? null : err);
    }
    return controller;
  }
}
