/**
 * Fault tolerance end to end: gang restarts that resume, disruptions that do
 * not count, retry limits with a hint, and an operator killed mid-teardown.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { LAUNCHER_FILE } from "../src/render/names.ts";
import { EXIT_CODE_ANNOTATION, FATE_ANNOTATION, TERMINATION_MESSAGE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, disruptPod, finishPod, ftjManifest, getFtj, listPods, patchFtjSpec } from "./lib/ftj.ts";
import { startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;

before(async () => {
  suite = await suiteNamespace("faults");
  ({ k, ns } = suite);
  op = await startOperator({ namespace: ns });
});

after(async () => {
  await suite?.cleanup(op);
});

const trainPods = (name: string, attempt: number) => listPods(k, ns, `${LABEL_JOB_NAME}=${name},${LABEL_STAGE}=train,${LABEL_ATTEMPT}=${attempt}`);
const runningGang = (name: string, attempt: number, size: number) =>
  waitFor(`${name} attempt ${attempt}: ${size} running pods`, async (note) => {
    const pods = await trainPods(name, attempt);
    note(pods.map((p) => [p.metadata?.name, p.status?.phase]));
    return pods.length === size && pods.every((p) => p.status?.phase === "Running") ? pods : undefined;
  });
const rank = (pods: Awaited<ReturnType<typeof trainPods>>, r: number) =>
  pods.find((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === String(r))!;
const launcherMessage = (tail: string[], exitCode: number) => JSON.stringify({ stage: "train", exitCode, reason: "Failed", resumeFrom: null, tail });

describe("fault tolerance", () => {
  test("rank 1 fails mid-training: the whole gang is torn down, attempt 1 resumes and the job succeeds with restarts 1", async () => {
    await createFtj(
      k,
      ftjManifest("rank-fail", ns, {
        nodes: 2,
        gpusPerNode: 8,
        preprocess: { enabled: false },
        merge: { onCPU: true },
        podAnnotations: { [FATE_ANNOTATION]: "run" },
      }),
    );
    const gang0 = await runningGang("rank-fail", 0, 2);
    await finishPod(k, rank(gang0, 1), 1, launcherMessage(["Traceback (most recent call last):", "RuntimeError: something broke on rank 1"], 1));
    const gang1 = await runningGang("rank-fail", 1, 2);
    assert.equal((await trainPods("rank-fail", 0)).length, 0, "attempt 0 is gone before attempt 1 runs");
    const mid = await getFtj(k, ns, "rank-fail");
    assert.equal(mid.status?.attempt, 1);
    assert.equal(mid.status?.restarts, 1);
    assert.equal(mid.status?.lastFailure?.exitCode, 1);
    assert.equal(mid.status?.lastFailure?.pod, rank(gang0, 1).metadata?.name);
    assert.match(mid.status?.lastFailure?.message ?? "", /RuntimeError: something broke on rank 1/);
    // attempt 1 is told to resume: the launcher wraps the same command, which picks the newest complete checkpoint itself
    assert.deepEqual(gang1[0]!.spec?.containers[0]?.command?.slice(0, 3), ["python3", LAUNCHER_FILE, "--"]);
    for (const p of gang1)
      await finishPod(
        k,
        p,
        0,
        JSON.stringify({ stage: "train", exitCode: 0, reason: "Completed", resumeFrom: "/finetune/output/model/checkpoint-200", resumeStep: 200, tail: [] }),
      );
    const merge = await waitFor("merge pod", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=rank-fail,${LABEL_STAGE}=merge`)).find((p) => p.status?.phase === "Running"),
    );
    await finishPod(k, merge, 0);
    const done = await waitFor("Succeeded", async () => {
      const j = await getFtj(k, ns, "rank-fail");
      return j.status?.phase === "Succeeded" ? j : undefined;
    });
    assert.equal(done.status?.restarts, 1);
    assert.equal(done.status?.attempts?.find((a) => a.stage === "train" && a.attempt === 1)?.resumedFrom, "/finetune/output/model/checkpoint-200");
  });

  test("an image edit of a running job is rejected, and the next attempt still runs what the job started with", async () => {
    await createFtj(
      k,
      ftjManifest("edited", ns, { gpusPerNode: 2, preprocess: { enabled: false }, merge: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }),
    );
    const gang0 = await runningGang("edited", 0, 1);
    const startedImage = gang0[0]!.spec?.containers[0]?.image;
    await assert.rejects(
      patchFtjSpec(k, ns, "edited", { gpusPerNode: 4 }),
      (err: { code?: number; body?: string }) => err.code === 422 && /immutable once the job has started/.test(err.body ?? ""),
      "the API server refuses a shape change (CEL)",
    );
    await patchFtjSpec(k, ns, "edited", { image: "example.invalid/axolotl:other" });
    await waitFor("SpecChangeRejected", async () =>
      (await getFtj(k, ns, "edited")).status?.conditions?.some((c) => c.type === "SpecChangeRejected" && c.status === "True"),
    );
    await disruptPod(k, gang0[0]!);
    const gang1 = await runningGang("edited", 1, 1);
    const container = gang1[0]!.spec?.containers[0];
    assert.equal(container?.image, startedImage, "the restart keeps the image the run started with");
    assert.equal(container?.resources?.limits?.["nvidia.com/gpu"], "2", "and its GPU count");
    await finishPod(k, gang1[0]!, 0);
    await waitFor("Succeeded", async () => (await getFtj(k, ns, "edited")).status?.phase === "Succeeded");
  });

  test("a pod evicted for preemption starts a new attempt without counting a restart", async () => {
    await createFtj(
      k,
      ftjManifest("preempted", ns, {
        nodes: 2,
        gpusPerNode: 4,
        preprocess: { enabled: false },
        merge: { enabled: false },
        podAnnotations: { [FATE_ANNOTATION]: "run" },
      }),
    );
    const gang0 = await runningGang("preempted", 0, 2);
    await disruptPod(k, rank(gang0, 0));
    const gang1 = await runningGang("preempted", 1, 2);
    const mid = await getFtj(k, ns, "preempted");
    assert.equal(mid.status?.restarts, 0);
    assert.equal(mid.status?.disruptions, 1);
    assert.equal(mid.status?.attempts?.find((a) => a.attempt === 0)?.result, "Disrupted");
    for (const p of gang1) await finishPod(k, p, 0);
    await waitFor("Succeeded", async () => (await getFtj(k, ns, "preempted")).status?.phase === "Succeeded");
  });

  test("every attempt fails: Failed after maxRestarts, with the hint in status and an Event, nothing left running", async () => {
    const oom = JSON.stringify({ stage: "train", exitCode: 137, reason: "Failed", tail: ["Killed"] });
    await createFtj(
      k,
      ftjManifest("always-fails", ns, {
        maxRestarts: 2,
        preprocess: { enabled: false },
        podAnnotations: { [FATE_ANNOTATION]: "fail", [EXIT_CODE_ANNOTATION]: "137", [TERMINATION_MESSAGE_ANNOTATION]: oom },
      }),
    );
    const failed = await waitFor(
      "Failed",
      async (note) => {
        const j = await getFtj(k, ns, "always-fails");
        note(j.status);
        return j.status?.phase === "Failed" ? j : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(failed.status?.restarts, 2, "maxRestarts restarts, then the third failure ends the job");
    assert.equal(failed.status?.attempts?.filter((a) => a.stage === "train").length, 3);
    assert.equal(failed.status?.lastFailure?.reason, "HostOutOfMemory");
    assert.match(failed.status?.lastFailure?.hint ?? "", /host RAM/);
    assert.equal(failed.status?.conditions?.find((c) => c.type === "Failed")?.reason, "BackoffLimitExceeded");
    const events = await waitFor("Failed event with hint", async () => {
      const ev = (await k.core.listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=always-fails" })).items;
      return ev.find((e) => e.reason === "Failed" && /host RAM/.test(e.message ?? ""));
    });
    assert.equal(events.type, "Warning");
    const running = (await listPods(k, ns, `${LABEL_JOB_NAME}=always-fails`)).filter((p) => p.status?.phase === "Running" || p.status?.phase === "Pending");
    assert.equal(running.length, 0);
  });

  test("a config Axolotl rejects at start-up fails at once, without retries", async () => {
    const rejected = JSON.stringify({
      stage: "train",
      exitCode: 1,
      reason: "Failed",
      tail: ["pydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig", "  Value error, ..."],
    });
    await createFtj(
      k,
      ftjManifest("rejected", ns, {
        preprocess: { enabled: false },
        podAnnotations: { [FATE_ANNOTATION]: "fail", [TERMINATION_MESSAGE_ANNOTATION]: rejected },
      }),
    );
    const failed = await waitFor("Failed", async () => {
      const j = await getFtj(k, ns, "rejected");
      return j.status?.phase === "Failed" ? j : undefined;
    });
    assert.equal(failed.status?.lastFailure?.reason, "ConfigRejected");
    assert.equal(failed.status?.lastFailure?.permanent, true);
    assert.equal(failed.status?.attempts?.filter((a) => a.stage === "train").length, 1);
  });

  test("the operator killed during a teardown creates exactly one next attempt", async () => {
    await op.stop();
    // A long backoff keeps the operator between "attempt ended" and "next attempt created" when we kill it.
    op = await startOperator({ namespace: ns, extraArgs: ["--restart-backoff-seconds=4"] });
    await createFtj(
      k,
      ftjManifest("teardown", ns, {
        nodes: 2,
        gpusPerNode: 8,
        preprocess: { enabled: false },
        merge: { enabled: false },
        podAnnotations: { [FATE_ANNOTATION]: "run" },
      }),
    );
    const gang0 = await runningGang("teardown", 0, 2);
    await finishPod(k, rank(gang0, 0), 1);
    await waitFor("attempt 0 recorded as ended", async () => (await getFtj(k, ns, "teardown")).status?.attempts?.find((a) => a.attempt === 0)?.endTime);
    await op.stop("SIGKILL");
    op = await startOperator({ namespace: ns, extraArgs: ["--restart-backoff-seconds=1"] });
    const gang1 = await runningGang("teardown", 1, 2);
    const jobs = (await k.batch.listNamespacedJob({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=teardown` })).items.map((j) => j.metadata?.name);
    assert.deepEqual(jobs, ["teardown-train-1"]);
    for (const p of gang1) await finishPod(k, p, 0);
    const done = await waitFor("Succeeded", async () => {
      const j = await getFtj(k, ns, "teardown");
      return j.status?.phase === "Succeeded" ? j : undefined;
    });
    assert.equal(done.status?.restarts, 1);
    assert.equal(done.status?.attempt, 1);
  });
});
