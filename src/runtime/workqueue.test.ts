import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, FakeClock } from "./backoff.ts";
import { DEFAULT_RATE_LIMIT, WorkQueue, type QueueMetrics } from "./workqueue.ts";

/** Let pending promise callbacks and immediates run. */
async function flush(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}

function recordingMetrics() {
  const m = { adds: 0, depth: [] as number[], latency: [] as number[], work: [] as number[], retries: 0, unfinished: [] as [number, number][] };
  const metrics: QueueMetrics = {
    adds: () => void m.adds++,
    depth: (n) => void m.depth.push(n),
    queueLatency: (s) => void m.latency.push(s),
    workDuration: (s) => void m.work.push(s),
    retries: () => void m.retries++,
    unfinishedWork: (t, l) => void m.unfinished.push([t, l]),
  };
  return { m, metrics };
}

describe("WorkQueue", () => {
  it("deduplicates keys added before processing", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.add("a");
    q.add("a");
    q.add("b");
    q.add("a");
    assert.equal(q.len(), 2);
    const seen: string[] = [];
    q.start(async (k) => void seen.push(k));
    await flush();
    assert.deepEqual(seen, ["a", "b"]);
    assert.equal(q.len(), 0);
  });

  it("processes keys in FIFO order", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    for (const k of ["c", "a", "b"]) q.add(k);
    const seen: string[] = [];
    q.start(async (k) => void seen.push(k));
    await flush();
    assert.deepEqual(seen, ["c", "a", "b"]);
  });

  it("never runs the same key concurrently; a re-add during processing runs once more afterwards", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const gates: Deferred[] = [];
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    q.start(
      async () => {
        calls++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        const g = deferred();
        gates.push(g);
        await g.promise;
        running--;
      },
      { concurrency: 4 },
    );
    q.add("k");
    await flush();
    assert.equal(calls, 1);
    // Re-add three times while processing: marked dirty once, not run concurrently.
    q.add("k");
    q.add("k");
    q.add("k");
    await flush();
    assert.equal(calls, 1);
    assert.equal(q.len(), 0, "dirty key is not on the ready queue while processing");
    gates[0]!.resolve();
    await flush();
    assert.equal(calls, 2, "processed exactly once more");
    gates[1]!.resolve();
    await flush();
    assert.equal(calls, 2);
    assert.equal(maxRunning, 1);
  });

  it("bounds concurrency", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const gates = new Map<string, Deferred>();
    let running = 0;
    let maxRunning = 0;
    q.start(
      async (k) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const g = deferred();
        gates.set(k, g);
        await g.promise;
        running--;
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 10; i++) q.add(`k${i}`);
    await flush();
    assert.equal(running, 3);
    assert.equal(q.inFlight(), 3);
    assert.equal(q.len(), 7);
    for (let i = 0; i < 10; i++) {
      gates.get(`k${i}`)?.resolve();
      await flush();
    }
    await flush();
    assert.equal(maxRunning, 3);
    assert.equal(running, 0);
    assert.equal(gates.size, 10);
  });

  it("pause hands out nothing new (in-flight keys finish, adds still deduplicate); resume continues in order", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    const gate = deferred();
    const seen: string[] = [];
    q.start(
      async (k) => {
        seen.push(k);
        if (k === "a") await gate.promise;
      },
      { concurrency: 2 },
    );
    q.add("a");
    await flush();
    q.pause();
    q.add("b");
    q.add("c");
    q.add("b");
    gate.resolve();
    await flush();
    assert.deepEqual(seen, ["a"]);
    assert.equal(q.isPaused(), true);
    assert.equal(q.len(), 2);
    q.resume();
    await flush();
    assert.deepEqual(seen, ["a", "b", "c"]);
    assert.equal(q.isPaused(), false);
  });

  it("addAfter delays the add and keeps only the earliest pending time per key", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const seen: [string, number][] = [];
    q.start(async (k) => void seen.push([k, clock.now()]));
    const t0 = clock.now();
    q.addAfter("a", 1000);
    q.addAfter("a", 500); // earlier: wins
    q.addAfter("a", 2000); // later: ignored
    q.addAfter("b", 700);
    assert.equal(q.delayed(), 2);
    clock.advance(499);
    await flush();
    assert.deepEqual(seen, []);
    clock.advance(1);
    await flush();
    assert.deepEqual(seen, [["a", t0 + 500]]);
    clock.advance(200);
    await flush();
    assert.deepEqual(seen, [
      ["a", t0 + 500],
      ["b", t0 + 700],
    ]);
    // The superseded 1000 ms and the ignored 2000 ms entries never fire.
    clock.advance(5000);
    await flush();
    assert.equal(seen.length, 2);
    assert.equal(q.delayed(), 0);
    assert.equal(clock.pending(), 0, "no timer left behind");
  });

  it("addAfter with ms <= 0 adds immediately", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.addAfter("a", 0);
    q.addAfter("b", -5);
    assert.equal(q.len(), 2);
  });

  it("a delayed add for a key already queued is deduplicated when it fires", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.add("a");
    q.addAfter("a", 10);
    clock.advance(10);
    assert.equal(q.len(), 1);
  });

  it("addRateLimited backs off exponentially up to the cap; forget resets", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock, rateLimit: { baseMs: 5, maxMs: 40 } });
    const times: number[] = [];
    const requeues: number[] = [];
    q.start(async (k) => {
      times.push(clock.now());
      requeues.push(q.numRequeues(k));
      if (times.length <= 6) throw new Error("fail");
    });
    q.add("k");
    await flush();
    while (times.length < 7) {
      clock.advance(1);
      await flush(2);
    }
    const delays = times.slice(1).map((t, i) => t - times[i]!);
    assert.deepEqual(delays, [5, 10, 20, 40, 40, 40]);
    assert.deepEqual(requeues, [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(q.numRequeues("k"), 0, "success forgets");
    // forget() resets a key's backoff explicitly too.
    q.addRateLimited("x");
    q.addRateLimited("x");
    assert.equal(q.numRequeues("x"), 2);
    q.forget("x");
    assert.equal(q.numRequeues("x"), 0);
    await q.shutdown();
  });

  it("default rate limit is 5 ms doubling, capped at 5 minutes", async () => {
    assert.deepEqual(DEFAULT_RATE_LIMIT, { baseMs: 5, maxMs: 300_000, factor: 2 });
    assert.deepEqual(
      [0, 1, 2, 3].map((n) => backoffDelay(n, DEFAULT_RATE_LIMIT)),
      [5, 10, 20, 40],
    );
    assert.equal(backoffDelay(30, DEFAULT_RATE_LIMIT), 300_000);
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addRateLimited("k");
    clock.advance(4);
    assert.equal(q.len(), 0);
    clock.advance(1);
    assert.equal(q.len(), 1);
  });

  it("a throwing handler is retried with backoff; success forgets the key", async () => {
    const clock = new FakeClock();
    const { m, metrics } = recordingMetrics();
    const q = new WorkQueue({ clock, metrics, rateLimit: { baseMs: 100, maxMs: 1000 } });
    let calls = 0;
    q.start(async () => {
      calls++;
      if (calls <= 2) throw new Error("boom");
    });
    q.add("k");
    await flush();
    assert.equal(calls, 1);
    assert.equal(q.numRequeues("k"), 1);
    clock.advance(99);
    await flush();
    assert.equal(calls, 1);
    clock.advance(1);
    await flush();
    assert.equal(calls, 2);
    assert.equal(q.numRequeues("k"), 2);
    clock.advance(199);
    await flush();
    assert.equal(calls, 2);
    clock.advance(1);
    await flush();
    assert.equal(calls, 3);
    assert.equal(q.numRequeues("k"), 0, "success forgets");
    assert.equal(m.retries, 2);
  });

  it("requeueAfterMs re-adds the key after the delay", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    let calls = 0;
    q.start(async () => {
      calls++;
      return calls === 1 ? { requeueAfterMs: 1000 } : undefined;
    });
    q.add("k");
    await flush();
    assert.equal(calls, 1);
    clock.advance(999);
    await flush();
    assert.equal(calls, 1);
    clock.advance(1);
    await flush();
    assert.equal(calls, 2);
    clock.advance(10_000);
    await flush();
    assert.equal(calls, 2);
  });

  it("does not run the handler synchronously inside add()", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    let calls = 0;
    q.start(async () => void calls++);
    q.add("k");
    assert.equal(calls, 0);
    await flush();
    assert.equal(calls, 1);
  });

  it("shutdown waits for in-flight handlers, drops queued and delayed work, ignores later adds", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    const gate = deferred();
    const seen: string[] = [];
    let finished = false;
    q.start(async (k) => {
      seen.push(k);
      if (k === "slow") {
        await gate.promise;
        finished = true;
      }
    });
    q.add("slow");
    await flush();
    q.add("queued");
    q.addAfter("later", 10);
    let done: boolean | undefined;
    const p = q.shutdown({ drainTimeoutMs: 5000 }).then((v) => (done = v));
    await flush();
    assert.equal(done, undefined, "still waiting for the in-flight handler");
    q.add("after-shutdown");
    assert.equal(q.len(), 0);
    gate.resolve();
    await p;
    assert.equal(done, true);
    assert.equal(finished, true);
    clock.advance(100);
    await flush();
    assert.deepEqual(seen, ["slow"]);
    assert.equal(clock.pending(), 0);
  });

  it("shutdown gives up after drainTimeoutMs", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.start(() => new Promise(() => {})); // never finishes
    q.add("stuck");
    await flush();
    const t0 = Date.now();
    const drained = await q.shutdown({ drainTimeoutMs: 30 });
    assert.equal(drained, false);
    assert.ok(Date.now() - t0 >= 25);
  });

  it("shutdown with nothing in flight resolves at once", async () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    assert.equal(await q.shutdown(), true);
  });

  it("resync re-adds keys (deduplicated) and resyncEvery repeats until shutdown", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.add("a");
    q.resync(["a", "b", "b"]);
    assert.equal(q.len(), 2);
    const seen: string[] = [];
    q.start(async (k) => void seen.push(k));
    await flush();
    seen.length = 0;
    let calls = 0;
    q.resyncEvery(1000, () => {
      calls++;
      return ["x", "y"];
    });
    clock.advance(999);
    await flush();
    assert.deepEqual(seen, []);
    clock.advance(1);
    await flush();
    assert.deepEqual(seen, ["x", "y"]);
    clock.advance(1000);
    await flush();
    assert.equal(calls, 2);
    await q.shutdown();
    clock.advance(5000);
    assert.equal(calls, 2);
    assert.equal(clock.pending(), 0);
  });

  it("resyncEvery returns a stop function", async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    let calls = 0;
    const stop = q.resyncEvery(10, () => {
      calls++;
      return [];
    });
    clock.advance(25);
    stop();
    clock.advance(100);
    assert.equal(calls, 2);
  });

  it("reports metrics: adds, depth, queue latency, work duration, unfinished work", async () => {
    const clock = new FakeClock();
    const { m, metrics } = recordingMetrics();
    const q = new WorkQueue({ clock, metrics });
    q.add("a");
    q.add("a"); // deduplicated: not counted
    q.add("b");
    assert.equal(m.adds, 2);
    assert.deepEqual(m.depth, [1, 2]);
    clock.advance(250);
    const gate = deferred();
    q.start(async (k) => {
      if (k === "a") await gate.promise;
    });
    await flush();
    assert.deepEqual(m.latency, [0.25]);
    clock.advance(1500);
    q.updateUnfinishedWork();
    assert.deepEqual(m.unfinished, [[1.5, 1.5]]);
    gate.resolve();
    await flush();
    assert.deepEqual(m.latency, [0.25, 1.75]);
    assert.equal(m.work[0], 1.5);
    assert.equal(m.depth[m.depth.length - 1], 0);
  });

  it("start twice throws", () => {
    const q = new WorkQueue({ clock: new FakeClock() });
    q.start(async () => {});
    assert.throws(() => q.start(async () => {}));
  });
});
