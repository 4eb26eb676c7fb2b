import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { deepFreeze, objectKey, reconcileList, Relist, splitKey, Store } from "./store.ts";

function cm(ns: string, name: string, rv: string, owner?: string): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      namespace: ns || undefined,
      name,
      resourceVersion: rv,
      ...(owner ? { ownerReferences: [{ apiVersion: "v1", kind: "X", name: "o", uid: owner }] } : {}),
    },
  };
}

const ownerIndex = (o: KubernetesObject) => o.metadata?.ownerReferences?.map((r) => r.uid) ?? [];

describe("keys", () => {
  it("objectKey / splitKey round-trip, cluster-scoped has no slash", () => {
    assert.equal(objectKey(cm("ns", "a", "1")), "ns/a");
    assert.equal(objectKey(cm("", "node1", "1")), "node1");
    assert.deepEqual(splitKey("ns/a"), { namespace: "ns", name: "a" });
    assert.deepEqual(splitKey("node1"), { namespace: "", name: "node1" });
  });
});

describe("Store", () => {
  it("upsert returns add, then update only when resourceVersion changes", () => {
    const s = new Store<KubernetesObject>();
    assert.equal(s.upsert(cm("a", "x", "1"))?.type, "add");
    assert.equal(s.upsert(cm("a", "x", "1")), undefined);
    const ev = s.upsert(cm("a", "x", "2"));
    assert.equal(ev?.type, "update");
    assert.equal(ev?.type === "update" && ev.old.metadata?.resourceVersion, "1");
    assert.equal(s.size, 1);
  });

  it("get / list by namespace / keys / remove", () => {
    const s = new Store<KubernetesObject>();
    s.upsert(cm("a", "x", "1"));
    s.upsert(cm("a", "y", "1"));
    s.upsert(cm("b", "x", "1"));
    s.upsert(cm("", "c", "1"));
    assert.equal(s.get("a", "y")?.metadata?.name, "y");
    assert.equal(s.get("", "c")?.metadata?.name, "c");
    assert.equal(s.get(undefined, "c")?.metadata?.name, "c");
    assert.equal(s.getByKey("b/x")?.metadata?.namespace, "b");
    assert.equal(s.list("a").length, 2);
    assert.equal(s.list("zzz").length, 0);
    assert.equal(s.list().length, 4);
    assert.deepEqual([...s.keys()].sort(), ["a/x", "a/y", "b/x", "c"]);
    assert.equal(s.remove("a", "x")?.metadata?.name, "x");
    assert.equal(s.remove("a", "x"), undefined);
    assert.equal(s.size, 3);
  });

  it("secondary index follows adds, updates (changed values) and removes", () => {
    const s = new Store<KubernetesObject>();
    s.upsert(cm("a", "early", "1", "u1"));
    s.addIndex("owner", ownerIndex); // registered after objects exist: backfilled
    s.upsert(cm("a", "x", "1", "u1"));
    s.upsert(cm("b", "y", "1", "u1"));
    s.upsert(cm("a", "z", "1", "u2"));
    assert.deepEqual(s.byIndex("owner", "u1").map(objectKey).sort(), ["a/early", "a/x", "b/y"]);
    s.upsert(cm("a", "x", "2", "u2")); // owner changed
    assert.deepEqual(s.byIndex("owner", "u1").map(objectKey).sort(), ["a/early", "b/y"]);
    assert.deepEqual(s.byIndex("owner", "u2").map(objectKey).sort(), ["a/x", "a/z"]);
    s.remove("a", "z");
    s.remove("a", "x");
    assert.deepEqual(s.byIndex("owner", "u2"), []);
    assert.deepEqual(s.byIndex("owner", "nope"), []);
    assert.throws(() => s.byIndex("missing", "x"));
    assert.throws(() => s.addIndex("owner", ownerIndex));
  });
});

describe("reconcileList (relist after a restart)", () => {
  it("emits add for new, update for changed, delete for vanished, nothing for unchanged", () => {
    const s = new Store<KubernetesObject>();
    reconcileList(s, [cm("n", "same", "1"), cm("n", "changed", "1"), cm("n", "gone", "1"), cm("m", "gone2", "1")]);
    const events = reconcileList(s, [cm("n", "same", "1"), cm("n", "changed", "5"), cm("n", "new", "6")]);
    const summary = events.map((e) => `${e.type}:${objectKey(e.obj)}`).sort();
    assert.deepEqual(summary, ["add:n/new", "delete:m/gone2", "delete:n/gone", "update:n/changed"]);
    const del = events.find((e) => e.type === "delete");
    assert.equal(del?.type === "delete" && del.finalStateUnknown, true);
    assert.deepEqual([...s.keys()].sort(), ["n/changed", "n/new", "n/same"]);
  });

  it("first list emits add for everything", () => {
    const s = new Store<KubernetesObject>();
    const events = reconcileList(s, [cm("a", "1", "1"), cm("a", "2", "1")]);
    assert.deepEqual(
      events.map((e) => e.type),
      ["add", "add"],
    );
  });

  it("empty list deletes everything", () => {
    const s = new Store<KubernetesObject>();
    reconcileList(s, [cm("a", "1", "1"), cm("b", "2", "1")]);
    const events = reconcileList(s, []);
    assert.deepEqual(
      events.map((e) => e.type),
      ["delete", "delete"],
    );
    assert.equal(s.size, 0);
  });

  it("paged relist: deletes only after finish(); an abandoned relist deletes nothing", () => {
    const s = new Store<KubernetesObject>();
    reconcileList(s, [cm("a", "1", "1"), cm("a", "2", "1"), cm("a", "3", "1")]);
    const r = new Relist(s);
    assert.deepEqual(
      r.page([cm("a", "1", "2")]).map((e) => e.type),
      ["update"],
    );
    assert.equal(s.size, 3);
    // abandoned: nothing removed
    const r2 = new Relist(s);
    r2.page([cm("a", "2", "1")]);
    assert.equal(s.size, 3);
    assert.deepEqual(r.page([cm("a", "3", "1")]), []);
    assert.deepEqual(
      r.finish().map((e) => objectKey(e.obj)),
      ["a/2"],
    );
  });
});

describe("deepFreeze", () => {
  it("freezes nested objects and arrays", () => {
    const o = deepFreeze({ a: { b: [1, { c: 2 }] } });
    assert.ok(Object.isFrozen(o.a.b));
    assert.ok(Object.isFrozen(o.a.b[1]));
    assert.throws(() => {
      (o.a as { b: unknown }).b = 1;
    });
  });
});
