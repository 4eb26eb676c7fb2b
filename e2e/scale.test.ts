/** 200 FineTuneJobs applied at once all reach Succeeded; afterwards the operator writes nothing while nothing changes. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { GROUP, PLURAL, VERSION } from "../src/api/group.ts";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest } from "./lib/ftj.ts";
import { metricValue, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

const N = Number(process.env.FINETUNE_E2E_SCALE_JOBS ?? 200);
let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;

before(async () => {
  suite = await suiteNamespace("scale");
  ({ k, ns } = suite);
  op = await startOperator({ namespace: ns, extraArgs: ["--resync-seconds=5"] });
});

after(async () => {
  await suite?.cleanup(op);
});

const writes = async () => {
  const text = await op.metrics();
  return Object.fromEntries(["create", "update", "patch", "delete"].map((verb) => [verb, metricValue(text, "finetune_api_requests_total", { verb })]));
};
const total = (w: Record<string, number>) => Object.values(w).reduce((a, b) => a + b, 0);

describe("scale", () => {
  test(`${N} FineTuneJobs applied at once all reach Succeeded, then zero writes at rest`, async () => {
    // One GPU, no preprocess, merge on CPU: 32 fake GPUs run 32 trainings at a time.
    const spec = { preprocess: { enabled: false }, merge: { onCPU: true }, podAnnotations: { "sim.finetune.dev/run-seconds": "1" } };
    await Promise.all(Array.from({ length: N }, (_, i) => createFtj(k, ftjManifest(`job-${i}`, ns, spec))));
    const counts = await waitFor(
      `${N} Succeeded`,
      async (note) => {
        const list = (await k.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL })) as {
          items: FineTuneJobObject[];
        };
        const byPhase: Record<string, number> = {};
        for (const j of list.items) byPhase[j.status?.phase ?? "none"] = (byPhase[j.status?.phase ?? "none"] ?? 0) + 1;
        note(byPhase);
        if ((byPhase.Failed ?? 0) > 0) throw new Error(`failures: ${JSON.stringify(byPhase)}`);
        return byPhase.Succeeded === N ? byPhase : undefined;
        // A hang guard, not a speed bound: about 70 s on an idle 2-core machine, several times that on a busy one.
      },
      { timeoutMs: 20 * 60_000, intervalMs: 2000 },
    );
    assert.equal(counts.Succeeded, N);
    const lifecycle = await writes();
    // Per job: claim, config, Service, train Job, merge Job (5 creates) + status updates; events are not counted here.
    const perJob = (total(lifecycle) - metricValue(await op.metrics(), "finetune_api_requests_total", { resource: "events" })) / N;
    console.log(`writes per FineTuneJob lifecycle (events excluded): ${perJob.toFixed(1)}; by verb: ${JSON.stringify(lifecycle)}`);
    assert.ok(perJob <= 20, `at most 20 writes per job lifecycle, got ${perJob}`);
    const reconciles = metricValue(await op.metrics(), "controller_runtime_reconcile_total");
    await waitFor("two resyncs of every job", async () => metricValue(await op.metrics(), "controller_runtime_reconcile_total") >= reconciles + 2 * N, {
      timeoutMs: 5 * 60_000,
      intervalMs: 1000,
    });
    assert.deepEqual(await writes(), lifecycle, "no writes at rest");
  });
});
