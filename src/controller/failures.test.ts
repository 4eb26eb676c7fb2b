import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { V1Job, V1Pod } from "@kubernetes/client-node";

import { classifyFailure, isDisrupted, parseTerminationMessage, stuckPods } from "./failures.ts";

const NOW = Date.parse("2030-01-01T12:00:00.000Z");
const iso = (secondsFromNow: number) => new Date(NOW + secondsFromNow * 1000);
const GRACE = 300_000;

interface PodOpts {
  phase?: string;
  exitCode?: number;
  message?: string;
  reason?: string;
  finishedAt?: Date;
  node?: string;
  podReason?: string;
  conditions?: { type: string; status: string; reason?: string }[];
  waiting?: { reason: string; message?: string };
  createdAt?: Date;
  containerName?: string;
}

function pod(name: string, o: PodOpts = {}): V1Pod {
  const state = o.waiting
    ? { waiting: o.waiting }
    : o.exitCode !== undefined
      ? {
          terminated: {
            exitCode: o.exitCode,
            ...(o.reason ? { reason: o.reason } : {}),
            ...(o.message !== undefined ? { message: o.message } : {}),
            ...(o.finishedAt ? { finishedAt: o.finishedAt } : {}),
          },
        }
      : { running: {} };
  return {
    metadata: { name, namespace: "ml", creationTimestamp: o.createdAt ?? iso(-600) },
    spec: { ...(o.node ? { nodeName: o.node } : {}), containers: [{ name: "trainer", image: "axolotlai/axolotl:0.18.0" }] },
    status: {
      phase: o.phase ?? (o.exitCode !== undefined ? (o.exitCode === 0 ? "Succeeded" : "Failed") : o.waiting ? "Pending" : "Running"),
      ...(o.podReason ? { reason: o.podReason } : {}),
      ...(o.conditions ? { conditions: o.conditions } : {}),
      containerStatuses: [{ name: o.containerName ?? "trainer", image: "", imageID: "", ready: false, restartCount: 0, state }],
    },
  };
}

function failedJob(reason = "BackoffLimitExceeded", message = "Job has reached the specified backoff limit", type = "Failed"): V1Job {
  return { metadata: { name: "demo-train-0" }, status: { failed: 1, conditions: [{ type, status: "True", reason, message }] } };
}

const summary = (tail: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ stage: "train", exitCode: 1, reason: "Failed", resumeFrom: "/finetune/output/model/checkpoint-40", resumeStep: 40, tail, ...extra });

describe("parseTerminationMessage", () => {
  it("parses the launcher's JSON summary; the text is its tail", () => {
    const r = parseTerminationMessage(summary(["line one", "line two"]));
    assert.equal(r.summary?.exitCode, 1);
    assert.equal(r.summary?.resumeFrom, "/finetune/output/model/checkpoint-40");
    assert.equal(r.text, "line one\nline two");
  });

  it("a JSON summary without a tail list has empty text", () => {
    const r = parseTerminationMessage(JSON.stringify({ exitCode: 2, tail: "not a list" }));
    assert.equal(r.summary?.exitCode, 2);
    assert.equal(r.text, "");
  });

  it("fields of the wrong type are dropped, never passed on to status", () => {
    const r = parseTerminationMessage(JSON.stringify({ exitCode: "1", resumeFrom: 42, resumeStep: -3, tail: ["ok", 7], reason: "Failed", finalModel: "yes" }));
    assert.deepEqual(r.summary, { reason: "Failed" });
    assert.equal(r.text, "");
    assert.equal(parseTerminationMessage(JSON.stringify({ resumeFrom: null })).summary?.resumeFrom, null, "null means: started from scratch");
  });

  it("falls back to the raw text (FallbackToLogsOnError) for anything that is not a JSON object", () => {
    for (const raw of ["Traceback (most recent call last):\nRuntimeError: x", "[1, 2]", '"a string"', "42", "null", "{truncated json"]) {
      const r = parseTerminationMessage(raw);
      assert.equal(r.summary, undefined, raw);
      assert.equal(r.text, raw);
    }
  });

  it("empty or missing message", () => {
    assert.deepEqual(parseTerminationMessage(undefined), { text: "" });
    assert.deepEqual(parseTerminationMessage(""), { text: "" });
  });
});

