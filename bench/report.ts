/** Pure rendering of results: markdown tables, target checks, and the README section between markers. */
import { STEP_LABELS, STEPS } from "./measure/breakdown.ts";
import type { Distribution } from "./measure/stats.ts";
import type { BenchResults, ScenarioResult } from "./scenarios/types.ts";

export const README_START = "<!-- bench:start -->";
export const README_END = "<!-- bench:end -->";
/** Markers of a side-by-side comparison (--compare) in the README, one section per lifecycle of ours. */
export const compareMarkers = (lifecycle: string) => ({ start: `<!-- bench-compare:${lifecycle}:start -->`, end: `<!-- bench-compare:${lifecycle}:end -->` });

const ms = (d: Distribution | undefined) => (d ? `${fmt(d.p50, 0)} / ${fmt(d.p95, 0)} / ${fmt(d.p99, 0)}` : "–");
function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return "–";
  return x.toFixed(digits);
}
const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

export interface TargetCheck {
  target: string;
  figure: string;
  /** true met, false missed, undefined not measured in this run. */
  met: boolean | undefined;
  how: "measured" | "extrapolated" | "not measured";
}

const bursts = (r: BenchResults) => r.scenarios.filter((s) => s.scenario === "burst").sort((a, b) => a.jobs - b.jobs);

/** RSS at rest as a line through the two largest bursts: MiB per job and the intercept. */
/**
 * RSS at rest as a line in N: through the two largest bursts of at least 100 jobs, or, with
 * one, through its RSS at start (N=0) and at rest. Small bursts are dominated by noise.
 */
export function rssSlope(r: BenchResults): { perJobKiB: number; baseMiB: number; fromN: number; toN: number } | undefined {
  const b = bursts(r).filter((s) => s.process && s.jobs >= 100);
  const hi = b[b.length - 1];
  if (!hi) return undefined;
  const lo = b.length >= 2 ? b[b.length - 2]! : undefined;
  const loN = lo?.jobs ?? 0;
  const loRss = lo ? lo.process!.restRssMiB : hi.process!.startRssMiB;
  if (loRss === undefined || hi.jobs === loN) return undefined;
  const perJobMiB = (hi.process!.restRssMiB - loRss) / (hi.jobs - loN);
  return { perJobKiB: perJobMiB * 1024, baseMiB: hi.process!.restRssMiB - perJobMiB * hi.jobs, fromN: loN, toN: hi.jobs };
}

