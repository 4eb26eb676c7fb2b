/**
 * GitOps order and stuck pods, as a new user meets them, on the real control plane:
 * - a FineTuneJob applied before its configFrom ConfigMap (or its existingClaim, or a Secret its pods need) waits with a condition and an
 *   Event, and runs once the object exists;
 * - a pod the scheduler cannot place shows the scheduler's reason in status, an Event and `kubectl finetune status`;
 * - an image reference that cannot parse and a name over 45 characters are refused at admission;
 * - pods the API server refuses (unknown PriorityClass, Pod Security, ResourceQuota, LimitRange) end in a condition
 *   and an Event that name the refusal, never a silent Pending; so does the operator's own create refused (a quota
 *   on claims).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, deleteFtj, ftjManifest, getFtj, listPods, setPodState } from "./lib/ftj.ts";
import { ensureCrd, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";
import { LORA_CONFIG } from "./lib/ftj.ts";
import { stringify } from "yaml";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

const BIN = fileURLToPath(new URL("../bin/kubectl-finetune", import.meta.url));

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;

before(async () => {
  suite = await suiteNamespace("gitops");
  ({ k, ns } = suite);
  op = await startOperator({ namespace: ns });
});

after(async () => {
  await suite?.cleanup(op);
});

const condition = async (name: string, type: string) => (await getFtj(k, ns, name)).status?.conditions?.find((c) => c.type === type);
const eventReasons = async (name: string) =>
  (await k.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items.map((e) => e.reason);
const ran = (name: string) =>
  waitFor(`${name} to run past Pending`, async (note) => {
    const j = await getFtj(k, ns, name);
    note(j.status?.message);
    return ["Training", "Merging", "Succeeded"].includes(j.status?.phase ?? "") ? j : undefined;
  });

describe("GitOps order and stuck pods", () => {
  test("applied before its configFrom ConfigMap: waits (ConfigNotFound, an Event), then runs once the ConfigMap exists", async () => {
    await createFtj(
      k,
      ftjManifest("config-later", ns, {
        config: undefined,
        configFrom: { configMapKeyRef: { name: "later", key: "config.yaml" } },
        preprocess: { enabled: false },
        merge: { enabled: false },
      }),
    );
    const waiting = await waitFor("ConfigNotFound", async () => {
      const c = await condition("config-later", "ReferencesResolved");
      return c?.status === "False" && c.reason === "ConfigNotFound" ? c : undefined;
    });
    assert.match(waiting.message, /ConfigMap later \(spec\.configFrom\.configMapKeyRef\.name\) not found/);
    const j = await getFtj(k, ns, "config-later");
    assert.equal(j.status?.phase, "Pending", "waiting, not Failed");
    await waitFor("a ConfigNotFound Event", async () => (await eventReasons("config-later")).includes("ConfigNotFound"));
    await k.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "later" }, data: { "config.yaml": stringify(LORA_CONFIG) } } });
    const running = await ran("config-later");
    assert.equal(running.status?.conditions?.find((c) => c.type === "ReferencesResolved")?.status, "True");
    assert.equal(running.status?.conditions?.find((c) => c.type === "Validated")?.status, "True");
  });

  test("applied before its existingClaim: waits (ClaimNotFound), then runs once the claim exists", async () => {
    await createFtj(
      k,
      ftjManifest("claim-later", ns, {
        storage: { output: { existingClaim: "data-later" } },
        preprocess: { enabled: false },
        merge: { enabled: false },
      } as never),
    );
    await waitFor("ClaimNotFound", async () => (await condition("claim-later", "ReferencesResolved"))?.reason === "ClaimNotFound");
    await k.core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: { metadata: { name: "data-later" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    });
    await ran("claim-later");
  });

  test("a pod the scheduler cannot place: its reason in status, an Event and kubectl finetune status", async () => {
    await createFtj(k, ftjManifest("unplaceable", ns, { preprocess: { enabled: false }, scheduling: { nodeSelector: { pool: "does-not-exist" } } } as never));
    const c = await waitFor("PodsScheduled=False", async () => {
      const cond = await condition("unplaceable", "PodsScheduled");
      return cond?.status === "False" ? cond : undefined;
    });
    assert.equal(c.reason, "Unschedulable");
    assert.match(c.message, /0\/\d+ nodes are available/);
    assert.match((await getFtj(k, ns, "unplaceable")).status?.message ?? "", /cannot be scheduled/);
    await waitFor("an Unschedulable Event", async () => (await eventReasons("unplaceable")).includes("Unschedulable"));
    const { stdout } = await promisify(execFile)(BIN, ["status", "unplaceable", "-n", ns], {
      env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "", NO_COLOR: "1" },
    });
    assert.match(stdout, /PodsScheduled:\s+False \(Unschedulable\): train attempt 0: pod \S+ cannot be scheduled: 0\/\d+ nodes are available/);
  });

  test("refused at admission: an image reference that cannot parse, a name over 45 characters", async () => {
    // The shared test cluster's CRD is re-applied by every suite, possibly from another checkout: apply ours again
    // until the API server refuses with it (an object accepted by another CRD version is deleted and tried again).
    const refused = async (obj: ReturnType<typeof ftjManifest>, pattern: RegExp) => {
      const err = await waitFor(`${obj.metadata.name} refused at admission`, async () => {
        await ensureCrd();
        return createFtj(k, obj).then(
          async () => void (await deleteFtj(k, ns, obj.metadata.name!)),
          (e: { code?: number; body?: unknown }) => (e.code === 422 ? e : undefined),
        );
      });
      assert.equal(err.code, 422);
      assert.match(typeof err.body === "string" ? err.body : JSON.stringify(err.body), pattern);
    };
    await refused(ftjManifest("bad-image", ns, { image: "not a valid image ref!!" }), /spec\.image/);
    await refused(ftjManifest("n".repeat(46), ns), /metadata\.name must be at most 45 characters/);
    await createFtj(k, ftjManifest("n".repeat(45), ns, { suspend: true }));
  });

  test("pods the API server refuses (unknown PriorityClass; Pod Security restricted + hostPath): PodsCreated=False naming the refusal", async () => {
    const refusedWith = (name: string, pattern: RegExp) =>
      waitFor(`${name}: PodsCreated=False`, async (note) => {
        const c = await condition(name, "PodsCreated");
        note(c ?? (await getFtj(k, ns, name)).status?.message);
        return c?.status === "False" && c.reason === "FailedCreate" && pattern.test(c.message) ? c : undefined;
      });
    await createFtj(k, ftjManifest("no-such-priority", ns, { preprocess: { enabled: false }, scheduling: { priorityClassName: "does-not-exist" } } as never));
    await refusedWith("no-such-priority", /PriorityClass.*does-not-exist|does-not-exist.*PriorityClass/i);
    assert.match((await getFtj(k, ns, "no-such-priority")).status?.message ?? "", /pods of Job \S+ are refused/);
    await waitFor("a FailedCreate Event on the FineTuneJob", async () => (await eventReasons("no-such-priority")).includes("FailedCreate"));

    await k.core.patchNamespace(
      { name: ns, body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": "restricted" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await createFtj(
      k,
      ftjManifest("host-path", ns, {
        preprocess: { enabled: false },
        volumes: [{ name: "host", hostPath: { path: "/tmp" } }],
        volumeMounts: [{ name: "host", mountPath: "/host" }],
      } as never),
    );
    await refusedWith("host-path", /violates PodSecurity "restricted.*hostPath/);
  });

  test("a mis-sized ResourceQuota and a LimitRange that forbids the requested memory: PodsCreated=False naming each", async () => {
    const refusedWith = (name: string, pattern: RegExp) =>
      waitFor(`${name}: PodsCreated=False`, async (note) => {
        const c = await condition(name, "PodsCreated");
        note(c ?? (await getFtj(k, ns, name)).status?.message);
        return c?.status === "False" && c.reason === "FailedCreate" && pattern.test(c.message) ? c : undefined;
      });
    // The namespace leaves Pod Security alone again, so only the object under test can refuse the pods.
    await k.core.patchNamespace(
      { name: ns, body: { metadata: { labels: { "pod-security.kubernetes.io/enforce": null } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );

    await k.core.createNamespacedResourceQuota({ namespace: ns, body: { metadata: { name: "no-gpus" }, spec: { hard: { "requests.nvidia.com/gpu": "0" } } } });
    await createFtj(k, ftjManifest("over-quota", ns, { preprocess: { enabled: false } }));
    const quota = await refusedWith("over-quota", /exceeded quota: no-gpus.*nvidia\.com\/gpu/);
    assert.match(quota.message, /requested: requests\.nvidia\.com\/gpu=1/);
    await waitFor("a FailedCreate Event on over-quota", async () => (await eventReasons("over-quota")).includes("FailedCreate"));
    await k.core.deleteNamespacedResourceQuota({ namespace: ns, name: "no-gpus" });

    await k.core.createNamespacedLimitRange({
      namespace: ns,
      body: { metadata: { name: "small-pods" }, spec: { limits: [{ type: "Container", max: { memory: "16Gi" } }] } },
    });
    await createFtj(k, ftjManifest("too-much-memory", ns, { preprocess: { enabled: false }, resources: { memory: "64Gi" } } as never));
    await refusedWith("too-much-memory", /maximum memory usage per Container is 16Gi, but limit is 64Gi/);
    assert.match((await getFtj(k, ns, "too-much-memory")).status?.message ?? "", /pods of Job \S+ are refused/);
    await k.core.deleteNamespacedLimitRange({ namespace: ns, name: "small-pods" });
  });

  test("its output claim refused by a ResourceQuota: ObjectsCreated=False naming the quota, an Event, then runs once the quota is gone", async () => {
    await k.core.createNamespacedResourceQuota({ namespace: ns, body: { metadata: { name: "no-claims" }, spec: { hard: { persistentvolumeclaims: "0" } } } });
    // Admission reads the quota's usage, which the quota controller fills in.
    await waitFor("the quota's usage computed", async () => (await k.core.readNamespacedResourceQuota({ namespace: ns, name: "no-claims" })).status?.hard);
    await createFtj(k, ftjManifest("claim-refused", ns, { preprocess: { enabled: false }, merge: { enabled: false } }));
    const refused = await waitFor("ObjectsCreated=False", async (note) => {
      const c = await condition("claim-refused", "ObjectsCreated");
      note(c ?? (await getFtj(k, ns, "claim-refused")).status?.message);
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(refused.reason, "CreateRefused");
    assert.match(refused.message, /refused to create PersistentVolumeClaim claim-refused-output: .*exceeded quota: no-claims/);
    const j = await getFtj(k, ns, "claim-refused");
    assert.equal(j.status?.phase, "Pending", "nothing of the run exists yet");
    assert.equal(j.status?.message, refused.message);
    await waitFor("a CreateRefused Event", async () => (await eventReasons("claim-refused")).includes("CreateRefused"));
    await k.core.deleteNamespacedResourceQuota({ namespace: ns, name: "no-claims" });
    const running = await ran("claim-refused");
    assert.equal(running.status?.conditions?.find((c) => c.type === "ObjectsCreated")?.status, "True");
  });

  test("applied before its Secret: waits (SecretNotFound from the kubelet's report, an Event), then goes on once the Secret exists", async () => {
    await createFtj(
      k,
      ftjManifest("needs-token", ns, {
        preprocess: { enabled: false },
        secrets: { huggingFaceToken: { name: "hf-token", key: "token" } },
        podAnnotations: { [FATE_ANNOTATION]: "run" },
      } as never),
    );
    const pod = await waitFor("needs-token: train pod with an IP", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=needs-token,${LABEL_STAGE}=train`)).find((p) => p.status?.podIP),
    );
    // What a kubelet reports for a container whose Secret does not exist (kwok starts every container).
    await setPodState(k, pod, "Pending", { waiting: { reason: "CreateContainerConfigError", message: 'secret "hf-token" not found' } });
    const waiting = await waitFor("ReferencesResolved=False", async () => {
      const c = await condition("needs-token", "ReferencesResolved");
      return c?.status === "False" ? c : undefined;
    });
    assert.equal(waiting.reason, "SecretNotFound");
    assert.match(waiting.message, /Secret hf-token not found in namespace/);
    assert.match((await getFtj(k, ns, "needs-token")).status?.message ?? "", /waiting: Secret hf-token not found/);
    await waitFor("a SecretNotFound Event", async () => (await eventReasons("needs-token")).includes("SecretNotFound"));

    await k.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "hf-token" }, stringData: { token: "t" } } });
    await setPodState(k, pod, "Running", { running: { startedAt: new Date() } });
    const found = await waitFor("ReferencesResolved=True", async () => {
      const c = await condition("needs-token", "ReferencesResolved");
      return c?.status === "True" ? c : undefined;
    });
    assert.equal(found.reason, "ReferencesFound");
    assert.equal((await getFtj(k, ns, "needs-token")).status?.phase, "Training");
    await waitFor("a ReferencesFound Event", async () => (await eventReasons("needs-token")).includes("ReferencesFound"));
  });
});
