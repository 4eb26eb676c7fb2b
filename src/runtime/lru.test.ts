import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LruCache } from "./lru.ts";

describe("LruCache", () => {
  it("computes once per key while it stays cached", () => {
    const c = new LruCache<number>(2);
    let computed = 0;
    const get = (k: string) => c.getOrCompute(k, () => ++computed);
    assert.equal(get("a"), 1);
    assert.equal(get("a"), 1);
    assert.deepEqual([c.hits, c.misses], [1, 1]);
  });

  it("evicts the least recently used entry beyond its bound", () => {
    const c = new LruCache<string>(2);
    c.getOrCompute("a", () => "a1");
    c.getOrCompute("b", () => "b1");
    c.getOrCompute("a", () => "a2"); // a is now the most recent
    c.getOrCompute("c", () => "c1"); // evicts b
    assert.equal(c.size, 2);
    assert.equal(
      c.getOrCompute("a", () => "a3"),
      "a1",
      "a survived",
    );
    assert.equal(
      c.getOrCompute("b", () => "b2"),
      "b2",
      "b was evicted and recomputed",
    );
  });
});
