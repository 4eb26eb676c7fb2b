import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ProgressCoalescer } from "./coalescer.ts";

describe("ProgressCoalescer", () => {
  test("keeps only the newest report per job", () => {
    const c = new ProgressCoalescer<number>(10);
    c.put("a", 1);
    c.put("a", 2);
    c.put("b", 7);
    assert.deepEqual(c.take(0).sort(), [
      ["a", 2],
      ["b", 7],
    ]);
    assert.equal(c.pending, 0);
    assert.deepEqual(c.take(1), [], "nothing left to write");
  });

  test("writes at most the budget per flush; the rest wait with their newest report", () => {
    const c = new ProgressCoalescer<number>(2);
    for (const k of ["a", "b", "c", "d"]) c.put(k, 1);
    const first = c.take(100).map(([k]) => k);
    assert.equal(first.length, 2);
    for (const k of ["a", "b", "c", "d"]) c.put(k, 2);
    const second = c.take(200);
    assert.deepEqual(
      second.map(([k]) => k).sort(),
      ["a", "b", "c", "d"].filter((k) => !first.includes(k)).sort(),
      "never-written jobs go before recently written ones",
    );
    assert.ok(
      second.every(([, v]) => v === 2),
      "the waiting jobs carry their newest report",
    );
    const third = c
      .take(300)
      .map(([k]) => k)
      .sort();
    assert.deepEqual(third, [...first].sort(), "then the ones written longest ago");
  });

  test("total writes stay within budget × flushes however many jobs report", () => {
    const c = new ProgressCoalescer<number>(5);
    let writes = 0;
    const lastWrite = new Map<string, number>();
    for (let flush = 0; flush < 20; flush++) {
      for (let j = 0; j < 100; j++) c.put(`job-${j}`, flush);
      for (const [k] of c.take(flush)) {
        writes++;
        lastWrite.set(k, flush);
      }
    }
    assert.equal(writes, 100, "5 per flush × 20 flushes");
    assert.equal(lastWrite.size, 100, "every job got written: round-robin, no starvation");
  });

  test("a fractional or zero budget still writes one per flush", () => {
    const c = new ProgressCoalescer<number>(0.2);
    c.put("a", 1);
    c.put("b", 1);
    assert.equal(c.take(0).length, 1);
  });

  test("prune forgets jobs not written for a long time, but not one with a waiting report", () => {
    const c = new ProgressCoalescer<number>(1);
    c.put("a", 1);
    c.take(0);
    c.put("x", 1);
    c.take(5);
    c.put("a", 2);
    c.prune(1000, 500);
    c.put("x", 2);
    // Without the prune, a (written at 0) would go before x (written at 5); x was forgotten, so it counts as never written.
    assert.deepEqual(
      c.take(1001).map(([k]) => k),
      ["x"],
    );
    assert.deepEqual(
      c.take(1002).map(([k]) => k),
      ["a"],
    );
  });
});
