import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VersionedMemo } from "./versioned-memo.ts";

describe("VersionedMemo", () => {
  it("computes once per key and version, and again when the version moves", () => {
    const memo = new VersionedMemo<string>();
    let computed = 0;
    const get = (key: string, version: string) => memo.get(key, version, () => `${key}@${version}#${++computed}`);
    assert.equal(get("ns/a", "1"), "ns/a@1#1");
    assert.equal(get("ns/a", "1"), "ns/a@1#1");
    assert.equal(get("ns/b", "1"), "ns/b@1#2");
    assert.equal(get("ns/a", "2"), "ns/a@2#3", "a new version is computed");
    assert.equal(get("ns/a", "2"), "ns/a@2#3");
    assert.deepEqual([memo.hits, memo.misses, memo.size], [2, 3, 2], "one entry per key, not per version");
  });

  it("keeps every key however many there are (no eviction by recency), until forgotten", () => {
    const memo = new VersionedMemo<number>();
    for (let round = 0; round < 3; round++) for (let i = 0; i < 5000; i++) memo.get(`ns/job-${i}`, "1", () => i);
    assert.deepEqual([memo.misses, memo.hits, memo.size], [5000, 10000, 5000], "round-robin passes over 5000 jobs hit");
    memo.forget("ns/job-7");
    assert.equal(memo.size, 4999);
    assert.equal(
      memo.get("ns/job-7", "1", () => -1),
      -1,
      "computed again after forget",
    );
  });
});
