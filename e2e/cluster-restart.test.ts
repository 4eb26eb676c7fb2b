/**
 * The test cluster restarts components in place: objects in etcd survive an API server crash, an etcd
 * crash and `up` on a degraded cluster, on unchanged ports, and the cluster still runs pods afterwards.
 *
 * Runs on its OWN cluster (FINETUNE_CLUSTER_DIR=~/.cache/finetune-operator/cluster-chaos, its own ports),
 * never the shared test cluster, and deletes it at the end.
 */
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { down, restart, stop, up, type ClusterInfo } from "./cluster/cluster.ts";
import { clientsFor, kwokToleration, waitFor, type KubeClients } from "./lib/index.ts";

const ns = "restart-in-place";

describe("cluster restart in place (own cluster)", { timeout: 900_000 }, () => {
  let info: ClusterInfo;
  let k: KubeClients;
  const uids: Record<string, string> = {};

  before(async () => {
    process.env["FINETUNE_CLUSTER_DIR"] = join(homedir(), ".cache", "finetune-operator", "cluster-chaos");
    info = await up();
    const kc = new KubeConfig();
    kc.loadFromFile(info.kubeconfigPath);
    k = clientsFor(kc, info.kubeconfigPath);
    await k.core.createNamespace({ body: { metadata: { name: ns } } }).catch(() => undefined);
    await waitFor("default ServiceAccount", () => k.core.readNamespacedServiceAccount({ name: "default", namespace: ns }));
    const cm = await k.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "keep-me" }, data: { a: "1" } } });
    uids["keep-me"] = cm.metadata!.uid!;
  });

  after(async () => {
    await down({ log: () => undefined });
  });

  /** Every object created before survives with its uid; the API server accepts a write. */
  async function objectsSurvive(step: string): Promise<void> {
    for (const [name, uid] of Object.entries(uids)) {
      const cm = await waitFor(`ConfigMap ${name} readable after ${step}`, () => k.core.readNamespacedConfigMap({ name, namespace: ns }));
      assert.equal(cm.metadata?.uid, uid, `${name} is the same object after ${step}`);
    }
    const name = `after-${step}`;
    const cm = await waitFor(`a write after ${step}`, () => k.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: {} } }));
    uids[name] = cm.metadata!.uid!;
  }

  /** The controllers, scheduler and kwok still run a Job to completion. */
  async function jobRuns(name: string): Promise<void> {
    await k.batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name },
        spec: { backoffLimit: 0, template: { spec: { restartPolicy: "Never", tolerations: [kwokToleration], containers: [{ name: "c", image: "x:1" }] } } },
      },
    });
    await waitFor(`Job ${name} to complete`, async () => (await k.batch.readNamespacedJob({ name, namespace: ns })).status?.succeeded === 1);
  }

  it("kube-apiserver killed (SIGKILL) and restarted: same ports, objects kept", async () => {
    const r = await restart("kube-apiserver", { signal: "SIGKILL", log: () => undefined });
    assert.deepEqual(r.ports, info.ports);
    await objectsSurvive("apiserver");
    await jobRuns("after-apiserver");
  });

  it("etcd killed (SIGKILL) and restarted: same ports, objects kept", async () => {
    const r = await restart("etcd", { signal: "SIGKILL", log: () => undefined });
    assert.deepEqual(r.ports, info.ports);
    await objectsSurvive("etcd");
    await jobRuns("after-etcd");
  });

  it("up on a degraded cluster restarts only what is down, instead of wiping it", async () => {
    await stop("kube-apiserver", "SIGKILL");
    await stop("kwok", "SIGKILL");
    const r = await up({ log: () => undefined });
    assert.equal(r.alreadyRunning, false);
    assert.deepEqual(r.restarted, ["kube-apiserver", "kwok"]);
    assert.deepEqual(r.ports, info.ports);
    assert.equal(r.startedAt, info.startedAt, "the same cluster, not a new one");
    await objectsSurvive("up");
    await jobRuns("after-up");
  });
});
