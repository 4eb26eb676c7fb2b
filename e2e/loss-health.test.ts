/**
 * Loss health on the real control plane: rank 0's log (served by kwok, read by
 * the operator's log-tail fallback) shows Axolotl-formatted losses and then a
 * NaN. The operator keeps the loss history in status (written with the
 * progress patch), sets LossHealthy=False with an Event, and under
 * spec.lossGuard.action Fail stops the run: the FineTuneJob fails with reason
 * LossNotFinite, the training Job is deleted, the output claim stays.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { lossCurveLine } from "../src/cli/format.ts";
import { FATE_ANNOTATION, ensureCluster, freshNamespace, kubeClients, setPodLogs, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { ensureCrd, startOperator, type OperatorProcess } from "./lib/operator.ts";

let k: KubeClients;
let ns: string;
let op: OperatorProcess;

/** What Axolotl 0.18.0 (transformers 5) prints on rank 0: bars on stderr, metric dicts with string values, then NaN. */
function axolotlLog(finite: number): string {
  const lines = [
    "[2026-12-01 20:00:00,000] [INFO] [axolotl.train:200] [PID:1] [RANK:0] Maximum number of steps set at 100",
    "[2026-12-01 20:00:00,100] [INFO] [axolotl.train:210] [PID:1] [RANK:0] Starting trainer...",
  ];
  for (let step = 1; step <= finite + 1; step++) {
    lines.push(`${step}%|▏         | ${step}/100 [00:${String(step).padStart(2, "0")}<01:39,  1.00s/it]`);
    const loss = step <= finite ? `'${(6.7 - step * 0.1).toFixed(3)}'` : "'nan'";
    lines.push(`{'loss': ${loss}, 'grad_norm': '0.5898', 'learning_rate': '0.001', 'ppl': '818.3', 'epoch': '${(step / 100).toFixed(2)}'}`);
  }
  return lines.join("\n") + "\n";
}

async function rankZero(name: string): Promise<V1Pod> {
  return waitFor(
    `${name}: rank 0 running`,
    async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=${name},${LABEL_STAGE}=train`)).find(
        (p) => p.status?.phase === "Running" && p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === "0",
      ),
    { timeoutMs: 60_000 },
  );
}

const lossCondition = (j: FineTuneJobObject) => j.status?.conditions?.find((c) => c.type === "LossHealthy");
const events = async (name: string) =>
  (await k.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},involvedObject.kind=FineTuneJob` })).items.map(
    (e) => `${e.type}/${e.reason}`,
  );

before(async () => {
  await ensureCluster();
  await ensureCrd();
  k = await kubeClients();
  ns = (await freshNamespace("loss-health")).name;
  op = await startOperator({ namespace: ns, extraArgs: ["--progress-log-interval-seconds=1"] });
  const spec = { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } };
  await createFtj(k, ftjManifest("warned", ns, spec));
  await createFtj(k, ftjManifest("stopped", ns, { ...spec, lossGuard: { action: "Fail" } }));
});

after(async () => {
  await op?.stop();
  await k?.core.deleteNamespace({ name: ns, propagationPolicy: "Background" }).catch(() => {});
});

describe("loss health", () => {
  test("a falling loss: history and LossHealthy=True; then a NaN: LossHealthy=False, an Event, and (Warn) training goes on", async () => {
    const pod = await rankZero("warned");
    await setPodLogs(ns, pod.metadata!.name!, axolotlLog(12).split("\n").slice(0, -3).join("\n") + "\n");
    const healthy = await waitFor("LossHealthy=True", async (note) => {
      const j = await getFtj(k, ns, "warned");
      note({ history: j.status?.lossHistory, condition: lossCondition(j) });
      return lossCondition(j)?.status === "True" ? j : undefined;
    });
    assert.equal(lossCondition(healthy)?.reason, "LossDecreasing");
    assert.deepEqual(healthy.status?.lossHistory?.points.slice(0, 2), [
      { step: 1, loss: 6.6 },
      { step: 2, loss: 6.5 },
    ]);
    assert.match(lossCurveLine(healthy) ?? "", /^[▁-█]+ {2}6\.6 -> /);

    await setPodLogs(ns, pod.metadata!.name!, axolotlLog(12));
    const sick = await waitFor("LossHealthy=False", async (note) => {
      const j = await getFtj(k, ns, "warned");
      note({ history: j.status?.lossHistory, condition: lossCondition(j) });
      return lossCondition(j)?.status === "False" ? j : undefined;
    });
    assert.equal(lossCondition(sick)?.reason, "LossNotFinite");
    assert.match(lossCondition(sick)!.message, /step 13.*learning_rate.*roles_to_train/s);
    assert.equal(sick.status?.lossHistory?.nonFiniteStep, 13);
    assert.equal(sick.status?.progress?.loss, 5.5, "status.progress.loss keeps the last finite value");
    assert.equal(sick.status?.phase, "Training", "Warn does not stop the run");
    await waitFor("a LossNotFinite Warning Event", async () => (await events("warned")).includes("Warning/LossNotFinite"));
  });

  test("lossGuard.action Fail: a NaN stops the run (Failed, LossNotFinite, training Job deleted, claim kept)", async () => {
    const pod = await rankZero("stopped");
    await setPodLogs(ns, pod.metadata!.name!, axolotlLog(3));
    const failed = await waitFor("Failed", async (note) => {
      const j = await getFtj(k, ns, "stopped");
      note({ phase: j.status?.phase, condition: lossCondition(j), history: j.status?.lossHistory });
      return j.status?.phase === "Failed" ? j : undefined;
    });
    assert.equal(failed.status?.conditions?.find((c) => c.type === "Failed")?.reason, "LossNotFinite");
    assert.equal(lossCondition(failed)?.status, "False");
    assert.equal(failed.status?.lastFailure?.reason, "LossNotFinite");
    assert.equal(failed.status?.stages?.train?.phase, "Failed");
    await waitFor("the training Job is gone", async () => {
      const jobs = (await k.batch.listNamespacedJob({ namespace: ns, labelSelector: `${LABEL_JOB_NAME}=stopped,${LABEL_STAGE}=train` })).items;
      return jobs.every((j) => j.metadata?.deletionTimestamp) || jobs.length === 0;
    });
    const claim = await k.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: "stopped-output" });
    assert.ok(!claim.metadata?.deletionTimestamp, "the claim with the checkpoints stays");
    const ev = await events("stopped");
    assert.ok(ev.includes("Warning/LossNotFinite") && ev.includes("Warning/Failed"), ev.join(", "));
  });
});
