/**
 * ResilientInformer against the real local API server (npm run cluster:up).
 * Run: npx node --test e2e/runtime-informer.test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CoreV1Api, V1ConfigMap } from "@kubernetes/client-node";
import { KubeClient } from "../src/kube/client.ts";
import { freshNamespace, kubeClients, waitFor, type TestNamespace } from "./lib/index.ts";
import { rawListFn, ResilientInformer, type ListFn } from "../src/runtime/informer.ts";

const LABEL = "runtime-e2e=informer";

/** Polls an in-process condition (informer callbacks) every 20 ms. */
const until = (cond: () => boolean, what: string, timeoutMs = 120_000) => waitFor(what, cond, { timeoutMs, intervalMs: 20 });

describe("ResilientInformer (real API server)", { timeout: 900_000 }, () => {
  /** The operator's own REST client, from the admin kubeconfig file (client certificate). */
  let kc: KubeClient;
  let core: CoreV1Api;
  let testNs: TestNamespace;
  let ns: string;

  const cmBody = (name: string, data: Record<string, string> = {}): V1ConfigMap => ({
    metadata: { name, namespace: ns, labels: { "runtime-e2e": "informer" } },
    data,
  });
  const create = (name: string, data?: Record<string, string>) => core.createNamespacedConfigMap({ namespace: ns, body: cmBody(name, data) });
  const patchData = (name: string, data: Record<string, string>) => core.replaceNamespacedConfigMap({ name, namespace: ns, body: cmBody(name, data) });
  const remove = (name: string) => core.deleteNamespacedConfigMap({ name, namespace: ns });

  before(async () => {
    const k = await kubeClients();
    kc = await KubeClient.fromEnvironment({ ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" });
    core = k.core;
    testNs = await freshNamespace("rt-informer", { clients: k });
    ns = testNs.name;
  });

  after(async () => {
    await testNs?.cleanup();
  });

  function newInformer(listFn?: ListFn<V1ConfigMap>) {
    const inf = new ResilientInformer<V1ConfigMap>({
      client: kc,
      path: `/api/v1/namespaces/${ns}/configmaps`,
      labelSelector: LABEL,
      listFn,
      backoff: { baseMs: 200, maxMs: 2000, jitter: 0.5 },
    });
    const log: string[] = [];
    inf.on("add", (o) => log.push(`add:${o.metadata?.name}`));
    inf.on("update", (o) => log.push(`update:${o.metadata?.name}:${o.data?.v ?? ""}`));
    inf.on("delete", (o, i) => log.push(`delete:${o.metadata?.name}${i.finalStateUnknown ? "?" : ""}`));
    return { inf, log };
  }

  it("lists existing objects, then sees add / update / delete; honours the label selector", async () => {
    await create("pre-existing", { v: "0" });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "unlabelled", namespace: ns } } });
    const { inf, log } = newInformer();
    inf.addIndex("v", (o) => (o.data?.v ? [o.data.v] : []));
    try {
      await inf.start();
      assert.equal(inf.hasSynced(), true);
      assert.deepEqual(log, ["add:pre-existing"]);
      const cached = inf.get(ns, "pre-existing")!;
      assert.equal(cached.kind, "ConfigMap", "list items get kind filled in");
      assert.equal(cached.metadata?.managedFields, undefined, "managedFields stripped");
      assert.equal(typeof cached.metadata?.creationTimestamp, "string", "raw JSON, not model classes");
      assert.ok(Object.isFrozen(cached), "cached objects are frozen outside production");

      await create("a", { v: "1" });
      await until(() => log.includes("add:a"), "add:a");
      await patchData("a", { v: "2" });
      await until(() => log.includes("update:a:2"), "update:a:2");
      assert.deepEqual(
        inf.byIndex("v", "2").map((o) => o.metadata?.name),
        ["a"],
      );
      await remove("a");
      await until(() => log.includes("delete:a"), "delete:a");
      assert.equal(inf.get(ns, "a"), undefined);
      assert.deepEqual(
        inf.list(ns).map((o) => o.metadata?.name),
        ["pre-existing"],
      );
      assert.ok(!log.some((l) => l.includes("unlabelled")));
      await remove("pre-existing");
      await until(() => log.includes("delete:pre-existing"), "delete:pre-existing");
    } finally {
      await inf.stop();
    }
  });

  it("after a forced watch error it restarts, relists and emits what changed while it was down", async () => {
    await create("keep", { v: "1" });
    await create("change", { v: "1" });
    await create("vanish", { v: "1" });
    // A list that fails while `down` is set: the informer cannot recover until we allow it.
    let down = false;
    let failedLists = 0;
    const real = rawListFn<V1ConfigMap>(kc, `/api/v1/namespaces/${ns}/configmaps`, { labelSelector: LABEL });
    const gated: ListFn<V1ConfigMap> = async (page) => {
      if (down) {
        failedLists++;
        throw Object.assign(new Error("injected list failure"), { statusCode: 503 });
      }
      return real(page);
    };
    const { inf, log } = newInformer(gated);
    const errors: unknown[] = [];
    inf.on("error", (e) => errors.push(e));
    try {
      await inf.start();
      assert.deepEqual(log.sort(), ["add:change", "add:keep", "add:vanish"]);
      log.length = 0;

      down = true;
      inf.forceRestart("e2e: abort the watch request");
      // Changes the informer cannot see as watch events:
      await create("born", { v: "1" });
      await patchData("change", { v: "2" });
      await remove("vanish");
      await until(() => failedLists >= 1, "at least one failed relist");
      assert.equal(log.length, 0, "nothing seen while down");
      down = false;

      await until(() => log.length >= 3, "relist events");
      assert.deepEqual(log.sort(), ["add:born", "delete:vanish?", "update:change:2"]);
      assert.ok(inf.restarts >= 2, `restarts=${inf.restarts}`);
      assert.ok(errors.length >= 2);
      assert.deepEqual(
        inf
          .list()
          .map((o) => o.metadata?.name)
          .sort(),
        ["born", "change", "keep"],
      );

      // And the new watch works.
      log.length = 0;
      await create("after", { v: "1" });
      await until(() => log.includes("add:after"), "add:after on the new watch");
    } finally {
      await inf.stop();
      for (const n of ["keep", "change", "born", "after"]) await remove(n).catch(() => {});
    }
  });

  it("a watch request failing at the HTTP level (bad path once) is retried", async () => {
    // Point the watch at a path that 404s once, via a Watch wrapper.
    const w = kc;
    let bad = 1;
    const flaky = {
      watch: (path: string, q: Record<string, string | number | boolean | undefined>, cb: (p: string, o: any) => void, done: (e: any) => void) =>
        w.watch(bad-- > 0 ? "/api/v1/namespaces/does-not-exist/nothings" : path, q, cb, done),
    };
    const inf = new ResilientInformer<V1ConfigMap>({
      client: kc,
      path: `/api/v1/namespaces/${ns}/configmaps`,
      labelSelector: LABEL,
      watch: flaky,
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    const errors: unknown[] = [];
    inf.on("error", (e) => errors.push(e));
    const seen: string[] = [];
    inf.on("add", (o) => seen.push(o.metadata?.name ?? ""));
    try {
      await inf.start();
      await until(() => errors.length === 1, "the 404 to be reported");
      assert.equal((errors[0] as { statusCode?: number }).statusCode, 404);
      await create("x", { v: "1" });
      await until(() => seen.includes("x"), "add:x after recovery");
    } finally {
      await inf.stop();
      await remove("x").catch(() => {});
    }
  });

  it("survives the client's 30 s watch inactivity timeout without relisting", { timeout: 600_000 }, async () => {
    let lists = 0;
    const real = rawListFn<V1ConfigMap>(kc, `/api/v1/namespaces/${ns}/configmaps`, { labelSelector: LABEL });
    const { inf, log } = newInformer(async (p) => {
      lists++;
      return real(p);
    });
    try {
      await inf.start();
      await new Promise((r) => setTimeout(r, 35_000));
      await create("late", { v: "1" });
      await until(() => log.includes("add:late"), "add:late after the idle period");
      assert.equal(lists, 1, "resumed from resourceVersion, no relist");
      assert.equal(inf.restarts, 0);
    } finally {
      await inf.stop();
      await remove("late").catch(() => {});
    }
  });
});
