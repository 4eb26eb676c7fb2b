/**
 * The trims must not change a single decision: every reader of cached pods and jobs answers the same on the
 * trimmed copy as on the full object the API server sends, for pods in each state the classifiers know.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject, V1Job, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import { classifyFailure, isDisrupted, stuckPods } from "./failures.ts";
import { firstUnschedulable } from "./scheduling.ts";
import { rankZeroPod } from "../progress/log-plan.ts";
import { changedForController, trimClaim, trimConfigMap, trimFineTuneJob, trimJob, trimPod, trimService } from "./cache-shape.ts";
import type { FineTuneJobObject } from "../api/schema.ts";

const COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index";

/** A pod roughly as the API server returns it (the parts a trim could drop included). */
function pod(name: string, index: number, status: V1Pod["status"], extra: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "ns",
      uid: `uid-${name}`,
      creationTimestamp: new Date(Date.parse("2026-01-01T00:00:00Z")) as never,
      labels: { "finetune.dev/job-name": "ft", "finetune.dev/stage": "train", [COMPLETION_INDEX]: String(index) },
      annotations: { [COMPLETION_INDEX]: String(index) },
      ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: "ft-train-1", uid: "job-uid", controller: true }],
    },
    spec: {
      nodeName: "node-a",
      containers: [
        {
          name: "trainer",
          image: "axolotl:1",
          command: ["python", "/launcher/launcher.py"],
          env: [{ name: "X", value: "y".repeat(200) }],
          resources: { limits: { "nvidia.com/gpu": "8" } },
        },
      ],
      volumes: [{ name: "out", persistentVolumeClaim: { claimName: "ft-output" } }],
      tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }],
      ...extra,
    },
    status: { podIP: "10.0.0.1", podIPs: [{ ip: "10.0.0.1" }], hostIP: "192.168.0.1", qosClass: "Guaranteed", ...status },
  };
}

const terminated = (exitCode: number, reason: string, message = "") => ({
  terminated: {
    exitCode,
    reason,
    message,
    startedAt: "2026-01-01T00:00:01Z" as never,
    finishedAt: "2026-01-01T00:00:09Z" as never,
    containerID: "containerd://abc",
  },
});
const cs = (state: object) => [
  { name: "trainer", image: "axolotl:1", imageID: "sha256:deadbeef", containerID: "containerd://abc", ready: false, restartCount: 0, started: false, state },
];

