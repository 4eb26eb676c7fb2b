import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { METRICS_CONTENT_TYPE, startHttpServer } from "./http-server.ts";

describe("http server", () => {
  it("serves /healthz, /readyz (from ready()), /metrics with the Prometheus content type", async () => {
    let ready = false;
    const srv = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      ready: () => ready,
      metrics: async () => "# TYPE up gauge\nup 1\n",
    });
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      const h = await fetch(`${base}/healthz`);
      assert.equal(h.status, 200);
      assert.equal(await h.text(), "ok\n");
      assert.equal((await fetch(`${base}/readyz`)).status, 503);
      ready = true;
      assert.equal((await fetch(`${base}/readyz?verbose`)).status, 200);
      const m = await fetch(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.equal(m.headers.get("content-type"), METRICS_CONTENT_TYPE);
      assert.match(m.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      assert.equal(await m.text(), "# TYPE up gauge\nup 1\n");
      const head = await fetch(`${base}/healthz`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
      assert.equal((await fetch(`${base}/healthz`, { method: "POST" })).status, 405);
    } finally {
      await srv.close();
    }
  });

  it("a throwing ready() or metrics() gives 503 / 500; no metrics callback gives 404", async () => {
    const srv = await startHttpServer({
      host: "127.0.0.1",
      port: 0,
      ready: async () => {
        throw new Error("x");
      },
    });
    const srv2 = await startHttpServer({ host: "127.0.0.1", port: 0, metrics: () => Promise.reject(new Error("y")) });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${srv.port}/readyz`)).status, 503);
      assert.equal((await fetch(`http://127.0.0.1:${srv.port}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${srv2.port}/metrics`)).status, 500);
      assert.equal((await fetch(`http://127.0.0.1:${srv2.port}/readyz`)).status, 200, "ready by default");
    } finally {
      await srv.close();
      await srv2.close();
    }
  });

  it("close() frees the port; a taken port rejects", async () => {
    const srv = await startHttpServer({ host: "127.0.0.1", port: 0 });
    await assert.rejects(startHttpServer({ host: "127.0.0.1", port: srv.port }), /EADDRINUSE/);
    await srv.close();
    const again = await startHttpServer({ host: "127.0.0.1", port: srv.port });
    await again.close();
  });
});
