/**
 * The lean REST client against a real HTTP server on localhost: requests, errors, connection reuse,
 * token re-reads, watches, and the client-node fallback for an exec-plugin kubeconfig.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { statusCode } from "../runtime/errors.ts";
import { ApiError, KubeClient } from "./client.ts";
import { errorMessage } from "./errors.ts";
import { DirectTransport, TOKEN_REREAD_MS } from "./transport.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
  socket: number;
}

describe("KubeClient (against a local HTTP server)", () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  let sockets = 0;
  let handler: (req: IncomingMessage, res: ServerResponse, body: string) => void = () => {};

  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: (req.socket as unknown as { id: number }).id });
        handler(req, res, body);
      });
    });
    server.on("connection", (s) => ((s as unknown as { id: number }).id = ++sockets));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );

  const json = (res: ServerResponse, code: number, obj: unknown) => {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(obj));
  };
  const client = (token = "t0") => new KubeClient(new DirectTransport({ source: "test", server: base, token: { data: token } }), { watchInactivityMs: 300 });

  it("sends JSON with the bearer token, encodes the query, reuses one connection", async () => {
    seen.length = 0;
    handler = (req, res, body) => json(res, 200, { echo: body ? JSON.parse(body) : null, url: req.url });
    const c = client();
    const before = sockets;
    const got = await c.request<{ echo: unknown; url: string }>("PATCH", "/apis/x/v1/namespaces/n/things/a/status", {
      body: { status: { phase: "Running" } },
      contentType: "application/merge-patch+json",
      query: { fieldSelector: "metadata.name=a b", limit: 1, skipped: undefined },
    });
    assert.deepEqual(got.echo, { status: { phase: "Running" } });
    assert.equal(got.url, "/apis/x/v1/namespaces/n/things/a/status?fieldSelector=metadata.name%3Da+b&limit=1");
    assert.equal(seen[0]!.headers["content-type"], "application/merge-patch+json");
    assert.equal(seen[0]!.headers.authorization, "Bearer t0");
    for (let i = 0; i < 5; i++) await c.get("/api/v1/namespaces/n/configmaps/x");
    assert.equal(sockets - before, 1, "six sequential requests on one keep-alive connection");
    c.close();
  });

  it("answers errors as ApiError: code (statusCode) and the Status body (errorMessage)", async () => {
    handler = (_req, res) => json(res, 409, { kind: "Status", code: 409, reason: "AlreadyExists", message: 'jobs.batch "a" already exists' });
    const c = client();
    const err = await c.request("POST", "/apis/batch/v1/namespaces/n/jobs", { body: {} }).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(statusCode(err), 409);
    assert.equal(errorMessage(err), 'jobs.batch "a" already exists');
    handler = (_req, res) => {
      res.writeHead(500);
      res.end("boom");
    };
    const plain = await c.get("/x").catch((e: unknown) => e);
    assert.equal(statusCode(plain), 500);
    assert.equal((plain as ApiError).body, "boom");
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("line 1\nline 2\n");
    };
    assert.equal(await c.requestText("GET", "/api/v1/namespaces/n/pods/p/log", { query: { tailLines: 2 } }), "line 1\nline 2\n");
    c.close();
  });

  it("re-reads a token file once it is a minute old", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kube-token-"));
    const file = join(dir, "token");
    writeFileSync(file, "first\n");
    let now = 1_000_000;
    handler = (_req, res) => json(res, 200, {});
    const c = new KubeClient(new DirectTransport({ source: "test", server: base, token: { file } }, { now: () => now }));
    seen.length = 0;
    await c.get("/a");
    writeFileSync(file, "second\n");
    now += TOKEN_REREAD_MS - 1;
    await c.get("/a");
    now += 1;
    await c.get("/a");
    assert.deepEqual(
      seen.map((s) => s.headers.authorization),
      ["Bearer first", "Bearer first", "Bearer second"],
    );
    c.close();
  });

  it("watch: events split across chunks, a clean end, a refused watch, and the inactivity timeout", async () => {
    const c = client();
    const run = (path: string) =>
      new Promise<{ events: string[]; err: unknown }>((resolve) => {
        const events: string[] = [];
        void c.watch(
          path,
          { resourceVersion: "5", allowWatchBookmarks: true },
          (type, obj) => events.push(`${type}:${obj?.metadata?.name ?? obj?.metadata?.resourceVersion}`),
          (err) => resolve({ events, err }),
        );
      });
    handler = (req, res) => {
      if (req.url!.startsWith("/gone")) return json(res, 410, { kind: "Status", code: 410 });
      res.writeHead(200, { "content-type": "application/json" });
      const a = JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } });
      const b = JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } });
      res.write(a.slice(0, 10));
      setTimeout(() => res.write(`${a.slice(10)}\n${b}\n`), 20);
      if (req.url!.startsWith("/idle")) return; // never ends: the client's inactivity timer must
      setTimeout(() => res.end(), 40);
    };
    seen.length = 0;
    const clean = await run("/api/v1/configmaps");
    assert.deepEqual(clean.events, ["ADDED:a", "BOOKMARK:9"]);
    assert.equal(clean.err, null);
    assert.equal(seen[0]!.url, "/api/v1/configmaps?resourceVersion=5&allowWatchBookmarks=true&watch=true");
    const gone = await run("/gone");
    assert.equal(statusCode(gone.err), 410);
    const idle = await run("/idle");
    assert.deepEqual(idle.events, ["ADDED:a", "BOOKMARK:9"]);
    assert.equal((idle.err as Error).name, "TimeoutError");
    c.close();
  });

  it("watch with dropManagedFields: a real pod event arrives without managedFields, the rest as the server sent it", async () => {
    const line = readFileSync(new URL("./testdata/watch-events-1.33.jsonl", import.meta.url), "utf8").split("\n")[0]!;
    handler = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${line}\n`);
    };
    const c = client();
    const watched = (dropManagedFields: boolean) =>
      new Promise<any[]>((resolve) => {
        const objects: any[] = [];
        void c.watch(
          "/api/v1/pods",
          {},
          (_type, obj) => objects.push(obj),
          () => resolve(objects),
          { dropManagedFields },
        );
      });
    const [dropped] = await watched(true);
    const [kept] = await watched(false);
    assert.ok(kept.metadata.managedFields.length > 0);
    assert.equal(dropped.metadata.managedFields, undefined);
    delete kept.metadata.managedFields;
    assert.deepEqual(dropped, kept);
    c.close();
  });

  it("request with dropManagedFields: a real object answer without managedFields, the rest as the server sent it", async () => {
    const line = readFileSync(new URL("./testdata/watch-events-1.33.jsonl", import.meta.url), "utf8").split("\n")[1]!;
    const answer = line.slice(line.indexOf('"object":') + '"object":'.length, -1);
    handler = (_req, res) => {
      res.writeHead(201, { "content-type": "application/json" });
      res.end(answer);
    };
    const c = client();
    const dropped = await c.request<any>("POST", "/apis/batch/v1/namespaces/ml/jobs", { body: {}, dropManagedFields: true });
    const kept = await c.request<any>("POST", "/apis/batch/v1/namespaces/ml/jobs", { body: {} });
    assert.ok(kept.metadata.managedFields.length > 0);
    assert.equal(dropped.metadata.managedFields, undefined);
    delete kept.metadata.managedFields;
    assert.deepEqual(dropped, kept);
    c.close();
  });

  it("an exec-plugin kubeconfig goes through client-node, which runs the plugin and signs the request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kube-exec-"));
    const credential = JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1beta1", kind: "ExecCredential", status: { token: "from-exec" } });
    const cfg = join(dir, "config");
    writeFileSync(
      cfg,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        "current-context": "x",
        clusters: [{ name: "c", cluster: { server: base, "insecure-skip-tls-verify": true } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        users: [
          {
            name: "u",
            user: {
              exec: {
                apiVersion: "client.authentication.k8s.io/v1beta1",
                command: process.execPath,
                args: ["-e", `process.stdout.write(${JSON.stringify(credential)})`],
              },
            },
          },
        ],
      }),
    );
    const c = await KubeClient.fromEnvironment({ KUBECONFIG: cfg });
    assert.match(c.description, /client-node/);
    handler = (_req, res) => json(res, 200, { ok: true });
    seen.length = 0;
    assert.deepEqual(await c.get("/api/v1/namespaces/n/configmaps/x"), { ok: true });
    assert.equal(seen[0]!.headers.authorization, "Bearer from-exec");
    c.close();
  });
});