const PODS: Record<string, V1Pod[]> = {
  oom: [
    pod("p0", 0, { phase: "Failed", containerStatuses: cs(terminated(137, "OOMKilled")) as never }),
    pod("p1", 1, { phase: "Running", containerStatuses: cs({ running: {} }) as never }),
  ],
  launcher: [
    pod("p0", 0, { phase: "Failed", containerStatuses: cs(terminated(1, "Error", JSON.stringify({ rank: 0, exit_code: 1, error: "CUDA error" }))) as never }),
  ],
  pullBackOff: [pod("p0", 0, { phase: "Pending", containerStatuses: cs({ waiting: { reason: "ImagePullBackOff", message: "pull access denied" } }) as never })],
  missingConfigMap: [
    pod("p0", 0, {
      phase: "Pending",
      containerStatuses: cs({ waiting: { reason: "CreateContainerConfigError", message: 'configmap "cfg" not found' } }) as never,
    }),
  ],
  disrupted: [
    pod("p0", 0, { phase: "Failed", reason: "Evicted", conditions: [{ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler" }] as never }),
  ],
  unschedulable: [
    pod(
      "p0",
      0,
      {
        phase: "Pending",
        conditions: [
          { type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/4 nodes are available: 4 Insufficient nvidia.com/gpu." },
        ] as never,
      },
      { nodeName: undefined as never },
    ),
  ],
  running: [
    pod("p0", 0, { phase: "Running", containerStatuses: cs({ running: { startedAt: "2026-01-01T00:00:01Z" } }) as never }),
    pod("p1", 1, { phase: "Running" }),
  ],
};

const job: V1Job = {
  metadata: { name: "ft-train-1", namespace: "ns" },
  spec: {
    parallelism: 2,
    completions: 2,
    suspend: false,
    backoffLimit: 0,
    template: { spec: { containers: [{ name: "trainer", image: "axolotl:1" }], restartPolicy: "Never" } },
  },
  status: {
    active: 1,
    failed: 1,
    ready: 1,
    conditions: [{ type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }] as never,
  },
};

const trimmed = <T>(objs: T[], trim: (o: T) => T) => objs.map((o) => trim(structuredClone(o)));
const now = Date.parse("2026-01-01T01:00:00Z");

describe("cache trims", () => {
  for (const [name, pods] of Object.entries(PODS)) {
    it(`pods ${name}: failure, stuck, unschedulable, disruption and rank-0 answers are unchanged`, () => {
      const slim = trimmed(pods, trimPod);
      assert.deepEqual(classifyFailure("train", trimJob(structuredClone(job)), slim), classifyFailure("train", job, pods));
      assert.deepEqual(stuckPods(slim, now, 60_000), stuckPods(pods, now, 60_000));
      assert.deepEqual(firstUnschedulable(slim), firstUnschedulable(pods));
      assert.deepEqual(slim.map(isDisrupted), pods.map(isDisrupted));
      const ftj = { metadata: { name: "ft", namespace: "ns" }, spec: {}, status: { phase: "Training" } } as unknown as FineTuneJobObject;
      assert.equal(rankZeroPod(ftj, slim)?.metadata?.name, rankZeroPod(ftj, pods)?.metadata?.name);
      assert.ok(JSON.stringify(slim).length < JSON.stringify(pods).length * 0.7, "a pod loses at least 30 % of its size");
    });
  }

  it("jobs keep counts and conditions; ConfigMaps keep config.yaml; Services and claims keep identity", () => {
    const j = trimJob(structuredClone(job));
    assert.deepEqual(j.spec, { parallelism: 2, completions: 2, suspend: false });
    assert.deepEqual(j.status, job.status);
    const cm = trimConfigMap({ metadata: { name: "c" }, data: { "config.yaml": "a: 1", "launcher.py": "x".repeat(1000) }, binaryData: { b: "AA==" } });
    assert.deepEqual(cm, { metadata: { name: "c" }, data: { "config.yaml": "a: 1" } });
    const svc: V1Service = {
      metadata: { name: "s", namespace: "ns", labels: { a: "b" } },
      spec: { clusterIP: "None", selector: { a: "b" }, ports: [{ port: 29500 }] },
      status: {},
    };
    assert.deepEqual(trimService(structuredClone(svc)), { metadata: svc.metadata });
    const pvc: V1PersistentVolumeClaim = {
      metadata: { name: "c", labels: { "finetune.dev/job-name": "j" }, annotations: { "pv.kubernetes.io/bind-completed": "yes" } },
      spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "1Ti" } }, volumeName: "pv-1" },
      status: { phase: "Bound", capacity: { storage: "1Ti" } },
    };
    assert.deepEqual(trimClaim(structuredClone(pvc)), { metadata: { name: "c", labels: { "finetune.dev/job-name": "j" } } });
  });

  it("an update is a reason to reconcile only when the trimmed object changed beyond its resourceVersion", () => {
    // The PV binder's three writes to a new claim (annotations, then spec.volumeName, then status) change nothing kept.
    const created: V1PersistentVolumeClaim = {
      metadata: { name: "c", resourceVersion: "1" },
      spec: { accessModes: ["ReadWriteOnce"] },
      status: { phase: "Pending" },
    };
    const bound: V1PersistentVolumeClaim = {
      metadata: { name: "c", resourceVersion: "4", annotations: { "pv.kubernetes.io/bind-completed": "yes" } },
      spec: { accessModes: ["ReadWriteOnce"], volumeName: "pv-1" },
      status: { phase: "Bound" },
    };
    assert.equal(changedForController(trimClaim(structuredClone(bound)), trimClaim(structuredClone(created))), false);
    assert.equal(changedForController(bound, created), true, "untrimmed, the same update is a change");
    // A deletion in progress is a change.
    const deleting = { metadata: { ...created.metadata, resourceVersion: "5", deletionTimestamp: new Date(0) } };
    assert.equal(changedForController(trimClaim(structuredClone(deleting)), trimClaim(structuredClone(created))), true);
    // A pod's phase is a change; the same object again (a relist) is not.
    const pod: V1Pod = { metadata: { name: "p", resourceVersion: "7" }, status: { phase: "Pending" } };
    assert.equal(changedForController({ ...pod, metadata: { ...pod.metadata, resourceVersion: "8" }, status: { phase: "Running" } } as V1Pod, pod), true);
    assert.equal(changedForController(structuredClone(pod), pod), false);
  });

  it("FineTuneJobs lose kubectl's last-applied copy and nothing else", () => {
    const ftj = {
      apiVersion: "finetune.dev/v1alpha1",
      kind: "FineTuneJob",
      metadata: { name: "ft", annotations: { keep: "me", "kubectl.kubernetes.io/last-applied-configuration": "{...}" } },
      spec: { nodes: 1 },
      status: { phase: "Training" },
    } as unknown as FineTuneJobObject & KubernetesObject;
    const out = trimFineTuneJob(structuredClone(ftj));
    assert.deepEqual(out.metadata.annotations, { keep: "me" });
    assert.deepEqual({ ...out, metadata: {} }, { ...ftj, metadata: {} });
  });
});