export function checkTargets(r: BenchResults): TargetCheck[] {
  const out: TargetCheck[] = [];
  const b = bursts(r);
  const b100 = b.find((s) => s.jobs === 100);
  const p99 = b100?.latencyMs.reaction?.p99;
  out.push({
    target: "reaction p99 ≤ 250 ms, 100 jobs at once",
    figure: p99 === undefined ? "no burst of 100" : `${fmt(p99, 0)} ms`,
    met: p99 === undefined ? undefined : p99 <= 250,
    how: p99 === undefined ? "not measured" : "measured",
  });
  const big = b[b.length - 1];
  const w = big?.perJob?.writes;
  out.push({
    target: "≤ 20 API writes per FineTuneJob lifecycle (Events excluded)",
    figure: w === undefined ? "no burst" : `${fmt(w, 2)} at N=${big!.jobs} (+${fmt(big!.perJob!.eventWrites, 2)} Event writes)`,
    met: w === undefined ? undefined : w <= 20,
    how: w === undefined ? "not measured" : "measured",
  });
  const st = r.scenarios.find((s) => s.scenario === "steady");
  out.push({
    target: "zero writes/min at rest",
    figure: st?.atRest
      ? `${fmt(st.atRest.writesPerMinute, 2)}/min over ${fmt(st.atRest.seconds, 0)} s with ${st.jobs} finished jobs (Events ${fmt(st.atRest.eventWritesPerMinute, 2)}/min; Lease renewals ${fmt(st.atRest.leaseWritesPerMinute, 1)}/min, leader election, independent of N)`
      : "no steady run",
    met: st?.atRest ? st.atRest.writesPerMinute === 0 && st.atRest.eventWritesPerMinute === 0 : undefined,
    how: st?.atRest ? "measured" : "not measured",
  });
  const lo = b.filter((s) => s.jobs >= 100)[0];
  if (lo && big && big !== lo && lo.perJob && big.perJob) {
    const reqRatio = big.perJob.requests / lo.perJob.requests;
    const slope = rssSlope(r);
    const firstSlope = lo.process?.startRssMiB !== undefined ? (lo.process.restRssMiB - lo.process.startRssMiB) / lo.jobs : undefined;
    const rssLinear = slope && firstSlope !== undefined ? slope.perJobKiB / 1024 <= Math.max(firstSlope, 0) * 1.25 + 0.01 : undefined;
    out.push({
      target: "requests and memory grow at most linearly",
      figure: `requests/job ${fmt(lo.perJob.requests, 2)} at N=${lo.jobs} → ${fmt(big.perJob.requests, 2)} at N=${big.jobs}; RSS at rest ${fmt(lo.process?.restRssMiB)} → ${fmt(big.process?.restRssMiB)} MiB: ${firstSlope !== undefined ? `${fmt(firstSlope * 1024, 0)} KiB/job from start to N=${lo.jobs}, ` : ""}${fmt(slope?.perJobKiB, 0)} KiB per added job from N=${lo.jobs} to ${big.jobs}`,
      met: reqRatio <= 1.1 && rssLinear !== false,
      how: "measured",
    });
  } else out.push({ target: "requests and memory grow at most linearly", figure: "needs bursts of two sizes ≥ 100", met: undefined, how: "not measured" });
  const listsPerBurst = b.map((s) => `${sum(s.audit.lists)} at N=${s.jobs}`);
  const flat = b.length > 0 && b.every((s) => sum(s.audit.lists) === sum(b[0]!.audit.lists));
  out.push({
    target: "no periodic per-job LISTs",
    figure: `LIST requests per burst (whole run, incl. startup): ${listsPerBurst.join(", ") || "–"}; at rest: ${st?.atRest ? st.atRest.lists : "–"} LISTs, ${st?.atRest ? st.atRest.watches : "–"} WATCH starts`,
    met: b.length === 0 && !st ? undefined : flat && (st?.atRest ? st.atRest.lists === 0 : true),
    how: "measured",
  });
  const biggest = b.filter((s) => s.leadership).at(-1);
  out.push({
    target: "zero leader losses in the largest burst",
    figure: biggest
      ? `${biggest.leadership!.exits} exits, ${biggest.leadership!.failed} failed renewals, longest gap between renewals ${fmt((biggest.leadership!.gapMs?.max ?? Number.NaN) / 1000, 2)} s at N=${biggest.jobs}`
      : "no burst with an audit of its Leases",
    met: biggest ? biggest.leadership!.exits === 0 : undefined,
    how: biggest ? "measured" : "not measured",
  });
  const slope = rssSlope(r);
  if (slope) {
    const at5000 = slope.baseMiB + (slope.perJobKiB / 1024) * 5000;
    const measured5000 = b.find((s) => s.jobs >= 5000);
    out.push({
      target: "operator RSS ≤ 150 MiB with 5000 FineTuneJobs and children cached",
      figure: measured5000
        ? `${fmt(measured5000.process?.restRssMiB)} MiB at N=${measured5000.jobs}`
        : `${fmt(at5000)} MiB (line through N=${slope.fromN} and N=${slope.toN}: ${fmt(slope.baseMiB)} MiB + ${fmt(slope.perJobKiB, 0)} KiB/job)`,
      met: (measured5000?.process?.restRssMiB ?? at5000) <= 150,
      how: measured5000 ? "measured" : "extrapolated",
    });
  } else
    out.push({
      target: "operator RSS ≤ 150 MiB with 5000 FineTuneJobs and children cached",
      figure: "needs bursts of two sizes",
      met: undefined,
      how: "not measured",
    });
  return out;
}

