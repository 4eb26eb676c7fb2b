/**
 * The smoke-test stage on the real control plane (kwok pods): a LoRA job goes train -> smoke test -> merge, the
 * smoke-test pod's termination message (the launcher's summary, in the shape smoke.py run_smoke writes; the real
 * command is exercised in e2e/axolotl/smoke.test.ts) becomes status.smokeTest with its answers, and a smoke test
 * whose generations never stop fails the job before the merge under smokeTest.action Fail.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { describeStatus } from "../src/cli/format.ts";
import { readFileSync } from "node:fs";
import { parseSmokeAnswersLog } from "../src/controller/smoke-answers.ts";
import { FATE_ANNOTATION, ensureCluster, freshNamespace, kubeClients, setPodLogs, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, finishPod, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { ensureCrd, startOperator, type OperatorProcess } from "./lib/operator.ts";

/** A real smoke pod's log (axolotl 0.18.0 inference, e2e/axolotl/smoke.test.ts): kwok serves it as the smoke pod's. */
const REAL_LOG = readFileSync(new URL("../src/controller/testdata/axolotl-0.18.0-smoke-pod.log", import.meta.url), "utf8");

let k: KubeClients;
let ns: string;
let op: OperatorProcess;

const summary = (answers: Array<{ prompt: string; answer: string; stopped: boolean }>) =>
  JSON.stringify({
    stage: "smoke",
    exitCode: 0,
    attempt: 0,
    reason: "Completed",
    childExitCode: 0,
    nodeRank: 0,
    smoke: { answers: answers.map((a) => ({ ...a, chars: a.answer.length })), file: "/finetune/output/smoke-test/answers.json" },
    tail: [],
  });

async function runningPod(name: string, stage: string): Promise<V1Pod> {
  // Running with an IP and a running container: kwok's last word on the pod, so a finish patched now is not overwritten.
  return waitFor(
    `${name}: ${stage} pod running`,
    async () =>
      (await listPods(k, ns, `${LABEL_JOB_NAME}=${name},${LABEL_STAGE}=${stage}`)).find(
        (p) => p.status?.phase === "Running" && p.status.podIP && p.status.containerStatuses?.[0]?.state?.running,
      ),
    { timeoutMs: 60_000 },
  );
}

async function answersConfigMap(name: string) {
  return waitFor(
    `${name}: smoke-test answers ConfigMap`,
    async () => k.core.readNamespacedConfigMap({ namespace: ns, name: `${name}-smoke-answers` }).catch(() => undefined),
    { timeoutMs: 60_000 },
  );
}

async function phase(name: string, want: string) {
  return waitFor(
    `${name} ${want}`,
    async (note) => {
      const j = await getFtj(k, ns, name);
      note({ phase: j.status?.phase, message: j.status?.message });
      return j.status?.phase === want ? j : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

before(async () => {
  await ensureCluster();
  await ensureCrd();
  k = await kubeClients();
  ns = (await freshNamespace("smoke-stage")).name;
  op = await startOperator({ namespace: ns });
  const spec = { preprocess: { enabled: false }, merge: { onCPU: true }, podAnnotations: { [FATE_ANNOTATION]: "run" } };
  await createFtj(k, ftjManifest("smoked", ns, { ...spec, smokeTest: { prompts: ["What is 2 + 3?", "Name a colour."] } }));
  await createFtj(k, ftjManifest("endless", ns, { ...spec, smokeTest: { action: "Fail" } }));
});

after(async () => {
  await op?.stop();
  await k?.core.deleteNamespace({ name: ns, propagationPolicy: "Background" }).catch(() => {});
});

describe("smoke-test stage", () => {
  test("train -> smoke test -> merge, with the answers in status", async () => {
    await finishPod(k, await runningPod("smoked", "train"), 0);
    await phase("smoked", "SmokeTesting");
    const smokePod = await runningPod("smoked", "smoke");
    assert.deepEqual(smokePod.spec?.containers[0]?.command?.slice(3, 5), ["axolotl", "inference"]);
    assert.equal(
      smokePod.spec?.containers[0]?.env?.find((e) => e.name === "FINETUNE_SMOKE_PROMPTS")?.value,
      JSON.stringify(["What is 2 + 3?", "Name a colour."]),
    );
    assert.equal(smokePod.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"], "1");
    await setPodLogs(ns, smokePod.metadata!.name!, REAL_LOG);
    await finishPod(
      k,
      smokePod,
      0,
      summary([
        { prompt: "What is 2 + 3?", answer: "5", stopped: true },
        { prompt: "Name a colour.", answer: "Blue.", stopped: true },
      ]),
    );
    const merging = await phase("smoked", "Merging");
    assert.equal(merging.status?.smokeTest?.result, "Passed");
    assert.deepEqual(merging.status?.smokeTest?.answers, [
      { prompt: "What is 2 + 3?", answer: "5", stopped: true },
      { prompt: "Name a colour.", answer: "Blue.", stopped: true },
    ]);
    assert.equal(merging.status?.smokeTest?.answersFile, "smoke-test/answers.json");
    assert.equal(merging.status?.conditions?.find((c) => c.type === "SmokeTested")?.status, "True");
    // In full, from the smoke pod's log, in a ConfigMap the job owns.
    assert.equal(merging.status?.smokeTest?.answersConfigMap, "smoked-smoke-answers");
    const cm = await answersConfigMap("smoked");
    assert.equal(cm.data?.source, "pod-log");
    assert.deepEqual(JSON.parse(cm.data!["answers.json"]!).answers, parseSmokeAnswersLog(REAL_LOG)!.answers);
    assert.equal(cm.metadata?.ownerReferences?.[0]?.name, "smoked");
    await finishPod(k, await runningPod("smoked", "merge"), 0);
    const done = await phase("smoked", "Succeeded");
    assert.deepEqual(Object.keys(done.status?.stages ?? {}).sort(), ["merge", "smoke", "train"]);
    assert.match(describeStatus(done), /Smoke test:\s+Passed.*\n\s+answer 1:\s+What is 2 \+ 3\? => 5\n/);
  });

  test("every generation runs to the token limit under Fail: Failed before the merge, with the eos_token hint", async () => {
    await finishPod(k, await runningPod("endless", "train"), 0);
    await finishPod(
      k,
      await runningPod("endless", "smoke"),
      0,
      summary([{ prompt: "Write one short sentence about the sea.", answer: "the sea the sea the sea", stopped: false }]),
    );
    const failed = await phase("endless", "Failed");
    assert.equal(failed.status?.conditions?.find((c) => c.type === "Failed")?.reason, "SmokeTestNoEOS");
    assert.equal(failed.status?.smokeTest?.result, "Failed");
    assert.match(failed.status?.smokeTest?.hint ?? "", /special_tokens\.eos_token/);
    assert.equal(failed.status?.stages?.merge, undefined, "nothing merged");
    assert.deepEqual((await listPods(k, ns, `${LABEL_JOB_NAME}=endless,${LABEL_STAGE}=merge`)).length, 0);
    // kwok serves this pod an empty log: the ConfigMap keeps status's cut answers, marked as such.
    const cm = await answersConfigMap("endless");
    assert.equal(cm.data?.source, "status-truncated");
    assert.deepEqual(JSON.parse(cm.data!["answers.json"]!).answers, failed.status?.smokeTest?.answers);
  });
});
