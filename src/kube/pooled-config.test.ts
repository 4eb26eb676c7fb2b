/**
 * Connection reuse, measured at a loopback HTTPS server: with client-node's own
 * KubeConfig every API call is a new TLS connection; with PooledKubeConfig the
 * calls share one pool (and a refreshed pool replaces it after refreshMs).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { PooledKubeConfig } from "./pooled-config.ts";

let dir: string;
let server: Server;
let handshakes = 0;
let ca: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "pooled-config-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-days",
      "1",
    ],
    { stdio: "ignore" },
  );
  ca = readFileSync(join(dir, "cert.pem"), "utf8");
  server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: ca }, (req, res) => {
    req.resume();
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ kind: "NamespaceList", apiVersion: "v1", metadata: {}, items: [] }));
  });
  server.on("secureConnection", () => handshakes++);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
});

after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function load<T extends KubeConfig>(kc: T): T {
  const port = (server.address() as { port: number }).port;
  kc.loadFromOptions({
    clusters: [{ name: "c", server: `https://127.0.0.1:${port}`, caData: Buffer.from(ca).toString("base64"), skipTLSVerify: false }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

async function calls(kc: KubeConfig, n: number): Promise<number> {
  const before = handshakes;
  const api = kc.makeApiClient(CoreV1Api);
  for (let i = 0; i < n; i++) {
    await api.listNamespace();
  }
  return handshakes - before;
}

describe("PooledKubeConfig", () => {
  it("client-node's KubeConfig opens a TLS connection per call (the cost this class removes)", async () => {
    assert.equal(await calls(load(new KubeConfig()), 5), 5);
  });

  it("reuses pooled connections for sequential calls", async () => {
    const kc = load(new PooledKubeConfig());
    // undici may open a second socket while the first response is being released; never one per call.
    assert.ok((await calls(kc, 20)) <= 2);
    assert.equal(await calls(kc, 20), 0, "later calls open no connection at all");
    assert.equal(kc.poolCount, 1);
  });

  it("replaces the pool after refreshMs, so rotated certificates are read again", async () => {
    let now = 0;
    const kc = load(new PooledKubeConfig({ refreshMs: 1000, now: () => now }));
    assert.ok((await calls(kc, 10)) <= 2);
    assert.equal(await calls(kc, 10), 0);
    now = 1500;
    const refreshed = await calls(kc, 10);
    assert.ok(refreshed >= 1 && refreshed <= 2, `a new pool, then reused (${refreshed} connections)`);
  });
});
