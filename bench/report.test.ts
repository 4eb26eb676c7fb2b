import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countRequests } from "./measure/audit.ts";
import { checkTargets, compareMarkers, README_END, README_START, renderMarkdown, replaceSection, rssSlope } from "./report.ts";
import type { BenchResults, ScenarioResult } from "./scenarios/types.ts";

const d = (p50: number, p99: number) => ({ count: 10, min: p50, p50, p95: p99, p99, max: p99, mean: p50 });
const audit = (lists = 6) => ({ ...countRequests([], { user: "u" }), lists: { pods: lists } });

function burst(jobs: number, restRssMiB: number, p99: number, writes = 12): ScenarioResult {
  return {
    scenario: "burst",
    jobs,
    shape: { nodes: 1, gpusPerNode: 1, fate: "succeed", runSeconds: 1 },
    sut: { name: "finetune-operator", settings: {} },
    startedAt: "2026-01-01T00:00:00Z",
    wallSeconds: 10,
    latencyMs: { reaction: d(100, p99), allPodsRunning: d(500, 900) },
    completionsPerMinute: 100,
    outcome: { succeeded: jobs, failed: 0, unfinished: 0 },
    audit: audit(),
    auditWindowSeconds: 10,
    perJob: { writes, eventWrites: 8, gets: 0, requests: 20, byVerbResource: { "create jobs": 2, "update finetunejobs/status": 10 } },
    process: { startRssMiB: 100, peakRssMiB: restRssMiB + 20, restRssMiB, cpuSeconds: 1 },
    notes: [],
  };
}

function results(scenarios: ScenarioResult[]): BenchResults {
  return {
    version: 1,
    startedAt: "2026-01-01T00:00:00Z",
    finishedAt: "2026-01-01T00:10:00Z",
    machine: { cpus: 2, cpuModel: "x", memoryGiB: 8, node: "v24", platform: "linux/x64", note: "" },
    cluster: { nodes: 10, gpusPerNode: 8 },
    options: { concurrency: 20, auditUser: "system:serviceaccount:a:b" },
    sut: "finetune-operator",
    scenarios,
  };
}

const steady: ScenarioResult = {
  ...burst(100, 110, 0),
  scenario: "steady",
  latencyMs: {},
  atRest: { seconds: 180, writesPerMinute: 0, eventWritesPerMinute: 0, leaseWritesPerMinute: 30, requestsPerMinute: 60, lists: 0, watches: 6 },
};

describe("report", () => {
  it("RSS line through the two largest bursts of at least 100 jobs", () => {
    const s = rssSlope(results([burst(1, 500, 10), burst(100, 110, 10), burst(1000, 200, 10)]))!;
    assert.equal(s.fromN, 100);
    assert.equal(s.toN, 1000);
    assert.ok(Math.abs(s.perJobKiB - 102.4) < 1e-9);
    assert.ok(Math.abs(s.baseMiB - 100) < 1e-9);
    // one burst: from its start RSS (N=0)
    assert.equal(rssSlope(results([burst(100, 110, 10)]))!.fromN, 0);
    assert.equal(rssSlope(results([burst(10, 110, 10)])), undefined);
  });

  it("checks every target, met or missed, and says what was extrapolated", () => {
    const checks = checkTargets(results([burst(1, 90, 5), burst(100, 110, 300), burst(1000, 200, 900, 25), steady]));
    const by = Object.fromEntries(checks.map((c) => [c.target.split(" ")[0] + " " + c.target.split(" ")[1], c]));
    assert.equal(checks.length, 7);
    assert.equal(by["reaction p99"]!.met, false);
    assert.equal(by["reaction p99"]!.figure, "300 ms");
    assert.equal(by["≤ 20"]!.met, false);
    assert.equal(by["zero writes/min"]!.met, true);
    assert.equal(by["no periodic"]!.met, true);
    const rss = checks.find((c) => c.target.startsWith("operator RSS"))!;
    assert.equal(rss.how, "extrapolated");
    assert.equal(rss.met, false); // 100 MiB + 0.1 MiB/job × 5000 = 600 MiB
    assert.match(rss.figure, /600\.0 MiB/);
    assert.equal(by["zero leader"]!.met, undefined, "no burst carried an audit of its Leases");
  });

  it("leader losses: the largest burst with a Lease audit decides, and its Lease gaps are tabled", () => {
    const leadership = (exits: number) => ({ leases: ["ns/l"], renewals: 50, failed: 1, gapMs: d(2000, 2400), exits });
    const r = results([
      { ...burst(100, 110, 300), leadership: leadership(0) },
      { ...burst(1000, 200, 900), leadership: leadership(2) },
    ]);
    const loss = checkTargets(r).find((c) => c.target.startsWith("zero leader"))!;
    assert.equal(loss.met, false);
    assert.match(loss.figure, /^2 exits, 1 failed renewals, longest gap between renewals 2\.40 s at N=1000$/);
    assert.match(renderMarkdown(r), /\| 100 \| 1 \| 50 \| 2\.00 \/ 2\.40 \/ 2\.40 \| 1 \| 0 \|/);
  });

  it("says not measured when a scenario did not run", () => {
    const checks = checkTargets(results([]));
    assert.ok(checks.every((c) => c.met === undefined));
  });

  it("renders tables for every scenario and the targets", () => {
    const md = renderMarkdown(results([burst(100, 110, 300), steady]));
    assert.match(md, /\| 100 \| – \| 100 \/ 300 \/ 300 \| 500 \/ 900 \/ 900 \|/);
    assert.match(md, /\*\*steady\*\*/);
    assert.match(md, /\| update finetunejobs\/status \| 10\.00 \|/);
    assert.match(md, /\*\*missed\*\*/);
    assert.doesNotMatch(md, /undefined|NaN/);
  });

  it("replaces the README section between the markers only", () => {
    const readme = `# x\n\n## Benchmark\n\nintro\n\n${README_START}\nold\n${README_END}\n\nafter\n`;
    assert.equal(replaceSection(readme, "new table\n"), `# x\n\n## Benchmark\n\nintro\n\n${README_START}\nnew table\n${README_END}\n\nafter\n`);
    assert.throws(() => replaceSection("# no markers", "x"), /bench:start/);
    // A comparison section per lifecycle, beside the main one, left alone by it.
    const m = compareMarkers("train-only");
    const both = `${readme}\n${m.start}\nold cmp\n${m.end}\n`;
    assert.equal(replaceSection(both, "cmp", m.start, m.end), `${readme}\n${m.start}\ncmp\n${m.end}\n`);
    assert.throws(() => replaceSection(readme, "cmp", m.start, m.end), /bench-compare:train-only:start/);
  });
});
