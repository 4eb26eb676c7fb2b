import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { pino } from "pino";
import type { KubeApi } from "../kube/api.ts";
import type { KubeClient, WatchCallback } from "../kube/client.ts";
import { CHILD_EVENT_BATCH_MS, Controller } from "./controller.ts";
import { DEFAULT_PLANNER_SETTINGS } from "./planner/index.ts";

/**
 * The informers' side of a KubeClient: every list is empty, every watch stays open until the test sends into it.
 * Watches are found by the collection they watch ("pods", "jobs", "finetunejobs", ...).
 */
class FakeClient {
  readonly watches = new Map<string, WatchCallback>();
  readonly #opened = new Map<string, () => void>();
  readonly #opening = new Map<string, Promise<void>>();

  /** Resolves once the informer of `resource` watches (it lists first). */
  watching(resource: string): Promise<void> {
    let opening = this.#opening.get(resource);
    if (!opening) {
      opening = new Promise((resolve) => this.#opened.set(resource, resolve));
      this.#opening.set(resource, opening);
    }
    return opening;
  }

  async get(): Promise<unknown> {
    return { apiVersion: "v1", kind: "List", metadata: { resourceVersion: "1" }, items: [] };
  }

  async watch(path: string, _query: unknown, callback: WatchCallback): Promise<AbortController> {
    const resource = path.split("/").pop()!;
    this.watches.set(resource, callback);
    void this.watching(resource);
    this.#opened.get(resource)!();
    return new AbortController();
  }

  send(resource: string, type: "ADDED" | "MODIFIED" | "DELETED", obj: object): void {
    const cb = this.watches.get(resource);
    assert.ok(cb, `a watch of ${resource}`);
    cb(type, obj);
  }
}

const child = (kind: string, name: string, rv: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "v1",
  kind,
  metadata: {
    namespace: "ns",
    name,
    resourceVersion: rv,
    labels: { "app.kubernetes.io/managed-by": "finetune-operator", "finetune.dev/job-name": "demo" },
  },
  ...extra,
});

describe("Controller event routing", () => {
  let controller: Controller | undefined;
  afterEach(async () => {
    await controller?.stop(0);
    controller = undefined;
  });

  /** A controller on the fake client, caches started, workers not: the queue's calls are recorded instead. */
  async function started(childEventBatchMs?: number) {
    const client = new FakeClient();
    controller = new Controller({
      client: client as unknown as KubeClient,
      api: {} as KubeApi,
      settings: { ...DEFAULT_PLANNER_SETTINGS, launcherSource: {} },
      logger: pino({ level: "silent" }),
      identity: "test",
      ...(childEventBatchMs !== undefined ? { childEventBatchMs } : {}),
    });
    const calls: string[] = [];
    const queue = controller.queue;
    queue.add = (key) => void calls.push(`add ${key}`);
    queue.addAfter = (key, ms) => void calls.push(`addAfter ${key} ${ms}`);
    await controller.startCaches();
    await Promise.all(["finetunejobs", "jobs", "pods", "configmaps", "services", "persistentvolumeclaims"].map((r) => client.watching(r)));
    return { client, calls };
  }

  it("a FineTuneJob's own change is reconciled at once", async () => {
    const { client, calls } = await started();
    client.send("finetunejobs", "ADDED", {
      apiVersion: "finetune.dev/v1alpha1",
      kind: "FineTuneJob",
      metadata: { namespace: "ns", name: "demo", resourceVersion: "5" },
    });
    assert.deepEqual(calls, ["add ns/demo"]);
  });

  it("a child's change reaches its owner after the batch window, so the changes of one transition share a reconcile", async () => {
    const { client, calls } = await started();
    client.send("pods", "ADDED", child("Pod", "demo-train-0-x", "10"));
    client.send("pods", "MODIFIED", child("Pod", "demo-train-0-x", "11", { status: { phase: "Running" } }));
    client.send("jobs", "MODIFIED", child("Job", "demo-train-0", "12", { status: { ready: 1 } }));
    client.send("persistentvolumeclaims", "ADDED", child("PersistentVolumeClaim", "demo-output", "13"));
    client.send("persistentvolumeclaims", "DELETED", child("PersistentVolumeClaim", "demo-output", "14"));
    const delayed = `addAfter ns/demo ${CHILD_EVENT_BATCH_MS}`;
    assert.deepEqual(calls, [delayed, delayed, delayed, delayed, delayed]);
    assert.ok(CHILD_EVENT_BATCH_MS >= 1000, "at least the Job controller's own 1 s batch of pod changes");
  });

  it("a child update the cache's trim hides (a claim being bound) enqueues nothing", async () => {
    const { client, calls } = await started(0);
    client.send("persistentvolumeclaims", "ADDED", child("PersistentVolumeClaim", "demo-output", "20"));
    client.send("persistentvolumeclaims", "MODIFIED", child("PersistentVolumeClaim", "demo-output", "21", { status: { phase: "Bound" } }));
    assert.deepEqual(calls, ["addAfter ns/demo 0"]);
  });
});
