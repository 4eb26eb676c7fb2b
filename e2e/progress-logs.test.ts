/**
 * Training progress from rank 0's log tail, the fallback when trainers cannot
 * push (no --progress-url here): the operator reads the pod log through the
 * API server (kwok serves what the test sets), writes status.progress with
 * source "logs", status.checkpoints and the `kubectl get ftj` columns; skips
 * malformed lines; costs no status write while the log does not move; and
 * leaves a fresh push report alone.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { PatchStrategy, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { GROUP, LABEL_JOB_NAME, LABEL_STAGE, PLURAL, VERSION } from "../src/api/group.ts";
import { progressLine } from "../src/cli/format.ts";
import { FATE_ANNOTATION, appendPodLogs, ensureCluster, freshNamespace, kubeClients, setPodLogs, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { ensureCrd, metricValue, startOperator, type OperatorProcess } from "./lib/operator.ts";

const TAIL = readFileSync(new URL("../src/progress/testdata/axolotl-tail.log", import.meta.url), "utf8");
const CKPT = "/finetune/output/model/checkpoint-";

let k: KubeClients;
let ns: string;
let op: OperatorProcess;
let pod: V1Pod;

const statusPatches = async () => metricValue(await op.metrics(), "finetune_api_requests_total", { verb: "patch", resource: "finetunejobs/status" });
const logReads = async () => metricValue(await op.metrics(), "finetune_api_requests_total", { verb: "get", resource: "pods/log" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  await ensureCluster();
  await ensureCrd();
  k = await kubeClients();
  ns = (await freshNamespace("progress-logs")).name;
  op = await startOperator({ namespace: ns, extraArgs: ["--progress-log-interval-seconds=1", "--log-level=debug"] });
  await createFtj(k, ftjManifest("tailed", ns, { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
  pod = await waitFor(
    "rank 0 running",
    async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=tailed,${LABEL_STAGE}=train`)).find(
        (p) => p.status?.phase === "Running" && p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === "0",
      ),
    { timeoutMs: 60_000 },
  );
  await waitFor("job Training", async () => (await getFtj(k, ns, "tailed")).status?.phase === "Training");
});

after(async () => {
  await op?.stop();
  await k?.core.deleteNamespace({ name: ns, propagationPolicy: "Background" }).catch(() => {});
});

describe("progress from the log tail", () => {
  test("an Axolotl tail reaches status.progress (source logs), checkpoints and kubectl get", async () => {
    assert.equal((await getFtj(k, ns, "tailed")).status?.progress, undefined, "nothing before the log says anything");
    await setPodLogs(ns, pod.metadata!.name!, TAIL);
    const job = await waitFor("progress from the log", async (note) => {
      const j = await getFtj(k, ns, "tailed");
      note(j.status?.progress);
      return j.status?.progress?.step === 110 ? j : undefined;
    });
    const p = job.status!.progress!;
    assert.equal(p.source, "logs");
    assert.equal(p.totalSteps, 873);
    assert.equal(p.loss, 1.1987);
    assert.equal(p.evalLoss, 1.1);
    assert.equal(p.learningRate, 1.98e-5);
    assert.equal(p.summary, "110/873 (12%)");
    assert.equal(p.etaSeconds, 4140);
    assert.deepEqual(job.status?.checkpoints, [{ step: 100, path: `${CKPT}100` }]);
    assert.deepEqual(job.status?.latestCheckpoint, { step: 100, path: `${CKPT}100` });
    assert.match(progressLine(job) ?? "", /110\/873.*12%.*loss 1\.1987/);
    const { stdout } = await promisify(execFile)("kubectl", ["get", "ftj", "tailed", "-n", ns], {
      env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" },
    });
    assert.match(stdout, /PROGRESS\s+LOSS/);
    assert.match(stdout, /110\/873 \(12%\)\s+1\.1987/);
  });

  test("malformed lines are skipped; real progress after them still counts", async () => {
    const before = (await getFtj(k, ns, "tailed")).status?.progress;
    await appendPodLogs(
      ns,
      pod.metadata!.name!,
      [
        "",
        "{'loss': 1.2, 'learning_rate': ",
        "{'loss': __import__('os').system('echo pwned')}",
        "{'not': 'metrics'}",
        "\u00ff garbage } {",
        "12/0 [00:01<00:02, 1.0it/s]",
        "999/873 [00:01<00:02, 1.0it/s]",
        "Saving model checkpoint to /tmp/not-a-checkpoint",
        "Maximum number of steps set at many",
        "",
      ].join("\n"),
    );
    const reads = await logReads();
    await waitFor("three more log reads", async () => (await logReads()) >= reads + 3, { timeoutMs: 15_000 });
    const unchanged = (await getFtj(k, ns, "tailed")).status?.progress;
    assert.deepEqual({ ...unchanged, updatedAt: undefined }, { ...before, updatedAt: undefined }, "malformed lines changed nothing");

    await appendPodLogs(
      ns,
      pod.metadata!.name!,
      [
        "\r 14%|█▍        | 120/873 [11:00<1:08:00,  5.40s/it]",
        `[INFO|trainer.py:3984] 2025-01-01 10:21:00,000 >> Saving model checkpoint to ${CKPT}120`,
        "\r 14%|█▍        | 121/873 [11:06<1:07:40,  5.40s/it]",
        "{'loss': 1.15, 'grad_norm': np.float64(0.37), 'learning_rate': 1.9e-05, 'epoch': 0.14}",
        "\r 14%|█▍        | 122/873 [11:12<1:07:35,  5.40s/it]",
      ].join("\n"),
    );
    const job = await waitFor("progress advanced past the junk", async (note) => {
      const j = await getFtj(k, ns, "tailed");
      note(j.status?.progress);
      return j.status?.progress?.step === 122 ? j : undefined;
    });
    assert.equal(job.status?.progress?.loss, 1.15);
    assert.equal(job.status?.progress?.gradNorm, 0.37);
    assert.deepEqual(
      job.status?.checkpoints?.map((c) => c.step),
      [100, 120],
    );
    assert.deepEqual(job.status?.latestCheckpoint, { step: 120, path: `${CKPT}120` });
  });

  test("an unchanged log costs log reads but no status patches", async () => {
    // Rounds never overlap: once one more read has happened, whatever the previous round had to write is written.
    const settled = await logReads();
    await waitFor("one more log read", async () => (await logReads()) > settled);
    const patches = await statusPatches();
    const reads = await logReads();
    await waitFor("the log is still read every interval (3 more reads)", async () => (await logReads()) >= reads + 3, { timeoutMs: 20_000 });
    assert.equal(
      await statusPatches(),
      patches,
      `no status patch while the log did not move: ${JSON.stringify(op.logs.filter((l) => l.msg === "progress from the log tail").slice(-3))}`,
    );
    assert.equal(metricValue(await op.metrics(), "finetune_api_requests_total", { resource: "pods/log", code: "403" }), 0);
  });

  test("a fresh push report wins; a stale one gives way to the log", async () => {
    const patchStatus = (progress: Record<string, unknown>) =>
      k.custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name: "tailed", body: { status: { progress } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    await patchStatus({ step: 100, totalSteps: 873, loss: 9.99, source: "push", summary: "100/873 (11%)", updatedAt: new Date().toISOString() });
    await sleep(3_500);
    const fresh = (await getFtj(k, ns, "tailed")).status?.progress;
    assert.deepEqual([fresh?.source, fresh?.step, fresh?.loss], ["push", 100, 9.99], "the log poller left the fresh push report alone");
    // The default push write interval is 30 s, so a push older than 3 x 30 s is stale.
    await patchStatus({ updatedAt: new Date(Date.now() - 120_000).toISOString() });
    const taken = await waitFor("the log takes over from a stale push", async (note) => {
      const p = (await getFtj(k, ns, "tailed")).status?.progress;
      note(p);
      return p?.source === "logs" && p;
    });
    assert.deepEqual([taken.step, taken.loss, taken.summary], [122, 1.15, "122/873 (13%)"]);
  });
});
