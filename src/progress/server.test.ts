/**
 * The progress endpoint's HTTP behaviour and write scheduling, on loopback with
 * an in-memory status sink (the e2e suites cover the real TokenReview and API).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { AuthResult } from "./auth.ts";
import { ProgressServer, type ReportResult } from "./server.ts";

const writes: Array<{ key: string; status: Record<string, unknown> }> = [];
const results: ReportResult[] = [];
let server: ProgressServer;

const job = (name: string) =>
  ({ apiVersion: "finetune.dev/v1alpha1", kind: "FineTuneJob", metadata: { name, namespace: "ns" }, spec: {} }) as unknown as FineTuneJobObject;

before(async () => {
  server = new ProgressServer({
    api: {
      patchStatus: async (namespace: string, name: string, status: Record<string, unknown>) => {
        writes.push({ key: `${namespace}/${name}`, status });
        return {};
      },
    },
    auth: {
      authenticate: async (token: string): Promise<AuthResult> => (token === "good" ? { ok: true } : { ok: false, status: 401, reason: "token rejected" }),
    },
    getJob: (_ns, name) => (name.startsWith("job-") ? job(name) : undefined),
    logger: pino({ level: "silent" }),
    host: "127.0.0.1",
    port: 0,
    minReportIntervalMs: 60_000,
    writeIntervalMs: 3_600_000, // flushed by hand below
    maxWritesPerSecond: 3 / 3600, // 3 writes per flush
    onReport: (r) => results.push(r),
  });
  await server.start();
});

after(() => server.close());

async function post(name: string, body: unknown, token = "good"): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.port}/v1/progress/ns/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  await res.text();
  return res.status;
}

describe("ProgressServer", () => {
  test("rejects without effect: bad token, unknown job, malformed body, wrong path", async () => {
    assert.equal(await post("job-a", { step: 1 }, "bad"), 401);
    assert.equal(await post("nosuchjob", { step: 1 }), 404);
    assert.equal(await post("job-a", "{"), 400);
    const res = await fetch(`http://127.0.0.1:${server.port}/v1/progress/ns`, { method: "POST" });
    assert.equal(res.status, 404);
    await res.text();
    assert.equal(server.pendingWrites, 0);
    assert.deepEqual(results.splice(0), ["unauthorized", "not_found", "invalid"]);
  });

  test("one report per job per interval; the final report may bypass the limit once", async () => {
    assert.equal(await post("job-a", { step: 10, totalSteps: 100 }), 202);
    assert.equal(await post("job-a", { step: 11, totalSteps: 100 }), 429, "too soon");
    assert.equal(await post("job-a", { step: 100, totalSteps: 100, final: true }), 202, "the final report is not lost");
    assert.equal(await post("job-a", { step: 100, totalSteps: 100, final: true }), 429, "but only once");
    assert.deepEqual(results.splice(0), ["accepted", "rate_limited", "accepted", "rate_limited"]);
    await server.flush();
    const mine = writes.splice(0);
    assert.equal(mine.length, 1, "coalesced into one write");
    assert.equal((mine[0]!.status.progress as { step: number }).step, 100, "carrying the newest report");
  });

  test("writes per flush stay within the budget; waiting jobs are written next", async () => {
    for (let i = 0; i < 5; i++) assert.equal(await post(`job-${i}`, { step: i }), 202);
    await server.flush();
    assert.equal(writes.length, 3, "budget of 3 writes per flush");
    assert.equal(server.pendingWrites, 2);
    await server.flush();
    assert.equal(writes.length, 5);
    assert.deepEqual(new Set(writes.map((w) => w.key)).size, 5, "every job written once");
    writes.length = 0;
  });

  test("losses of coalesced reports all reach status.lossHistory, in the same write; a NaN is carried as its step", async () => {
    assert.equal(await post("job-loss", { step: 10, loss: 6.7, lossStep: 10 }), 202);
    assert.equal(await post("job-loss", { step: 12, loss: 6.1, lossStep: 12, lossNonFiniteStep: 11, final: true }), 202, "final bypasses the rate limit");
    await server.flush();
    const mine = writes.splice(0);
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0]!.status.lossHistory, {
      points: [
        { step: 10, loss: 6.7 },
        { step: 12, loss: 6.1 },
      ],
      nonFiniteStep: 11,
    });
    assert.equal((mine[0]!.status.progress as { step: number }).step, 12);
  });
});
