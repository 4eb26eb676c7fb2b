/**
 * The controller end to end on the real control plane (issue: from
 * `kubectl apply` to a merged model): phases, gang pods, invalid specs,
 * deletion, suspend/resume, operator crash, and cost at rest.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GROUP, LABEL_JOB_NAME, LABEL_STAGE, PLURAL, VERSION } from "../src/api/group.ts";
import { PHASES, type FineTuneJobObject } from "../src/api/schema.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, deleteFtj, finishPod, ftjManifest, getFtj, listPods, LORA_CONFIG, patchFtjSpec } from "./lib/ftj.ts";
import { metricValue, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";
import { recordPhases, type PhaseRecorder } from "./lib/watch-phases.ts";

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;
let phases: PhaseRecorder;

before(async () => {
  suite = await suiteNamespace("lifecycle");
  ({ k, ns } = suite);
  op = await startOperator({ namespace: ns });
  phases = await recordPhases(k, ns);
});

after(async () => {
  phases?.stop();
  await suite?.cleanup(op);
});

const phaseOf = async (name: string) => (await getFtj(k, ns, name)).status?.phase;
const succeeded = (name: string, timeoutMs = 60_000) =>
  waitFor(
    `${name} Succeeded`,
    async (note) => {
      const j = await getFtj(k, ns, name);
      note(j.status);
      if (j.status?.phase === "Failed") throw new Error(`${name} failed: ${j.status.message}`);
      return j.status?.phase === "Succeeded" ? j : undefined;
    },
    { timeoutMs },
  );

async function eventsOf(name: string) {
  const list = await k.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},involvedObject.kind=FineTuneJob` });
  return list.items;
}

describe("lifecycle", () => {
  test("single node: Preprocessing -> Training -> Merging -> Succeeded, with outputs and events", async () => {
    await createFtj(k, ftjManifest("single", ns));
    const done = await succeeded("single");
    assert.deepEqual(await phases.until("single", "Succeeded"), ["Preprocessing", "Training", "Merging", "Succeeded"]);
    assert.equal(done.status?.outputs?.claimName, "single-output");
    assert.equal(done.status?.outputs?.mergedModelPath, "model/merged");
    assert.equal(done.status?.restarts, 0);
    for (const type of ["Validated", "Preprocessed", "Trained", "Merged", "Succeeded"]) {
      assert.equal(done.status?.conditions?.find((c) => c.type === type)?.status, "True", `${type} condition`);
    }
    const reasons = (
      await waitFor("events", async () => {
        const ev = await eventsOf("single");
        return ev.some((e) => e.reason === "Succeeded") ? ev : undefined;
      })
    ).map((e) => e.reason);
    // Events for what a user acts on: a clean run is one Event (the way through the stages is in status).
    assert.deepEqual(reasons, ["Succeeded"]);
    const pvc = await k.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "single-output" });
    assert.equal(pvc.status?.phase, "Bound");
  });

  test("2 nodes x 8 GPUs: one gang on distinct nodes, one rendezvous target, distinct ranks", async () => {
    await createFtj(k, ftjManifest("gang", ns, { nodes: 2, gpusPerNode: 8, preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
    const pods = await waitFor("2 running training pods", async (note) => {
      const p = await listPods(k, ns, `${LABEL_JOB_NAME}=gang,${LABEL_STAGE}=train`);
      note(p.map((x) => [x.metadata?.name, x.status?.phase]));
      return p.length === 2 && p.every((x) => x.status?.phase === "Running") ? p : undefined;
    });
    // The pods' changes reach the job's status within the controller's batch window (CHILD_EVENT_BATCH_MS), not at once.
    await waitFor("phase Training", async () => ((await phaseOf("gang")) === "Training" ? true : undefined));
    const nodes = new Set(pods.map((p) => p.spec?.nodeName));
    assert.equal(nodes.size, 2, "ranks on two different nodes");
    const masters = new Set(pods.map((p) => p.spec?.containers[0]?.command?.find((a) => a.startsWith("--master_addr="))));
    assert.equal(masters.size, 1, "same rendezvous target");
    assert.match([...masters][0]!, /^--master_addr=gang-train-0-0\.gang-ranks\./);
    const ranks = pods.map((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"]).sort();
    assert.deepEqual(ranks, ["0", "1"]);
    for (const p of pods) {
      assert.equal(p.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"], "8");
      assert.equal(p.spec?.subdomain, "gang-ranks");
    }
    for (const p of pods) await finishPod(k, p, 0);
    const merge = await waitFor("merge pod running", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=gang,${LABEL_STAGE}=merge`)).find((p) => p.status?.phase === "Running"),
    );
    await finishPod(k, merge, 0);
    await succeeded("gang");
    assert.deepEqual(await phases.until("gang", "Succeeded"), ["Training", "Merging", "Succeeded"]);
  });

  test("invalid spec: InvalidSpec condition and an Event naming the key, no children; fixed spec runs", async () => {
    await createFtj(k, ftjManifest("invalid", ns, { config: { ...LORA_CONFIG, adapter: "qlora" } }));
    const failed = await waitFor("InvalidSpec", async () => {
      const j = await getFtj(k, ns, "invalid");
      return j.status?.conditions?.find((c) => c.type === "Validated" && c.reason === "InvalidSpec") ? j : undefined;
    });
    assert.equal(failed.status?.phase, "Failed");
    assert.match(failed.status?.message ?? "", /spec\.config\.load_in_4bit/);
    const ev = await waitFor("InvalidSpec event", async () => (await eventsOf("invalid")).find((e) => e.reason === "InvalidSpec"));
    assert.match(ev.message ?? "", /load_in_4bit/);
    assert.equal((await k.batch.listNamespacedJob({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=invalid` })).items.length, 0);
    assert.equal((await k.core.listNamespacedConfigMap({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=invalid` })).items.length, 0);
    await patchFtjSpec(k, ns, "invalid", { config: { ...LORA_CONFIG, adapter: "qlora", load_in_4bit: true } });
    await succeeded("invalid");
  });

  test("delete mid-run removes compute at once; the output claim is kept (Retain) or deleted (Delete)", async () => {
    const running = { podAnnotations: { [FATE_ANNOTATION]: "run" }, preprocess: { enabled: false } };
    await createFtj(k, ftjManifest("keep", ns, running));
    await createFtj(k, ftjManifest("drop", ns, { ...running, storage: { output: { deletionPolicy: "Delete" } } }));
    for (const name of ["keep", "drop"]) {
      await waitFor(`${name} training pod running`, async () =>
        (await listPods(k, ns, `${LABEL_JOB_NAME}=${name}`)).some((p) => p.status?.phase === "Running"),
      );
      await deleteFtj(k, ns, name);
    }
    for (const name of ["keep", "drop"]) {
      await waitFor(`${name}: jobs and pods gone`, async (note) => {
        const jobs = (await k.batch.listNamespacedJob({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=${name}` })).items;
        const pods = await listPods(k, ns, `${LABEL_JOB_NAME}=${name}`);
        note({ jobs: jobs.map((j) => j.metadata?.name), pods: pods.map((p) => p.metadata?.name) });
        return jobs.length === 0 && pods.length === 0;
      });
    }
    const keep = await k.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "keep-output" });
    assert.equal(keep.metadata?.deletionTimestamp, undefined, "retained claim survives its FineTuneJob");
    await waitFor("drop-output claim deleted", async () => {
      try {
        await k.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "drop-output" });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    });
  });

  test("suspend mid-training stops the pods and keeps data; resume starts a new attempt that completes", async () => {
    await createFtj(k, ftjManifest("pause", ns, { preprocess: { enabled: false }, merge: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
    await waitFor("training pod running", async () => (await listPods(k, ns, `${LABEL_JOB_NAME}=pause`)).some((p) => p.status?.phase === "Running"));
    await patchFtjSpec(k, ns, "pause", { suspend: true });
    await waitFor("Suspended with no pods", async (note) => {
      const pods = await listPods(k, ns, `${LABEL_JOB_NAME}=pause`);
      const phase = await phaseOf("pause");
      note({ phase, pods: pods.map((p) => p.metadata?.name) });
      return phase === "Suspended" && pods.length === 0;
    });
    await k.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "pause-output" });
    await patchFtjSpec(k, ns, "pause", { suspend: false });
    const pod = await waitFor("attempt 1 pod running", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=pause,finetune.dev/attempt=1`)).find((p) => p.status?.phase === "Running"),
    );
    await finishPod(k, pod, 0);
    const done = await succeeded("pause");
    assert.equal(done.status?.restarts, 0, "a suspension is not a failure");
    assert.equal(done.status?.attempts?.find((a) => a.stage === "train" && a.attempt === 0)?.result, "Suspended");
    assert.deepEqual((await phases.until("pause", "Succeeded")).slice(-3), ["Suspended", "Training", "Succeeded"]);
  });

  test("operator killed (SIGKILL) mid-training and restarted: no duplicate Jobs, the run completes", async () => {
    await createFtj(k, ftjManifest("crash", ns, { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
    const pod = await waitFor("training pod running", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=crash,${LABEL_STAGE}=train`)).find((p) => p.status?.phase === "Running"),
    );
    await op.stop("SIGKILL");
    await finishPod(k, pod, 0); // training finishes while no operator runs
    op = await startOperator({ namespace: ns });
    const merge = await waitFor("merge pod running", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=crash,${LABEL_STAGE}=merge`)).find((p) => p.status?.phase === "Running"),
    );
    await finishPod(k, merge, 0);
    await succeeded("crash");
    const jobs = (await k.batch.listNamespacedJob({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=crash` })).items.map((j) => j.metadata?.name).sort();
    assert.deepEqual(jobs, ["crash-merge-0", "crash-train-0"]);
  });

  test("at rest the operator makes zero write requests, even across resyncs", async () => {
    await op.stop();
    op = await startOperator({ namespace: ns, extraArgs: ["--resync-seconds=2"] });
    const writes = async () => {
      const text = await op.metrics();
      return ["create", "update", "patch", "delete"].reduce((sum, verb) => sum + metricValue(text, "finetune_api_requests_total", { verb }), 0);
    };
    // Let the new process observe everything once (it may legitimately act on nothing), then measure a quiet window.
    await waitFor("reconciles after start", async () => metricValue(await op.metrics(), "controller_runtime_reconcile_total") >= 5);
    const before = await writes();
    const reconcilesBefore = metricValue(await op.metrics(), "controller_runtime_reconcile_total");
    await waitFor("three resync rounds", async () => metricValue(await op.metrics(), "controller_runtime_reconcile_total") >= reconcilesBefore + 15, {
      timeoutMs: 30_000,
    });
    assert.equal(await writes(), before, "no writes while nothing changes");
  });

  test("/metrics: reconcile and queue series move with the lifecycle; FineTuneJob gauges match the cluster", async () => {
    const byPhaseInCluster = async () => {
      const counts: Record<string, number> = {};
      for (const j of (
        (await k.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL })) as { items: FineTuneJobObject[] }
      ).items) {
        const phase = j.status?.phase ?? "Pending";
        counts[phase] = (counts[phase] ?? 0) + 1;
      }
      return counts;
    };
    const gaugesMatch = (label: string) =>
      waitFor(`finetune_jobs gauges match the cluster (${label})`, async (note) => {
        const [text, cluster] = [await op.metrics(), await byPhaseInCluster()];
        const gauges = Object.fromEntries(PHASES.map((p) => [p, metricValue(text, "finetune_jobs", { phase: p })]).filter(([, n]) => n !== 0));
        note({ gauges, cluster });
        return JSON.stringify(gauges, Object.keys(gauges).sort()) === JSON.stringify(cluster, Object.keys(cluster).sort()) ? { text, cluster } : undefined;
      });
    const series = (text: string) => ({
      reconciles: metricValue(text, "controller_runtime_reconcile_total", { controller: "finetunejob" }),
      reconcileTimeCount: metricValue(text, "controller_runtime_reconcile_time_seconds_count", { controller: "finetunejob" }),
      adds: metricValue(text, "workqueue_adds_total", { name: "finetunejob" }),
      queueLatencyCount: metricValue(text, "workqueue_queue_duration_seconds_count", { name: "finetunejob" }),
      workCount: metricValue(text, "workqueue_work_duration_seconds_count", { name: "finetunejob" }),
      trainStages: metricValue(text, "finetune_stage_duration_seconds_count", { stage: "train" }),
    });
    const start = series((await gaugesMatch("before")).text);
    assert.ok(start.reconciles > 0 && start.adds > 0, "series exist before the new job");
    assert.match(await op.metrics(), /^leader_election_master_status\{name="finetune-operator"\} 1$/m, "the only replica leads");

    await createFtj(k, ftjManifest("metered", ns, { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
    const pod = await waitFor("metered training", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=metered,${LABEL_STAGE}=train`)).find((p) => p.status?.phase === "Running"),
    );
    await waitFor("metered phase Training", async () => (await phaseOf("metered")) === "Training");
    const { cluster: mid } = await gaugesMatch("training");
    assert.equal(mid.Training, 1, "one job training");
    await finishPod(k, pod, 0);
    const merge = await waitFor("metered merge pod", async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=metered,${LABEL_STAGE}=merge`)).find((p) => p.status?.phase === "Running"),
    );
    await finishPod(k, merge, 0);
    await succeeded("metered");
    const end = series((await gaugesMatch("after")).text);
    for (const key of Object.keys(start) as Array<keyof typeof start>) assert.ok(end[key] > start[key], `${key} moved: ${start[key]} -> ${end[key]}`);
    assert.match(await op.metrics(), /^workqueue_depth\{name="finetunejob"\} 0$/m, "queue drained at rest");
  });
});