describe("isDisrupted", () => {
  it("a DisruptionTarget=True condition or a disruption pod reason", () => {
    assert.equal(isDisrupted(pod("p", { exitCode: 143, conditions: [{ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler" }] })), true);
    assert.equal(isDisrupted(pod("p", { exitCode: 143, conditions: [{ type: "DisruptionTarget", status: "False" }] })), false);
    for (const reason of ["Evicted", "Preempting", "NodeLost", "NodeShutdown", "DeletionByTaintManager"]) {
      assert.equal(isDisrupted(pod("p", { exitCode: 137, podReason: reason })), true, reason);
    }
    assert.equal(isDisrupted(pod("p", { exitCode: 1 })), false);
    assert.equal(isDisrupted(pod("p", { exitCode: 137, reason: "OOMKilled" })), false, "an OOM kill is the job's own failure");
  });
});

describe("classifyFailure", () => {
  it("JSON termination message: hint from the tail, message ends with the last meaningful line", () => {
    const p = pod("demo-train-0-0-abc", {
      exitCode: 1,
      node: "gpu-a",
      message: summary(["step 12/100", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "-----"]),
    });
    const f = classifyFailure("train", failedJob(), [p]);
    assert.equal(f.kind, "Failed");
    assert.equal(f.reason, "GPUOutOfMemory");
    assert.equal(f.permanent, false);
    assert.equal(f.exitCode, 1);
    assert.equal(f.pod, "demo-train-0-0-abc");
    assert.equal(f.node, "gpu-a");
    assert.equal(f.message, "pod demo-train-0-0-abc on gpu-a exited with code 1: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB");
    assert.match(f.hint!, /micro_batch_size/);
  });

  it("raw termination message (log fallback): matched the same way", () => {
    const p = pod("r0", {
      exitCode: 1,
      message: "lots of logs\npydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig\nbase_model\n  Field required\n",
    });
    const f = classifyFailure("train", failedJob(), [p]);
    assert.equal(f.reason, "ConfigRejected");
    assert.equal(f.permanent, true);
    assert.match(f.message, /: Field required$/);
  });

  it("JSON whose tail is empty falls back to no last line", () => {
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 2, message: summary([]) })]);
    assert.equal(f.message, "pod r0 exited with code 2");
    assert.equal(f.reason, "TrainerError");
    assert.equal(f.hint, undefined);
  });

  it("a very long last line is shortened", () => {
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 1, message: `RuntimeError: ${"x".repeat(1000)}` })]);
    assert.ok(f.message.endsWith("..."));
    assert.ok(f.message.length < 400, `${f.message.length}`);
  });

  it("the earliest failed pod is the cause (other ranks fail after it)", () => {
    const pods = [
      pod("rank0", { exitCode: 1, node: "gpu-0", finishedAt: iso(-5), message: "torch.distributed.DistBackendError: NCCL error: remote process exited" }),
      pod("rank1", { exitCode: 1, node: "gpu-1", finishedAt: iso(-30), message: "torch.OutOfMemoryError: CUDA out of memory." }),
      pod("rank2", { exitCode: 1, node: "gpu-2", message: "no finish time: sorted last" }),
      pod("rank3"), // still running
    ];
    for (const order of [pods, [...pods].reverse()]) {
      const f = classifyFailure("train", failedJob(), order);
      assert.equal(f.pod, "rank1");
      assert.equal(f.node, "gpu-1");
      assert.equal(f.reason, "GPUOutOfMemory");
    }
  });

  it("OOMKilled container: host RAM, with the reason in the message", () => {
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 137, reason: "OOMKilled" })]);
    assert.equal(f.reason, "HostOutOfMemory");
    assert.match(f.message, /exited with code 137 \(OOMKilled\)/);
    assert.match(f.hint!, /host RAM/);
  });

  it("a torchrun worker SIGKILLed (real launcher message from axolotl 0.18.0): host RAM, although the pod exited 1", () => {
    // Written by the launcher in the real-trainer tier (e2e/axolotl/trainer.test.ts, FINETUNE_WRITE_FIXTURES=1).
    const message = readFileSync(new URL("./testdata/termination-worker-sigkill.json", import.meta.url), "utf8");
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 1, message })]);
    assert.equal(f.reason, "HostOutOfMemory");
    assert.match(f.hint!, /host RAM/);
    assert.equal(parseTerminationMessage(message).summary?.workerSignal, "SIGKILL");
    // The same pod without the launcher's reading of torchrun's report is a plain trainer error.
    const plain = JSON.stringify({ ...JSON.parse(message), workerSignal: undefined, tail: ["torchrun exited 1"] });
    assert.equal(classifyFailure("train", failedJob(), [pod("r0", { exitCode: 1, message: plain })]).reason, "TrainerError");
  });

  it("merge stage uses the merge rules", () => {
    const f = classifyFailure("merge", failedJob(), [pod("m0", { exitCode: 137, reason: "OOMKilled" })]);
    assert.equal(f.reason, "MergeOutOfMemory");
  });

  it("spec.permanentExitCodes makes an exit code permanent", () => {
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 42, message: "custom check failed" })], [42, 43]);
    assert.equal(f.permanent, true);
    assert.equal(f.reason, "PermanentExitCode");
    assert.match(f.hint!, /spec\.permanentExitCodes/);
    const other = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 1 })], [42]);
    assert.equal(other.permanent, false);
  });

  it("a known signature keeps its own reason and hint even for a permanent exit code", () => {
    const f = classifyFailure("train", failedJob(), [pod("r0", { exitCode: 1, message: "CUDA out of memory" })], [1]);
    assert.equal(f.permanent, true);
    assert.equal(f.reason, "GPUOutOfMemory");
  });

  it("the trainer container is read even when it is not the first container", () => {
    const p = pod("r0", { exitCode: 1, message: "CUDA out of memory" });
    p.status!.containerStatuses!.unshift({ name: "sidecar", image: "", imageID: "", ready: true, restartCount: 0, state: { running: {} } });
    assert.equal(classifyFailure("train", failedJob(), [p]).reason, "GPUOutOfMemory");
  });

  it("no failed pods left: the Job condition explains it", () => {
    const f = classifyFailure("train", failedJob("DeadlineExceeded", "Job was active longer than specified deadline"), []);
    assert.deepEqual(f, { kind: "Failed", permanent: false, reason: "DeadlineExceeded", message: "Job was active longer than specified deadline" });
    const bare = classifyFailure("train", undefined, []);
    assert.equal(bare.reason, "JobFailed");
  });

  describe("disruptions are not the job's fault", () => {
    it("a disrupted pod, even when another rank failed first", () => {
      const pods = [
        pod("rank0", { exitCode: 1, finishedAt: iso(-60), message: "NCCL watchdog timeout" }),
        pod("rank1", { exitCode: 143, node: "spot-1", conditions: [{ type: "DisruptionTarget", status: "True", reason: "PreemptionByScheduler" }] }),
      ];
      const f = classifyFailure("train", failedJob(), pods);
      assert.equal(f.kind, "Disrupted");
      assert.equal(f.permanent, false);
      assert.equal(f.pod, "rank1");
      assert.equal(f.node, "spot-1");
      assert.match(f.message, /rank1 was disrupted/);
    });

    it("the Job's PodFailurePolicy condition naming DisruptionTarget (pods gone)", () => {
      const f = classifyFailure(
        "train",
        failedJob("PodFailurePolicy", "Pod ml/demo-train-0-1 has condition DisruptionTarget matching FailJob rule at index 0"),
        [],
      );
      assert.equal(f.kind, "Disrupted");
      assert.match(f.message, /DisruptionTarget/);
    });

    it("a PodFailurePolicy condition about something else is a failure", () => {
      const f = classifyFailure(
        "train",
        failedJob("PodFailurePolicy", "Container trainer for pod ml/x failed with exit code 42 matching FailJob rule at index 1"),
        [],
      );
      assert.equal(f.kind, "Failed");
    });

    it("FailureTarget counts like Failed", () => {
      const f = classifyFailure(
        "train",
        failedJob("PodFailurePolicy", "Pod ml/p has condition DisruptionTarget matching FailJob rule at index 0", "FailureTarget"),
        [],
      );
      assert.equal(f.kind, "Disrupted");
    });
  });
});

