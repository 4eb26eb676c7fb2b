import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { median, pairsOf, ratio, renderCompareMarkdown, renderComparison } from "./compare.ts";
import { countRequests } from "./measure/audit.ts";
import type { BenchResults, ScenarioResult } from "./scenarios/types.ts";

const d = (p99: number) => ({ count: 10, min: 1, p50: p99 / 2, p95: p99, p99, max: p99, mean: p99 / 2 });

function burst(sut: string, pair: number | undefined, jobs: number, reactionP99: number, writes: number, startRssMiB: number): ScenarioResult {
  return {
    scenario: "burst",
    jobs,
    shape: { nodes: 1, gpusPerNode: 1, fate: "succeed", runSeconds: 1 },
    sut: { name: sut, settings: {} },
    startedAt: "2026-01-01T00:00:00Z",
    ...(pair !== undefined ? { pair } : {}),
    wallSeconds: 30,
    latencyMs: { reaction: d(reactionP99), allPodsRunning: d(reactionP99 * 3) },
    audit: countRequests([], { user: "u" }),
    auditWindowSeconds: 30,
    perJob: { writes, eventWrites: 1, gets: 0, requests: writes * 2, byVerbResource: {} },
    process: { startRssMiB, peakRssMiB: startRssMiB * 2, restRssMiB: startRssMiB, cpuSeconds: 4 },
    notes: [],
  };
}

describe("ratio and median", () => {
  it("ours ÷ theirs, equal zeros are 1, a missing or zero denominator gives no ratio", () => {
    assert.equal(ratio(6, 3), 2);
    assert.equal(ratio(0, 0), 1);
    assert.equal(ratio(1, 0), undefined);
    assert.equal(ratio(undefined, 3), undefined);
    assert.equal(ratio(3, Number.NaN), undefined);
  });

  it("median of the defined values, mean of the middle two for an even count", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, undefined, 2, 3]), 2.5);
    assert.equal(median([undefined]), undefined);
  });
});

describe("comparison tables", () => {
  const scenarios = [
    burst("finetune-operator", 1, 100, 4000, 13, 170),
    burst("kubeflow-trainer", 1, 100, 1000, 5, 90),
    burst("finetune-operator", 2, 100, 3000, 13, 180),
    burst("kubeflow-trainer", 2, 100, 2000, 5, 90),
    burst("finetune-operator", 3, 100, 6000, 13, 160),
    // A pair with one side missing (the run stopped) is left out; so are single-controller results.
    burst("finetune-operator", undefined, 100, 1, 1, 1),
  ];

  it("matches runs into pairs by size and index", () => {
    const pairs = pairsOf(scenarios, "finetune-operator");
    assert.deepEqual(
      pairs.map((p) => [p.jobs, p.pair, p.ours.latencyMs.reaction?.p99, p.theirs.latencyMs.reaction?.p99]),
      [
        [100, 1, 4000, 1000],
        [100, 2, 3000, 2000],
      ],
    );
  });

  it("prints each figure as ours / theirs (ratio) per pair, and the median ratio", () => {
    const md = renderComparison(scenarios, "finetune-operator", "kubeflow");
    const lines = md.split("\n");
    assert.equal(lines[0], "**N=100**, 2 pairs");
    assert.match(lines[2]!, /^\| figure \| pair 1: ours \/ kubeflow \(ours÷theirs\) \| pair 2: ours \/ kubeflow \(ours÷theirs\) \| median ours÷theirs \|$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`| ${name}`));
    // 4000/1000 = 4, 3000/2000 = 1.5 → median 2.75
    assert.equal(row("training Job created p99, ms"), "| training Job created p99, ms | 4000 / 1000 (4.00) | 3000 / 2000 (1.50) | 2.75 |");
    assert.equal(row("writes / job (no Events)"), "| writes / job (no Events) | 13.00 / 5.00 (2.60) | 13.00 / 5.00 (2.60) | 2.60 |");
    assert.equal(row("RSS at start, MiB"), "| RSS at start, MiB | 170.0 / 90.0 (1.89) | 180.0 / 90.0 (2.00) | 1.94 |");
    for (const f of ["all training pods Running p99, ms", "Event writes / job", "requests / job", "RSS peak, MiB", "CPU, s", "wall, s"]) assert.ok(row(f), f);
  });

  it("renders a whole --compare results file with its header and notes", () => {
    const r: BenchResults = {
      version: 1,
      startedAt: "2026-01-01T00:00:00Z",
      finishedAt: "2026-01-01T01:00:00Z",
      machine: { cpus: 2, cpuModel: "test", memoryGiB: 8, node: "v24", platform: "linux/x64", note: "shared cores." },
      cluster: { nodes: 14, gpusPerNode: 8 },
      options: { compare: "kubeflow-trainer", ours: "finetune-operator", lifecycle: "train-only", concurrency: 20, theirsBuildSeconds: 300 },
      sut: "finetune-operator",
      scenarios: [...scenarios.slice(0, 2), { ...burst("kubeflow-trainer", 9, 1, 1, 1, 1), notes: ["jobset exited"] }],
    };
    const md = renderCompareMarkdown(r);
    assert.match(md, /\*\*finetune-operator\*\* \(lifecycle train-only\) against \*\*kubeflow-trainer\*\*/);
    assert.match(md, /took 300 s/);
    assert.match(md, /\*\*N=100\*\*, 1 pair\n/);
    assert.match(md, /- kubeflow-trainer N=1 pair 9: jobset exited/);
    const flagged = renderCompareMarkdown({ ...r, options: { ...r.options, nodeFlags: ["--no-opt", "--no-maglev"] } });
    assert.match(flagged, /\*\*finetune-operator\*\* \(lifecycle train-only; node --no-opt --no-maglev\) against/);
    assert.match(renderCompareMarkdown({ ...r, options: { ...r.options, nodeFlags: [] } }), /\(lifecycle train-only; node without flags\)/);
    const withEnv = renderCompareMarkdown({ ...r, options: { ...r.options, nodeFlags: ["--no-opt"], env: { NODE_ENV: "production" } } });
    assert.match(withEnv, /\(lifecycle train-only; NODE_ENV=production node --no-opt\) against/);
  });
});
