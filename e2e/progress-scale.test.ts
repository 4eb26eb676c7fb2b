/**
 * 100 training jobs whose trainers report every second (twice the accepted
 * rate): status writes stay within the stated bound — at most
 * --progress-max-writes-per-second over all jobs, at most one per job per
 * --progress-write-interval-seconds — and every job still ends up showing its
 * newest accepted report. Real tokens from the API server, real HTTP.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { fakeNode } from "./cluster/manifests.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj, listPods, podPipeline } from "./lib/ftj.ts";
import { metricValue, progressToken, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

const JOBS = 100;
const REPORT_SECONDS = 20;
const WRITE_INTERVAL_S = 2;
const MAX_WRITES_PER_S = 10;
const NODE = "kwok-progress-scale";
// Only this suite's pods may land on (and vanish with) the extra node.
const TAINT = { key: "finetune.dev/e2e", value: "progress-scale", effect: "NoSchedule" };

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;

before(async () => {
  suite = await suiteNamespace("progress-scale");
  ({ k, ns } = suite);
  const node = fakeNode(NODE) as V1Node;
  const capacity = { ...node.status!.capacity, "nvidia.com/gpu": String(JOBS + 8), pods: String(JOBS + 20) };
  node.status = { ...node.status, capacity, allocatable: capacity };
  node.spec = { taints: [...(node.spec?.taints ?? []), TAINT] };
  await k.core.deleteNode({ name: NODE }).catch(() => {});
  await k.core.createNode({ body: node });
  op = await startOperator({
    namespace: ns,
    extraArgs: ["--progress-port=0", `--progress-write-interval-seconds=${WRITE_INTERVAL_S}`, `--progress-max-writes-per-second=${MAX_WRITES_PER_S}`],
  });
});

after(async () => {
  await k?.core.deleteNode({ name: NODE }).catch(() => {});
  await suite?.cleanup(op);
});

const tokenFor = (pod: V1Pod) => progressToken(k, ns, pod.metadata!.labels![LABEL_JOB_NAME]!, pod);

async function post(job: string, token: string, step: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${op.progressPort}/v1/progress/${ns}/${job}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ step, totalSteps: 1000, loss: 2 - step / 1000, etaSeconds: 1000 - step }),
  });
  await res.text();
  return res.status;
}

const statusPatches = async () => metricValue(await op.metrics(), "finetune_api_requests_total", { verb: "patch", resource: "finetunejobs/status" });

describe("progress at scale", () => {
  test(`${JOBS} jobs reporting every second stay within the status-write budget`, async () => {
    const spec = {
      preprocess: { enabled: false },
      podAnnotations: { [FATE_ANNOTATION]: "run" },
      scheduling: {
        tolerations: [
          { key: "kwok.x-k8s.io/node", operator: "Equal", value: "fake", effect: "NoSchedule" },
          { ...TAINT, operator: "Equal" },
        ],
        nodeSelector: { "kubernetes.io/hostname": NODE },
      },
    };
    await Promise.all(Array.from({ length: JOBS }, (_, i) => createFtj(k, ftjManifest(`job-${i}`, ns, spec))));
    const pods = await waitFor(
      `${JOBS} rank-0 pods Running`,
      async (note) => {
        const running = (await listPods(k, ns, `${LABEL_STAGE}=train`)).filter((p) => p.status?.phase === "Running");
        // Where the others stand (a timeout then names the stalled step: claims, scheduler, node or kwok).
        note(running.length >= JOBS ? `${running.length} running` : await podPipeline(k, ns, `${LABEL_STAGE}=train`, [NODE]));
        return running.length >= JOBS ? running : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 2000 },
    );
    await waitFor(
      "every job Training",
      async () => (await Promise.all(Array.from({ length: JOBS }, (_, i) => getFtj(k, ns, `job-${i}`)))).every((j) => j.status?.phase === "Training"),
      { timeoutMs: 60_000 },
    );
    const trainers = await Promise.all(pods.map(async (p) => ({ job: p.metadata!.labels![LABEL_JOB_NAME]!, token: await tokenFor(p) })));

    const before = await statusPatches();
    const started = Date.now();
    const lastAccepted = new Map<string, number>();
    const codes: Record<number, number> = {};
    for (let tick = 1; tick <= REPORT_SECONDS; tick++) {
      const tickStart = Date.now();
      await Promise.all(
        trainers.map(async ({ job, token }) => {
          const code = await post(job, token, tick);
          codes[code] = (codes[code] ?? 0) + 1;
          if (code === 202) lastAccepted.set(job, tick);
        }),
      );
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tickStart))));
    }
    assert.deepEqual(Object.keys(codes).sort(), ["202", "429"], `only accepted and rate-limited answers: ${JSON.stringify(codes)}`);
    assert.equal(lastAccepted.size, JOBS, "every trainer got reports through");

    // Everything accepted is eventually written: the newest accepted step of every job.
    await waitFor(
      "every job shows its newest accepted report",
      async (note) => {
        const jobs = await Promise.all(trainers.map(({ job }) => getFtj(k, ns, job)));
        const behind = jobs.filter((j) => j.status?.progress?.step !== lastAccepted.get(j.metadata.name!));
        note(`${behind.length} behind`);
        return behind.length === 0;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const elapsedS = (Date.now() - started) / 1000;
    const text = await op.metrics();
    const progressWrites = metricValue(text, "finetune_progress_status_writes_total", { result: "ok" });
    const patches = (await statusPatches()) - before;
    // The bound: every flush (one per write interval, plus one in progress) writes at most budget = rate × interval.
    const flushes = Math.ceil(elapsedS / WRITE_INTERVAL_S) + 1;
    const bound = flushes * MAX_WRITES_PER_S * WRITE_INTERVAL_S;
    console.log(
      `${JOBS} jobs × ${REPORT_SECONDS} s of reports every 1 s: ${codes[202]} accepted, ${codes[429]} rate-limited; ${progressWrites} progress writes, ${patches} status patches in ${elapsedS.toFixed(1)} s (bound ${bound}; without coalescing: ${codes[202]})`,
    );
    assert.ok(progressWrites >= JOBS, "every job was written at least once");
    assert.ok(patches <= bound, `status patches ${patches} within the write budget ${bound}`);
    assert.equal(patches, progressWrites, "progress writes cause no status writes by the reconciler");
    assert.ok(patches < codes[202]!, "reports were coalesced");
  });
});