export function renderMarkdown(r: BenchResults): string {
  const parts: string[] = [];
  const m = r.machine;
  parts.push(
    `Run ${r.startedAt} against **${r.sut}**; ${m.cpus} CPU cores (${m.cpuModel}), ${fmt(m.memoryGiB, 0)} GiB RAM, Node ${m.node}; simulated cluster: ${r.cluster.nodes} kwok nodes × ${r.cluster.gpusPerNode} GPUs. ${m.note}`,
  );
  const b = bursts(r);
  if (b.length > 0) {
    parts.push(
      "**burst** (N jobs created at once, " +
        `${r.options["concurrency"]} create calls in flight; 1 GPU each, train then merge on CPU, pods succeed after 1 s). Latencies from the create call's answer: ` +
        "first status = the operator's first status on the FineTuneJob seen, training Job = the training Job seen (by the harness's watches), end to end = every training pod Running. " +
        "RSS: at start (ready, no jobs), peak (VmHWM), at rest (every job finished, children cached).\n\n" +
        table(
          [
            "N",
            "first status p50 / p95 / p99 ms",
            "training Job p50 / p95 / p99 ms",
            "end to end p50 / p95 / p99 ms",
            "Succeeded / min",
            "writes / job",
            "Event writes / job",
            "requests / job",
            "LIST / WATCH starts",
            "start / peak / rest RSS MiB",
            "CPU s",
            "wall s",
          ],
          b.map((s) => [
            String(s.jobs),
            ms(s.latencyMs.firstStatus),
            ms(s.latencyMs.reaction),
            ms(s.latencyMs.allPodsRunning),
            fmt(s.completionsPerMinute),
            fmt(s.perJob?.writes, 2),
            fmt(s.perJob?.eventWrites, 2),
            fmt(s.perJob?.requests, 2),
            `${sum(s.audit.lists)} / ${sum(s.audit.watches)}`,
            s.process ? `${fmt(s.process.startRssMiB)} / ${fmt(s.process.peakRssMiB)} / ${fmt(s.process.restRssMiB)}` : "–",
            fmt(s.process?.cpuSeconds, 1),
            fmt(s.wallSeconds, 0),
          ]),
        ),
    );
    const withLeases = b.filter((s) => s.leadership);
    if (withLeases.length > 0) {
      parts.push(
        "Leader election during each burst, as the API server audited it (bench/measure/leases.ts): time between successive successful renewals of each Lease the controller holds, " +
          "renewals the API server refused or failed, and controller processes that exited on their own (a lost Lease ends the process):\n\n" +
          table(
            ["N", "Leases", "renewals", "gap p50 / p99 / max s", "failed renewals", "exits (leader losses)"],
            withLeases.map((s) => {
              const l = s.leadership!;
              const g = l.gapMs;
              return [
                String(s.jobs),
                String(l.leases.length),
                String(l.renewals),
                g ? `${fmt(g.p50 / 1000, 2)} / ${fmt(g.p99 / 1000, 2)} / ${fmt(g.max / 1000, 2)}` : "–",
                String(l.failed),
                String(l.exits),
              ];
            }),
          ),
      );
    }
    const withBreakdown = b.filter((s) => s.latencyMs.breakdown && Object.keys(s.latencyMs.breakdown).length > 0);
    if (withBreakdown.length > 0) {
      parts.push(
        "Training Job created → every training pod Running, step by step (p50 / p95 / p99 ms; the harness's own watches; bench/measure/breakdown.ts):\n\n" +
          table(
            ["N", ...STEPS.map((st) => STEP_LABELS[st])],
            withBreakdown.map((s) => [String(s.jobs), ...STEPS.map((st) => ms(s.latencyMs.breakdown?.[st]))]),
          ),
      );
    }
    const big = b[b.length - 1]!;
    if (big.perJob) {
      const rows = Object.entries(big.perJob.byVerbResource)
        .sort((a, c) => c[1] - a[1])
        .map(([k, v]) => [k, fmt(v, 2), String(big.audit.byVerbResource[k] ?? 0)]);
      const errs = Object.entries(big.audit.errorsByVerbResource ?? {}).map(([k, v]) => `${k}: ${v}`);
      if (errs.length > 0) rows.push(["(failed requests, included above)", "", errs.join("; ")]);
      parts.push(
        `Requests by verb and resource, burst N=${big.jobs} (audit log, user \`${userOf(r)}\`, from operator start to 5 s after the last job finished):\n\n` +
          table(["verb resource", "per job", "total"], rows),
      );
    }
  }
  const st = r.scenarios.filter((s) => s.scenario === "steady");
  if (st.length > 0) {
    parts.push(
      "**steady** (N finished jobs at rest; resync period inside the window):\n\n" +
        table(
          [
            "N",
            "seconds",
            "resync s",
            "writes / min",
            "Event writes / min",
            "Lease writes / min",
            "requests / min",
            "LISTs",
            "WATCH starts",
            "RSS MiB (mean)",
            "CPU s",
          ],
          st.map((s) => [
            String(s.jobs),
            fmt(s.atRest?.seconds, 0),
            String(s.sut.settings["resyncSeconds"] ?? "–"),
            fmt(s.atRest?.writesPerMinute, 2),
            fmt(s.atRest?.eventWritesPerMinute, 2),
            fmt(s.atRest?.leaseWritesPerMinute, 1),
            fmt(s.atRest?.requestsPerMinute, 1),
            String(s.atRest?.lists ?? "–"),
            String(s.atRest?.watches ?? "–"),
            fmt(s.process?.restRssMiB),
            fmt(s.process?.cpuSeconds, 2),
          ]),
        ),
    );
  }
  const rc = r.scenarios.filter((s) => s.scenario === "recovery");
  if (rc.length > 0) {
    parts.push(
      "**recovery** (rank 1 of each running 2-rank gang exits 1; times from the failure written):\n\n" +
        table(
          [
            "N",
            "restart backoff s",
            "next attempt's first pod created p50 / p95 / p99 ms",
            "next gang Running p50 / p95 / p99 ms",
            "writes / recovery",
            "Event writes / recovery",
            "requests / recovery",
          ],
          rc.map((s) => [
            String(s.jobs),
            String(s.sut.settings["restartBackoffSeconds"] ?? "–"),
            ms(s.latencyMs.recoveryPodsCreated),
            ms(s.latencyMs.recoveryRunning),
            fmt(s.perJob?.writes, 2),
            fmt(s.perJob?.eventWrites, 2),
            fmt(s.perJob?.requests, 2),
          ]),
        ),
    );
  }
  parts.push(
    "**Targets**\n\n" +
      table(
        ["target", "figure", "status"],
        checkTargets(r).map((t) => [
          t.target,
          t.figure,
          `${t.met === undefined ? "not measured" : t.met ? "met" : "**missed**"}${t.how === "extrapolated" ? " (extrapolated)" : ""}`,
        ]),
      ),
  );
  const notes = r.scenarios.flatMap((s) => s.notes.map((n) => `- ${s.scenario} N=${s.jobs}: ${n}`));
  if (notes.length > 0) parts.push("Notes:\n\n" + notes.join("\n"));
  return parts.join("\n\n") + "\n";
}

function userOf(r: BenchResults): string {
  return String(r.options["auditUser"] ?? "");
}

/** Replaces the text between two markers (markers kept; the bench markers by default); throws when they are missing. */
export function replaceSection(readme: string, body: string, startMarker = README_START, endMarker = README_END): string {
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start < 0 || end < start) throw new Error(`README has no ${startMarker} … ${endMarker} section`);
  return readme.slice(0, start + startMarker.length) + "\n" + body.trimEnd() + "\n" + readme.slice(end);
}
