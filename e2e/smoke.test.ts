/**
 * Smoke tests of the local test cluster itself (e2e/cluster): scheduling onto fake
 * GPU nodes, the pod fate contract, garbage collection, storage, RBAC/tokens, logs.
 * Run: npx node --test e2e/smoke.test.ts   (starts the cluster if it is not running)
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import {
  apiStatus,
  applyYaml,
  appendPodLogs,
  EXIT_CODE_ANNOTATION,
  FATE_ANNOTATION,
  followPodLogs,
  freshNamespace,
  ignoreNotFound,
  kubeClients,
  kubeClientsForToken,
  kwokToleration,
  NODE_PREFIX,
  RUN_SECONDS_ANNOTATION,
  setPodLogs,
  STORAGE_CLASS,
  TERMINATION_MESSAGE_ANNOTATION,
  waitFor,
  type KubeClients,
} from "./lib/index.ts";

const toleration = JSON.stringify(kwokToleration);

function jobCondition(job: V1Job | undefined, type: string): boolean {
  return job?.status?.conditions?.some((c) => c.type === type && c.status === "True") ?? false;
}

describe("local test cluster", { timeout: 900_000 }, () => {
  let k: KubeClients;
  before(async () => {
    k = await kubeClients();
  });

  test("(a) an indexed 2-pod Job needing 8 GPUs per pod lands on two different fake nodes and succeeds", async (t) => {
    const { name: namespace } = await freshNamespace("smoke-gpu", { t, clients: k });
    await applyYaml(
      `
apiVersion: batch/v1
kind: Job
metadata: {name: train}
spec:
  completionMode: Indexed
  completions: 2
  parallelism: 2
  backoffLimit: 0
  template:
    metadata:
      annotations: {"${RUN_SECONDS_ANNOTATION}": "3"}
    spec:
      restartPolicy: Never
      tolerations: [${toleration}]
      containers:
      - name: trainer
        image: axolotl:test
        resources:
          limits: {nvidia.com/gpu: 8}
`,
      { namespace, clients: k },
    );
    const running = await waitFor("both job pods Running", async (note) => {
      const pods = await k.core.listNamespacedPod({ namespace, labelSelector: "job-name=train" });
      note(pods.items.map((p) => `${p.metadata?.name} ${p.status?.phase} on ${p.spec?.nodeName}`));
      const r = pods.items.filter((p) => p.status?.phase === "Running" && p.status.podIP);
      return r.length === 2 && r;
    });
    const nodes = running.map((p) => p.spec?.nodeName);
    assert.ok(
      nodes.every((n) => n?.startsWith(NODE_PREFIX)),
      `pods on fake nodes: ${nodes}`,
    );
    assert.notEqual(nodes[0], nodes[1], "each 8-GPU pod needs a whole node");

    const job = await waitFor("job train Complete", async (note) => {
      const j = await k.batch.readNamespacedJob({ name: "train", namespace });
      note(j.status);
      return jobCondition(j, "Complete") && j;
    });
    assert.equal(job.status?.succeeded, 2);
    const pods = await k.core.listNamespacedPod({ namespace, labelSelector: "job-name=train" });
    const indexes = pods.items.map((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"]).sort();
    assert.deepEqual(indexes, ["0", "1"]);
    for (const p of pods.items) {
      assert.equal(p.status?.phase, "Succeeded");
      const term = p.status?.containerStatuses?.[0]?.state?.terminated;
      assert.equal(term?.exitCode, 0);
      assert.equal(term?.reason, "Completed");
    }
  });

  test("(b) fate=fail with exit code 137 fails a backoffLimit=0 Job with OOMKilled/137 in pod status", async (t) => {
    const { name: namespace } = await freshNamespace("smoke-fail", { t, clients: k });
    await applyYaml(
      `
apiVersion: batch/v1
kind: Job
metadata: {name: oom}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        "${FATE_ANNOTATION}": fail
        "${EXIT_CODE_ANNOTATION}": "137"
        "${RUN_SECONDS_ANNOTATION}": "1"
        "${TERMINATION_MESSAGE_ANNOTATION}": "torch.OutOfMemoryError: CUDA out of memory"
    spec:
      restartPolicy: Never
      tolerations: [${toleration}]
      containers: [{name: trainer, image: axolotl:test}]
`,
      { namespace, clients: k },
    );
    const job = await waitFor("job oom Failed", async (note) => {
      const j = await k.batch.readNamespacedJob({ name: "oom", namespace });
      note(j.status);
      return jobCondition(j, "Failed") && j;
    });
    assert.equal(job.status?.conditions?.find((c) => c.type === "Failed")?.reason, "BackoffLimitExceeded");
    const pods = await k.core.listNamespacedPod({ namespace, labelSelector: "job-name=oom" });
    assert.equal(pods.items.length, 1);
    const pod = pods.items[0]!;
    assert.equal(pod.status?.phase, "Failed");
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(term?.exitCode, 137);
    assert.equal(term?.reason, "OOMKilled");
    assert.equal(term?.message, "torch.OutOfMemoryError: CUDA out of memory");
  });

  test("(c) garbage collection deletes dependents of a deleted owner (ConfigMap -> ConfigMap, Job -> running pods)", async (t) => {
    const { name: namespace } = await freshNamespace("smoke-gc", { t, clients: k });
    const owner = await k.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "owner" } } });
    await k.core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: {
          name: "dependent",
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid!, blockOwnerDeletion: true }],
        },
      },
    });
    await applyYaml(
      `
apiVersion: batch/v1
kind: Job
metadata: {name: forever}
spec:
  parallelism: 2
  completions: 2
  template:
    metadata:
      annotations: {"${FATE_ANNOTATION}": run}
    spec:
      restartPolicy: Never
      tolerations: [${toleration}]
      containers: [{name: trainer, image: axolotl:test}]
`,
      { namespace, clients: k },
    );
    await waitFor("job pods Running", async () => {
      const pods = await k.core.listNamespacedPod({ namespace, labelSelector: "job-name=forever" });
      return pods.items.filter((p) => p.status?.phase === "Running").length === 2;
    });

    await k.core.deleteNamespacedConfigMap({ name: "owner", namespace, propagationPolicy: "Background" });
    await k.batch.deleteNamespacedJob({ name: "forever", namespace, propagationPolicy: "Background" });
    await waitFor("dependent ConfigMap to be garbage-collected", async (note) => {
      const cm = await ignoreNotFound(k.core.readNamespacedConfigMap({ name: "dependent", namespace }));
      note(cm?.metadata);
      return cm === undefined;
    });
    await waitFor("job pods to be garbage-collected and removed", async (note) => {
      const pods = await k.core.listNamespacedPod({ namespace, labelSelector: "job-name=forever" });
      note(
        pods.items.map((p: V1Pod) => ({
          name: p.metadata?.name,
          phase: p.status?.phase,
          deleting: !!p.metadata?.deletionTimestamp,
          finalizers: p.metadata?.finalizers,
        })),
      );
      return pods.items.length === 0;
    });
  });

  test('(d) a RWX PVC of the default class binds and a pod using it runs; storageClassName "" stays unbound', async (t) => {
    const { name: namespace } = await freshNamespace("smoke-pvc", { t, clients: k });
    await applyYaml(
      `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static-only}
spec:
  storageClassName: ""
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: shared}
spec:
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 100Gi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: uses-pvc
  annotations: {"${FATE_ANNOTATION}": run}
spec:
  restartPolicy: Never
  tolerations: [${toleration}]
  containers:
  - name: main
    image: axolotl:test
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: shared}
`,
      { namespace, clients: k },
    );
    const pvc = await waitFor("PVC shared Bound", async (note) => {
      const c = await k.core.readNamespacedPersistentVolumeClaim({ name: "shared", namespace });
      note(c.status);
      return c.status?.phase === "Bound" && c;
    });
    assert.equal(pvc.spec?.storageClassName, STORAGE_CLASS);
    assert.deepEqual(pvc.status?.accessModes, ["ReadWriteMany"]);
    assert.equal(pvc.status?.capacity?.["storage"], "100Gi");
    const pv = await k.core.readPersistentVolume({ name: pvc.spec!.volumeName! });
    assert.ok(pv.spec?.hostPath?.path, "hostPath volume");
    assert.equal(pv.spec?.claimRef?.uid, pvc.metadata?.uid);

    const pod = await waitFor("pod uses-pvc Running", async (note) => {
      const p = await k.core.readNamespacedPod({ name: "uses-pvc", namespace });
      note(p.status);
      return p.status?.phase === "Running" && p;
    });
    assert.ok(pod.spec?.nodeName?.startsWith(NODE_PREFIX));

    const unbound = await k.core.readNamespacedPersistentVolumeClaim({ name: "static-only", namespace });
    assert.equal(unbound.status?.phase, "Pending");
    assert.equal(unbound.spec?.volumeName, undefined);
  });

  test("(e) a ServiceAccount with only a namespaced Role cannot list Secrets cluster-wide; TokenReview authenticates its token", async (t) => {
    const { name: namespace } = await freshNamespace("smoke-rbac", { t, clients: k });
    await applyYaml(
      `
apiVersion: v1
kind: ServiceAccount
metadata: {name: limited}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-secrets}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: limited-read-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-secrets}
subjects:
- {kind: ServiceAccount, name: limited, namespace: ${namespace}}
`,
      { namespace, clients: k },
    );
    const tr = await k.core.createNamespacedServiceAccountToken({
      name: "limited",
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    assert.ok(token, "TokenRequest returned a token");

    const sa = await kubeClientsForToken(token);
    // Positive control: the Role works in its namespace (RBAC caches settle quickly).
    await waitFor("namespaced list of secrets to be allowed", async () => {
      await sa.core.listNamespacedSecret({ namespace });
      return true;
    });
    await assert.rejects(sa.core.listSecretForAllNamespaces(), (err: unknown) => apiStatus(err) === 403);

    const review = await k.authn.createTokenReview({ body: { spec: { token } } });
    assert.equal(review.status?.authenticated, true, JSON.stringify(review.status));
    assert.equal(review.status?.user?.username, `system:serviceaccount:${namespace}:limited`);
  });

  test("(f) pod logs are served from files set with setPodLogs (incl. tail and follow)", async (t) => {
    const { name: namespace } = await freshNamespace("smoke-logs", { t, clients: k });
    await applyYaml(
      `
apiVersion: v1
kind: Pod
metadata:
  name: trainer
  annotations: {"${FATE_ANNOTATION}": run}
spec:
  restartPolicy: Never
  tolerations: [${toleration}]
  containers: [{name: main, image: axolotl:test}]
`,
      { namespace, clients: k },
    );
    await waitFor("pod trainer Running", async () => (await k.core.readNamespacedPod({ name: "trainer", namespace })).status?.phase === "Running");
    assert.equal(await k.core.readNamespacedPodLog({ name: "trainer", namespace }), "", "no logs set yet: empty");

    await setPodLogs(namespace, "trainer", "step 1 loss=2.31\nstep 2 loss=1.87\n");
    assert.equal(await k.core.readNamespacedPodLog({ name: "trainer", namespace }), "step 1 loss=2.31\nstep 2 loss=1.87\n");
    assert.equal(await k.core.readNamespacedPodLog({ name: "trainer", namespace, tailLines: 1 }), "step 2 loss=1.87\n");

    // follow: appended text arrives on an open stream.
    const follower = await followPodLogs(namespace, "trainer");
    try {
      await waitFor("follow stream to deliver existing lines", (note) => {
        note(follower.text());
        return follower.text().includes("step 2");
      });
      await appendPodLogs(namespace, "trainer", "step 3 loss=1.52\n");
      await waitFor("follow stream to deliver the appended line", (note) => {
        note(follower.text());
        return follower.text().endsWith("step 3 loss=1.52\n");
      });
    } finally {
      follower.stop();
    }
  });
});
