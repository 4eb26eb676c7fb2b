/**
 * The operator's Events against the real API server: a repeat within 10 minutes is a count patched onto the first
 * Event (what `kubectl describe` shows as "x3 over ..."), through the operator's own client (KubeApi) and
 * EventRecorder; a different message is a new Event.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { EventRecorder } from "../src/controller/event-recorder.ts";
import { buildEvent } from "../src/controller/events.ts";
import { Reason } from "../src/controller/reasons.ts";
import { KubeApi } from "../src/kube/api.ts";
import { KubeClient } from "../src/kube/client.ts";
import { freshNamespace, kubeClients, type KubeClients, type TestNamespace } from "./lib/index.ts";

let k: KubeClients;
let testNs: TestNamespace;
let api: KubeApi;
const calls: string[] = [];

before(async () => {
  k = await kubeClients();
  testNs = await freshNamespace("events", { clients: k });
  api = new KubeApi(await KubeClient.fromEnvironment({ ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" }), (verb, resource, code) =>
    calls.push(`${verb} ${resource} ${code}`),
  );
});

after(async () => {
  await testNs?.cleanup();
});

describe("Events: client-go's correlation on a real API server", () => {
  it("an identical Event three times is one Event with count 3; another message is another Event", async () => {
    const ns = testNs.name;
    const ftj = { metadata: { name: "job", namespace: ns, uid: "0b3c3b5e-0000-4000-8000-000000000001" } } as unknown as FineTuneJobObject;
    let now = Date.parse("2026-12-01T12:00:00Z");
    const recorder = new EventRecorder({ create: (e) => api.createEvent(e), patch: (n, name, body) => api.patchEvent(n, name, body) }, { now: () => now });
    const record = (message: string) => recorder.record(buildEvent(ftj, "Warning", Reason.Unschedulable, message, new Date(now), "test"));
    assert.equal(await record("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."), "created");
    now += 30_000;
    assert.equal(await record("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."), "patched");
    now += 30_000;
    assert.equal(await record("0/3 nodes are available: 3 Insufficient nvidia.com/gpu."), "patched");
    assert.equal(await record("0/4 nodes are available: 4 Insufficient nvidia.com/gpu."), "created");
    const events = (await k.core.listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=job" })).items;
    const byMessage = new Map(events.map((e) => [e.message, e]));
    assert.equal(events.length, 2);
    const repeated = byMessage.get("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")!;
    assert.equal(repeated.count, 3);
    assert.equal(new Date(repeated.lastTimestamp!).getTime() - new Date(repeated.firstTimestamp!).getTime(), 60_000);
    assert.equal(byMessage.get("0/4 nodes are available: 4 Insufficient nvidia.com/gpu.")?.count, 1);
    assert.deepEqual(calls, ["create events 200", "patch events 200", "patch events 200", "create events 200"]);
  });
});