describe("stuckPods", () => {
  it("nothing waiting: no failure, no recheck", () => {
    assert.deepEqual(stuckPods([pod("r0"), pod("r1", { exitCode: 1 })], NOW, GRACE), {});
  });

  it("ImagePullBackOff within the grace: recheck when the grace ends", () => {
    const r = stuckPods([pod("r0", { waiting: { reason: "ImagePullBackOff" }, createdAt: iso(-60) })], NOW, GRACE);
    assert.equal(r.failure, undefined);
    assert.equal(r.recheckAt, NOW - 60_000 + GRACE);
  });

  it("the earliest recheck of several pods", () => {
    const r = stuckPods(
      [
        pod("r0", { waiting: { reason: "ErrImagePull" }, createdAt: iso(-10) }),
        pod("r1", { waiting: { reason: "CreateContainerConfigError" }, createdAt: iso(-100) }),
      ],
      NOW,
      GRACE,
    );
    assert.equal(r.recheckAt, NOW - 100_000 + GRACE);
  });

  it("ImagePullBackOff beyond the grace: permanent ImagePullFailed naming the image", () => {
    const r = stuckPods(
      [pod("r0", { node: "n1", waiting: { reason: "ImagePullBackOff", message: 'Back-off pulling image "axolotlai/axolotl:0.18.0"' }, createdAt: iso(-301) })],
      NOW,
      GRACE,
    );
    assert.equal(r.failure?.reason, "ImagePullFailed");
    assert.equal(r.failure?.permanent, true);
    assert.equal(r.failure?.kind, "Failed");
    assert.equal(r.failure?.pod, "r0");
    assert.equal(r.failure?.node, "n1");
    assert.match(r.failure!.message, /^pod r0: ImagePullBackOff: Back-off pulling image/);
    assert.match(r.failure!.hint!, /axolotlai\/axolotl:0\.18\.0.*imagePullSecrets/s);
  });

  it("InvalidImageName and ErrImageNeverPull fail at once", () => {
    for (const reason of ["InvalidImageName", "ErrImageNeverPull"]) {
      const r = stuckPods([pod("r0", { waiting: { reason }, createdAt: iso(-1) })], NOW, GRACE);
      assert.equal(r.failure?.reason, "ImagePullFailed", reason);
    }
  });

  it("a Secret/ConfigMap that does not exist (yet) is missing, not a failure, however long it takes", () => {
    const r = stuckPods(
      [pod("r0", { waiting: { reason: "CreateContainerConfigError", message: 'secret "hf-token" not found' }, createdAt: iso(-600) })],
      NOW,
      GRACE,
    );
    assert.equal(r.failure, undefined);
    assert.deepEqual(r.missing, { kind: "Secret", name: "hf-token", pod: "r0" });
    const c = stuckPods(
      [pod("r0", { waiting: { reason: "CreateContainerConfigError", message: 'configmap "extra" not found' }, createdAt: iso(-600) })],
      NOW,
      GRACE,
    );
    assert.deepEqual(c.missing, { kind: "ConfigMap", name: "extra", pod: "r0" });
  });

  it("another container config error beyond the grace: ContainerConfigError", () => {
    const r = stuckPods(
      [pod("r0", { waiting: { reason: "CreateContainerConfigError", message: "couldn't find key token in Secret ml/hf-token" }, createdAt: iso(-600) })],
      NOW,
      GRACE,
    );
    assert.equal(r.failure?.reason, "ContainerConfigError");
    assert.match(r.failure!.message, /couldn't find key token/);
    assert.match(r.failure!.hint!, /Secret or ConfigMap/);
  });

  it("ordinary waiting reasons (ContainerCreating, PodInitializing) are not stuck", () => {
    const r = stuckPods([pod("r0", { waiting: { reason: "ContainerCreating" }, createdAt: iso(-3600) })], NOW, GRACE);
    assert.deepEqual(r, {});
  });
});
