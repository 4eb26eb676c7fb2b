import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { distribution, percentile, perMinute } from "./stats.ts";

describe("stats", () => {
  it("nearest-rank percentiles", () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(v, 50), 50);
    assert.equal(percentile(v, 95), 95);
    assert.equal(percentile(v, 99), 99);
    assert.equal(percentile(v, 100), 100);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  it("distribution sorts without touching its input and skips non-finite values", () => {
    const input = [30, 10, Number.NaN, 20];
    assert.deepEqual(distribution(input), { count: 3, min: 10, p50: 20, p95: 30, p99: 30, max: 30, mean: 20 });
    assert.deepEqual(input.slice(0, 2), [30, 10]);
    assert.equal(distribution([]), undefined);
  });

  it("events per minute since a start", () => {
    assert.equal(perMinute([30_000, 60_000], 0), 2);
    assert.equal(perMinute([5]), undefined);
    assert.equal(perMinute([]), undefined);
  });
});
