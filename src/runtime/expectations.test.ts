import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { EXPECTATION_TIMEOUT_MS, Expectations } from "./expectations.ts";

type Obj = { metadata: { name: string; deletionTimestamp?: string } };
const obj = (name: string): Obj => ({ metadata: { name } });

function clocked() {
  let now = 1_000;
  const expect = new Expectations<Obj>({ now: () => now });
  return { expect, advance: (ms: number) => (now += ms) };
}

describe("Expectations: creations", () => {
  it("shows a created object until the cache has it, then forgets it", () => {
    const { expect } = clocked();
    expect.expectCreation("ns/a", obj("a-train-0"));
    assert.deepEqual(expect.pendingCreations("ns/a", []), [obj("a-train-0")]);
    assert.deepEqual(expect.pendingCreations("ns/b", []), [], "per owner");
    assert.deepEqual(expect.pendingCreations("ns/a", [obj("a-train-0")]), [], "the cache shows it");
    assert.deepEqual(expect.pendingCreations("ns/a", []), [], "and it is not expected again once seen");
  });

  it("is cleared by the informer's add event", () => {
    const { expect } = clocked();
    expect.expectCreation("ns/a", obj("a-preprocess-0"));
    expect.expectCreation("ns/a", obj("a-train-0"));
    expect.creationObserved("ns/a", "a-preprocess-0");
    assert.deepEqual(expect.pendingCreations("ns/a", []), [obj("a-train-0")]);
  });

  it("expires after the timeout (an object deleted before the cache ever showed it)", () => {
    const { expect, advance } = clocked();
    expect.expectCreation("ns/a", obj("a-train-0"));
    advance(EXPECTATION_TIMEOUT_MS - 1);
    assert.equal(expect.pendingCreations("ns/a", []).length, 1);
    advance(1);
    assert.equal(expect.pendingCreations("ns/a", []).length, 0);
  });
});

describe("Expectations: status writes", () => {
  it("waits while the cache shows the version the write replaced", () => {
    const { expect } = clocked();
    expect.expectStatusWrite("ns/a", "7", "8");
    assert.equal(expect.awaitingStatusWrite("ns/a", "7"), true);
    assert.equal(expect.awaitingStatusWrite("ns/b", "7"), false, "per owner");
    assert.equal(expect.awaitingStatusWrite("ns/a", "8"), false, "the cache moved on");
    assert.equal(expect.awaitingStatusWrite("ns/a", "7"), false, "and the expectation is gone");
  });

  it("is cleared by an update event with a newer version, not by one with the old version", () => {
    const { expect } = clocked();
    expect.expectStatusWrite("ns/a", "7", "8");
    expect.statusObserved("ns/a", "7");
    assert.equal(expect.awaitingStatusWrite("ns/a", "7"), true);
    expect.statusObserved("ns/a", "8");
    assert.equal(expect.awaitingStatusWrite("ns/a", "7"), false);
  });

  it("tells the echo of our own write (exactly the version it produced, nobody waiting on it) from any other update", () => {
    const { expect } = clocked();
    expect.expectStatusWrite("ns/a", "7", "8");
    assert.equal(expect.statusObserved("ns/a", "7"), false, "the old version is no echo");
    assert.equal(expect.statusObserved("ns/a", "8"), true, "the version the write produced: an echo");
    assert.equal(expect.statusObserved("ns/a", "8"), false, "once");
    // Someone else wrote after us: the cache jumps past our version, which is news.
    expect.expectStatusWrite("ns/a", "8", "9");
    assert.equal(expect.statusObserved("ns/a", "10"), false);
    // A reconcile that was put off until the write shows must be enqueued by it: not an echo then.
    expect.expectStatusWrite("ns/a", "10", "11");
    assert.equal(expect.awaitingStatusWrite("ns/a", "10"), true);
    assert.equal(expect.statusObserved("ns/a", "11"), false);
  });

  it("expires after the timeout; forget drops everything of an owner", () => {
    const { expect, advance } = clocked();
    expect.expectStatusWrite("ns/a", "7", "8");
    advance(EXPECTATION_TIMEOUT_MS);
    assert.equal(expect.awaitingStatusWrite("ns/a", "7"), false);
    expect.expectStatusWrite("ns/a", "9", "10");
    expect.expectCreation("ns/a", obj("a-train-0"));
    expect.forget("ns/a");
    assert.equal(expect.awaitingStatusWrite("ns/a", "9"), false);
    assert.deepEqual(expect.pendingCreations("ns/a", []), []);
  });
});

describe("Expectations: deletions", () => {
  it("shows an object whose deletion was asked as being deleted until the cache does, or it is gone", () => {
    const { expect } = clocked();
    expect.expectDeletion("ns/a", "a-train-0");
    const [shown, other] = expect.withPendingDeletions("ns/a", [obj("a-train-0"), obj("a-merge-0")]);
    assert.equal(shown!.metadata.deletionTimestamp, new Date(1_000).toISOString());
    assert.equal(other!.metadata.deletionTimestamp, undefined);
    assert.deepEqual(expect.withPendingDeletions("ns/b", [obj("a-train-0")]), [obj("a-train-0")], "per owner");
    // The cache shows the deletion: its own timestamp, and the expectation is done.
    const deleting = { metadata: { name: "a-train-0", deletionTimestamp: "2026-12-07T00:00:00Z" } };
    assert.deepEqual(expect.withPendingDeletions("ns/a", [deleting]), [deleting]);
    assert.deepEqual(expect.withPendingDeletions("ns/a", [obj("a-train-0")]), [obj("a-train-0")], "not expected again");
    // Gone from the cache: done too.
    expect.expectDeletion("ns/a", "a-train-1");
    assert.deepEqual(expect.withPendingDeletions("ns/a", []), []);
    assert.deepEqual(expect.withPendingDeletions("ns/a", [obj("a-train-1")]), [obj("a-train-1")]);
  });

  it("expires after the timeout; forget drops it", () => {
    const { expect, advance } = clocked();
    expect.expectDeletion("ns/a", "a-train-0");
    advance(EXPECTATION_TIMEOUT_MS - 1);
    assert.ok(expect.withPendingDeletions("ns/a", [obj("a-train-0")])[0]!.metadata.deletionTimestamp);
    advance(1);
    assert.equal(expect.withPendingDeletions("ns/a", [obj("a-train-0")])[0]!.metadata.deletionTimestamp, undefined);
    expect.expectDeletion("ns/a", "a-train-0");
    expect.forget("ns/a");
    assert.equal(expect.withPendingDeletions("ns/a", [obj("a-train-0")])[0]!.metadata.deletionTimestamp, undefined);
  });
});
