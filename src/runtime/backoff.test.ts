import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, ExponentialBackoff, FakeClock, sleep } from "./backoff.ts";

describe("backoffDelay", () => {
  it("doubles from base and caps at max", () => {
    const o = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 100].map((n) => backoffDelay(n, o)),
      [100, 200, 400, 800, 1000, 1000, 1000],
    );
  });

  it("never overflows for huge attempt counts", () => {
    assert.equal(backoffDelay(1e9, { baseMs: 5, maxMs: 300_000 }), 300_000);
    assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, { baseMs: 5, maxMs: 300_000, factor: 10 }), 300_000);
  });

  it("honours a custom factor", () => {
    assert.equal(backoffDelay(2, { baseMs: 10, maxMs: 1e6, factor: 3 }), 90);
  });

  it("jitter draws from [d*(1-j), d] and never exceeds the cap", () => {
    const o = { baseMs: 1000, maxMs: 30_000, jitter: 0.5 };
    assert.equal(
      backoffDelay(0, o, () => 0),
      1000,
    );
    assert.equal(
      backoffDelay(0, o, () => 1),
      500,
    );
    assert.equal(
      backoffDelay(10, o, () => 0),
      30_000,
    );
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(i % 20, o);
      assert.ok(d >= 500 && d <= 30_000, String(d));
    }
  });
});

describe("ExponentialBackoff", () => {
  it("grows with next() and resets", () => {
    const b = new ExponentialBackoff({ baseMs: 1, maxMs: 4 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [1, 2, 4, 4]);
    assert.equal(b.attempts, 4);
    b.reset();
    assert.equal(b.next(), 1);
  });
});

describe("FakeClock", () => {
  it("fires timers in time order, including ones scheduled while advancing", () => {
    const c = new FakeClock(0);
    const log: string[] = [];
    c.setTimeout(() => log.push(`b@${c.now()}`), 20);
    c.setTimeout(() => {
      log.push(`a@${c.now()}`);
      c.setTimeout(() => log.push(`c@${c.now()}`), 5);
    }, 10);
    const t = c.setTimeout(() => log.push("cancelled"), 12);
    t.cancel();
    c.advance(100);
    assert.deepEqual(log, ["a@10", "c@15", "b@20"]);
    assert.equal(c.now(), 100);
  });
});

describe("sleep", () => {
  it("resolves after the delay on the given clock", async () => {
    const c = new FakeClock(0);
    let done = false;
    const p = sleep(50, undefined, c).then(() => (done = true));
    c.advance(49);
    await Promise.resolve();
    assert.equal(done, false);
    c.advance(1);
    await p;
    assert.equal(done, true);
  });

  it("resolves early when aborted and cancels its timer", async () => {
    const c = new FakeClock(0);
    const ac = new AbortController();
    const p = sleep(1e9, ac.signal, c);
    ac.abort();
    await p;
    assert.equal(c.pending(), 0);
    await sleep(1e9, ac.signal, c); // already aborted
  });
});
