/**
 * Training progress pushed by the trainer (as src/trainer/launcher/ does)
 * with a real projected-style token issued by the API server: it lands in
 * status.progress, `kubectl get ftj` and `kubectl finetune`; forged, foreign,
 * oversized, malformed and too-frequent reports change nothing.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { progressLine } from "../src/cli/format.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { metricValue, progressToken, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

const BIN_DIR = fileURLToPath(new URL("../bin", import.meta.url));
let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;
let pod: V1Pod;

const tokenFor = (audienceJob: string, boundPod: V1Pod) => progressToken(k, ns, audienceJob, boundPod);

async function post(job: string, body: string, token?: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${op.progressPort}/v1/progress/${ns}/${job}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body,
  });
  await res.text();
  return res.status;
}

const report = (step: number) =>
  JSON.stringify({
    step,
    totalSteps: 873,
    epoch: step / 873,
    loss: 1.2345,
    learningRate: 0.0002,
    etaSeconds: 4200,
    checkpoints: [
      { step: 100, path: "/finetune/output/model/checkpoint-100", complete: true },
      { step: 110, path: "/finetune/output/model/checkpoint-110", complete: false },
    ],
  });

before(async () => {
  suite = await suiteNamespace("progress");
  ({ k, ns } = suite);
  op = await startOperator({ namespace: ns, extraArgs: ["--progress-port=0", "--progress-write-interval-seconds=1"] });
  const running = { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } };
  await createFtj(k, ftjManifest("reporting", ns, running));
  await createFtj(k, ftjManifest("other", ns, running));
  pod = await waitFor("rank 0 running", async () =>
    (await listPods(k, ns, `${LABEL_JOB_NAME}=reporting,${LABEL_STAGE}=train`)).find((p) => p.status?.phase === "Running"),
  );
  await waitFor("other job running", async () =>
    (await listPods(k, ns, `${LABEL_JOB_NAME}=other,${LABEL_STAGE}=train`)).some((p) => p.status?.phase === "Running"),
  );
});

after(async () => {
  await suite?.cleanup(op);
});

describe("progress", () => {
  test("a report with a real token reaches status.progress, kubectl get and kubectl finetune", async () => {
    assert.equal(await post("reporting", report(120), await tokenFor("reporting", pod)), 202);
    const job = await waitFor("progress in status", async () => {
      const j = await getFtj(k, ns, "reporting");
      return j.status?.progress?.step === 120 ? j : undefined;
    });
    assert.equal(job.status?.progress?.summary, "120/873 (13%)");
    assert.equal(job.status?.progress?.loss, 1.2345);
    assert.deepEqual(job.status?.latestCheckpoint, { step: 100, path: "/finetune/output/model/checkpoint-100" }, "only complete checkpoints are reported");
    assert.match(progressLine(job) ?? "", /120\/873.*13%.*loss 1\.2345.*ETA 1h10m/);
    const { stdout } = await promisify(execFile)("kubectl", ["get", "ftj", "reporting", "-n", ns], {
      env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" },
    });
    assert.match(stdout, /PROGRESS\s+LOSS/);
    assert.match(stdout, /120\/873 \(13%\)\s+1\.2345/);
    // `kubectl finetune watch` through kubectl's plugin lookup (bin/ on PATH): the phase line, then the progress line.
    const watched = await promisify(execFile)("kubectl", ["finetune", "watch", "reporting", "-n", ns, "--interval", "1", "--timeout", "2"], {
      env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "", PATH: `${BIN_DIR}:${process.env.PATH}` },
    }).then(
      () => assert.fail("watch of a running job ends only by its timeout"),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    assert.equal(watched.code, 1, watched.stderr);
    assert.match(watched.stdout, /reporting: Training/);
    assert.match(watched.stdout, /120\/873.*13%.*loss 1\.2345.*ETA 1h10m/);
    assert.match(watched.stderr, /timed out waiting for reporting \(phase Training\)/);
  });

  test("forged, foreign, oversized, malformed and too-frequent reports are rejected without effect", async () => {
    const good = await tokenFor("reporting", pod);
    await new Promise((r) => setTimeout(r, 2100)); // past the per-job rate limit of the report above
    assert.equal(await post("reporting", report(500)), 401, "no token");
    assert.equal(await post("reporting", report(500), "forged.token.value"), 401, "forged token");
    assert.equal(await post("reporting", report(500), await tokenFor("other", pod)), 401, "token for another job's audience");
    assert.equal(await post("other", report(500), await tokenFor("other", pod)), 403, "pod of another job");
    assert.equal(await post("reporting", JSON.stringify({ step: 1, pad: "x".repeat(70_000) }), good), 413, "oversized");
    assert.equal(await post("reporting", "{not json", good), 400, "malformed");
    assert.equal(await post("reporting", JSON.stringify({ step: -5 }), good), 400, "invalid values");
    assert.equal(await post("reporting", report(130), good), 202);
    assert.equal(await post("reporting", report(131), good), 429, "rate limited");
    await waitFor("step 130 written", async () => (await getFtj(k, ns, "reporting")).status?.progress?.step === 130);
    assert.equal((await getFtj(k, ns, "other")).status?.progress, undefined, "the other job got nothing");
    const text = await op.metrics();
    assert.ok(
      metricValue(text, "finetune_api_requests_total", { verb: "patch", resource: "finetunejobs/status" }) <= 2,
      "one status write per accepted report at most",
    );
  });
});
