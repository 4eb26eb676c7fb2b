import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { composeTransforms, omitPaths, ResilientInformer, type ListPage, type WatchLike } from "./informer.ts";

type Obj = KubernetesObject;

function cm(name: string, rv: string, extra: Partial<KubernetesObject["metadata"]> = {}): Obj {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: "ns", name, resourceVersion: rv, ...extra } };
}

/** A fake API: a mutable object set with a resourceVersion counter, a list function and a controllable watch. */
class FakeApi implements WatchLike {
  objects = new Map<string, Obj>();
  rv = 100;
  listCalls: ListPage[] = [];
  listFailures = 0;
  watches: {
    params: Record<string, unknown>;
    cb: (phase: string, obj: any) => void;
    done: (err: any) => void;
    ended: boolean;
    controller: AbortController;
    opts?: { dropManagedFields?: boolean };
  }[] = [];
  watchConnectError: unknown;

  put(name: string, extra: Partial<KubernetesObject["metadata"]> = {}): Obj {
    const o = cm(name, String(++this.rv), extra);
    this.objects.set(name, o);
    return o;
  }

  del(name: string): Obj | undefined {
    const o = this.objects.get(name);
    this.objects.delete(name);
    this.rv++;
    return o;
  }

  listFn = async (page: ListPage): Promise<KubernetesListObject<Obj>> => {
    this.listCalls.push(page);
    if (this.listFailures > 0) {
      this.listFailures--;
      throw Object.assign(new Error("list failed"), { statusCode: 500 });
    }
    // Pages of 2, continue token = offset; items omit kind/apiVersion like the real API.
    const all = [...this.objects.values()].map((o) => structuredClone({ metadata: o.metadata }) as Obj);
    const offset = Number(page.continue ?? 0);
    const limit = page.limit ?? all.length;
    const items = all.slice(offset, offset + limit);
    const next = offset + limit < all.length ? String(offset + limit) : undefined;
    return { apiVersion: "v1", kind: "ConfigMapList", metadata: { resourceVersion: String(this.rv), continue: next } as any, items };
  };

  async watch(
    _path: string,
    params: Record<string, string | number | boolean | undefined>,
    cb: (phase: string, obj: any) => void,
    done: (err: any) => void,
    opts?: { dropManagedFields?: boolean },
  ): Promise<AbortController> {
    const controller = new AbortController();
    const w = { params, cb, done, ended: false, controller, opts };
    this.watches.push(w);
    controller.signal.addEventListener("abort", () => this.end(w, controller.signal.reason ?? null));
    if (this.watchConnectError) {
      const err = this.watchConnectError;
      this.watchConnectError = undefined;
      this.end(w, err);
    }
    return controller;
  }

  end(w: FakeApi["watches"][number], err: unknown): void {
    if (w.ended) return;
    w.ended = true;
    w.done(err);
  }

  get current() {
    const w = this.watches[this.watches.length - 1];
    assert.ok(w && !w.ended, "an open watch");
    return w;
  }

  send(phase: string, obj: Obj): void {
    this.current.cb(phase, structuredClone(obj));
  }
}

// The limit only catches a hang; a busy machine must not fail the test.
async function waitFor(cond: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function setup(api: FakeApi, opts: { freeze?: boolean } = {}) {
  const inf = new ResilientInformer<Obj>({
    path: "/api/v1/namespaces/ns/configmaps",
    listFn: api.listFn,
    watch: api,
    pageSize: 2,
    backoff: { baseMs: 5, maxMs: 20 },
    freeze: opts.freeze ?? true,
  });
  const log: string[] = [];
  inf.on("add", (o) => log.push(`add:${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  inf.on("update", (o, old) => log.push(`update:${o.metadata?.name}@${old.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`));
  inf.on("delete", (o, info) => log.push(`delete:${o.metadata?.name}${info.finalStateUnknown ? "?" : ""}`));
  const errors: unknown[] = [];
  inf.on("error", (e) => errors.push(e));
  return { inf, log, errors };
}

describe("ResilientInformer", () => {
  it("start() lists all pages, emits adds, resolves when synced, then watches from the list resourceVersion with bookmarks", async () => {
    const api = new FakeApi();
    for (const n of ["a", "b", "c"]) api.put(n);
    const { inf, log } = setup(api);
    assert.equal(inf.hasSynced(), false);
    await inf.start();
    assert.equal(inf.hasSynced(), true);
    assert.deepEqual(log.sort(), ["add:a@101", "add:b@102", "add:c@103"]);
    assert.equal(api.listCalls.length, 2, "two pages of 2");
    await waitFor(() => api.watches.length === 1, "watch");
    assert.equal(api.current.params.resourceVersion, "103");
    assert.equal(api.current.params.allowWatchBookmarks, true);
    // List items get kind/apiVersion filled in; cached objects are frozen.
    const a = inf.get("ns", "a")!;
    assert.equal(a.kind, "ConfigMap");
    assert.equal(a.apiVersion, "v1");
    assert.ok(Object.isFrozen(a.metadata));
    await inf.stop();
  });

  it("applies watch events, skips same-version updates, tracks bookmarks", async () => {
    const api = new FakeApi();
    api.put("a");
    const { inf, log } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    log.length = 0;
    api.send("ADDED", api.put("b"));
    api.send("MODIFIED", api.put("a"));
    api.send("MODIFIED", api.objects.get("a")!); // same rv: no event
    const gone = api.del("b")!;
    api.send("DELETED", { ...gone, metadata: { ...gone.metadata, resourceVersion: String(api.rv) } });
    api.send("BOOKMARK", { metadata: { resourceVersion: "999" } } as Obj);
    assert.deepEqual(log, ["add:b@102", "update:a@101->103", "delete:b"]);
    assert.equal(inf.resourceVersion, "999");
    assert.deepEqual(
      inf.list().map((o) => o.metadata?.name),
      ["a"],
    );
    await inf.stop();
  });

  it("a clean watch close resumes from the last resourceVersion without relisting", async () => {
    const api = new FakeApi();
    api.put("a");
    const { inf } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.send("ADDED", api.put("b"));
    await new Promise((r) => setTimeout(r, 1100)); // not a "quick close"
    api.end(api.current, null);
    await waitFor(() => api.watches.length === 2, "second watch");
    assert.equal(api.current.params.resourceVersion, "102");
    assert.equal(api.listCalls.length, 1);
    await inf.stop();
  });

  it("treats client-node TimeoutError as a clean close", async () => {
    const api = new FakeApi();
    const { inf, errors } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.end(api.current, new DOMException("timeout", "TimeoutError"));
    await waitFor(() => api.watches.length === 2, "second watch");
    assert.equal(api.listCalls.length, 1);
    assert.equal(errors.length, 0);
    await inf.stop();
  });

  it("after ANY watch error it backs off, relists and reconciles: adds, updates and deletes made meanwhile are emitted", async () => {
    const api = new FakeApi();
    for (const n of ["keep", "change", "remove"]) api.put(n);
    const { inf, log, errors } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    log.length = 0;
    // Changes the informer never sees as events:
    api.put("created");
    api.put("change");
    api.del("remove");
    api.end(api.current, Object.assign(new Error("connection reset"), { code: "ECONNRESET" }));
    await waitFor(() => api.watches.length === 2, "rewatch");
    assert.deepEqual(log.sort(), ["add:created@104", "delete:remove?", "update:change@102->105"]);
    assert.equal(errors.length, 1);
    assert.equal(inf.restarts, 1);
    assert.equal(api.current.params.resourceVersion, String(api.rv));
    await inf.stop();
  });

  it("a non-410 watch ERROR event restarts with a relist", async () => {
    const api = new FakeApi();
    const { inf, errors } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.current.cb("ERROR", { kind: "Status", code: 500, message: "internal" });
    await waitFor(() => api.watches.length === 2, "rewatch");
    assert.equal(api.listCalls.length, 2);
    assert.equal(errors.length, 1);
    await inf.stop();
  });

  it("410 Gone (event or HTTP status) relists at once and reports no error", async () => {
    const api = new FakeApi();
    const { inf, errors } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.current.cb("ERROR", { kind: "Status", code: 410, message: "too old" });
    await waitFor(() => api.watches.length === 2, "rewatch");
    api.end(api.current, Object.assign(new Error("Gone"), { statusCode: 410 }));
    await waitFor(() => api.watches.length === 3, "rewatch 2");
    assert.equal(api.listCalls.length, 3);
    assert.equal(errors.length, 0);
    assert.equal(inf.restarts, 0);
    await inf.stop();
  });

  it("list failures are retried with backoff; start() resolves once a list succeeds", async () => {
    const api = new FakeApi();
    api.put("a");
    api.listFailures = 3;
    const { inf, log, errors } = setup(api);
    await inf.start();
    assert.equal(errors.length, 3);
    assert.deepEqual(log, ["add:a@101"]);
    await inf.stop();
  });

  it("a watch that fails to connect is retried", async () => {
    const api = new FakeApi();
    api.watchConnectError = Object.assign(new Error("Forbidden"), { statusCode: 403 });
    const { inf, errors } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.filter((w) => !w.ended).length === 1, "open watch");
    assert.equal(errors.length, 1);
    await inf.stop();
  });

  it("forceRestart() drops the watch and relists", async () => {
    const api = new FakeApi();
    api.put("a");
    const { inf, log } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.del("a");
    inf.forceRestart("test");
    await waitFor(() => api.watches.length === 2, "rewatch");
    assert.ok(log.includes("delete:a?"));
    await inf.stop();
  });

  it("forceRestart() right after start() resolves (watch not yet open) still restarts", async () => {
    const api = new FakeApi();
    api.put("a");
    const { inf, log } = setup(api);
    await inf.start();
    inf.forceRestart("early");
    api.del("a");
    await waitFor(() => log.includes("delete:a?"), "relist delete");
    assert.equal(inf.restarts, 1);
    await inf.stop();
  });

  it("a throwing handler does not break the informer", async () => {
    const api = new FakeApi();
    const { inf, log } = setup(api);
    inf.on("add", () => {
      throw new Error("handler bug");
    });
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    api.send("ADDED", api.put("x"));
    api.send("ADDED", api.put("y"));
    assert.deepEqual(log, ["add:x@101", "add:y@102"]);
    await inf.stop();
  });

  it("owner index finds children; managedFields are stripped", async () => {
    const api = new FakeApi();
    const owner = (uid: string) => ({ ownerReferences: [{ apiVersion: "v1", kind: "P", name: "p", uid }], managedFields: [{ manager: "m" }] });
    api.put("c1", owner("u1"));
    api.put("c2", owner("u1"));
    api.put("c3", owner("u2"));
    const { inf } = setup(api);
    inf.addIndex("owner", (o) => o.metadata?.ownerReferences?.map((r) => r.uid) ?? []);
    await inf.start();
    assert.deepEqual(
      inf
        .byIndex("owner", "u1")
        .map((o) => o.metadata?.name)
        .sort(),
      ["c1", "c2"],
    );
    assert.equal(inf.get("ns", "c1")?.metadata?.managedFields, undefined);
    await inf.stop();
  });

  it("stop() before the first sync resolves start() and ends the loop", async () => {
    const api = new FakeApi();
    api.listFailures = 1000;
    const { inf } = setup(api);
    const started = inf.start();
    await waitFor(() => api.listCalls.length >= 1, "list attempt");
    await inf.stop();
    await started;
    assert.equal(inf.hasSynced(), false);
  });

  it("stop() aborts the open watch", async () => {
    const api = new FakeApi();
    const { inf } = setup(api);
    await inf.start();
    await waitFor(() => api.watches.length === 1, "watch");
    const w = api.current;
    await inf.stop();
    assert.equal(w.controller.signal.aborted, true);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(api.watches.length, 1, "no new watch after stop");
  });
});

describe("transforms", () => {
  it("omitPaths deletes dotted paths in place and ignores missing ones", () => {
    const o = { data: { a: "1" }, spec: { template: { metadata: { labels: {} }, spec: { containers: [] } } }, keep: 1 };
    const t = omitPaths<typeof o>("data", "spec.template.spec", "nope.deeper", "keep.x");
    assert.equal(t(o), o);
    assert.deepEqual(o, { spec: { template: { metadata: { labels: {} } } }, keep: 1 });
  });

  it("composeTransforms applies left to right", () => {
    const t = composeTransforms<string[]>(
      (a) => [...a, "x"],
      (a) => [...a, "y"],
    );
    assert.deepEqual(t([]), ["x", "y"]);
  });

  it("a user transform runs after managedFields stripping; keepManagedFields keeps them (and lets the client parse them)", async () => {
    for (const keep of [false, true]) {
      const api = new FakeApi();
      api.put("a", { managedFields: [{ manager: "m" }], annotations: { big: "x".repeat(100) } });
      const inf = new ResilientInformer<Obj>({
        path: "/p",
        listFn: api.listFn,
        watch: api,
        keepManagedFields: keep,
        transform: omitPaths("metadata.annotations"),
      });
      await inf.start();
      await waitFor(() => api.watches.length === 1, "watch");
      assert.deepEqual(api.watches[0]!.opts, { dropManagedFields: !keep });
      api.send("ADDED", api.put("b", { managedFields: [{ manager: "m" }], annotations: { big: "y" } }));
      for (const n of ["a", "b"]) {
        const o = inf.get("ns", n)!;
        assert.equal(o.metadata?.annotations, undefined);
        assert.equal(o.metadata?.managedFields !== undefined, keep);
      }
      await inf.stop();
    }
  });
});
