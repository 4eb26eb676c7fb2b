/**
 * Side-by-side figures of two controllers run in alternating pairs (`npm run bench -- --compare kubeflow`):
 * for each burst size, each figure as ours, theirs and ours/theirs pair by pair, and the median of the ratios.
 * Pure: results in, markdown out.
 */
import type { BenchResults, ScenarioResult } from "./scenarios/types.ts";

export interface Figure {
  name: string;
  unit: string;
  digits: number;
  value: (s: ScenarioResult) => number | undefined;
}

/** The figures compared, in the order printed. Lower is better for all of them. */
export const FIGURES: Figure[] = [
  { name: "training Job created p99", unit: "ms", digits: 0, value: (s) => s.latencyMs.reaction?.p99 },
  { name: "all training pods Running p99", unit: "ms", digits: 0, value: (s) => s.latencyMs.allPodsRunning?.p99 },
  { name: "writes / job (no Events)", unit: "", digits: 2, value: (s) => s.perJob?.writes },
  { name: "Event writes / job", unit: "", digits: 2, value: (s) => s.perJob?.eventWrites },
  { name: "requests / job", unit: "", digits: 2, value: (s) => s.perJob?.requests },
  { name: "RSS at start", unit: "MiB", digits: 1, value: (s) => s.process?.startRssMiB },
  { name: "RSS peak", unit: "MiB", digits: 1, value: (s) => s.process?.peakRssMiB },
  { name: "CPU", unit: "s", digits: 1, value: (s) => s.process?.cpuSeconds },
  { name: "wall", unit: "s", digits: 0, value: (s) => s.wallSeconds },
  // Leader election under the burst (audit log): the longest wait between two renewals of a Lease, and processes that lost theirs.
  { name: "longest gap between Lease renewals", unit: "s", digits: 2, value: (s) => (s.leadership?.gapMs ? s.leadership.gapMs.max / 1000 : undefined) },
  { name: "leader losses (process exits)", unit: "", digits: 0, value: (s) => s.leadership?.exits },
];

/** ours / theirs; undefined when either is missing or theirs is 0 (and ours is not). 0/0 is 1: equal. */
export function ratio(ours: number | undefined, theirs: number | undefined): number | undefined {
  if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs)) return undefined;
  if (theirs === 0) return ours === 0 ? 1 : undefined;
  return ours / theirs;
}

/** Median of the defined values (mean of the middle two for an even count); undefined when none. */
export function median(values: ReadonlyArray<number | undefined>): number | undefined {
  const v = values.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export interface Pair {
  pair: number;
  jobs: number;
  ours: ScenarioResult;
  theirs: ScenarioResult;
}

/** Burst results matched into pairs by (jobs, pair index): `ours` is the run of `oursName`, `theirs` the other SUT's. */
export function pairsOf(scenarios: readonly ScenarioResult[], oursName: string): Pair[] {
  const out: Pair[] = [];
  const byKey = new Map<string, { ours?: ScenarioResult; theirs?: ScenarioResult }>();
  for (const s of scenarios) {
    if (s.scenario !== "burst" || s.pair === undefined) continue;
    const key = `${s.jobs}#${s.pair}`;
    const slot = byKey.get(key) ?? {};
    if (s.sut.name === oursName) slot.ours = s;
    else slot.theirs = s;
    byKey.set(key, slot);
  }
  for (const [key, slot] of byKey) {
    if (!slot.ours || !slot.theirs) continue;
    const [jobs, pair] = key.split("#").map(Number) as [number, number];
    out.push({ pair, jobs, ours: slot.ours, theirs: slot.theirs });
  }
  return out.sort((a, b) => a.jobs - b.jobs || a.pair - b.pair);
}

function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(digits);
}

const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

/**
 * One table per burst size: a row per figure; per pair "ours / theirs (ratio)"; then the median ratio.
 * A ratio below 1 means ours is lower (better for every figure here).
 */
export function renderComparison(scenarios: readonly ScenarioResult[], oursName: string, theirsName: string): string {
  const pairs = pairsOf(scenarios, oursName);
  const sizes = [...new Set(pairs.map((p) => p.jobs))];
  const parts: string[] = [];
  for (const n of sizes) {
    const ps = pairs.filter((p) => p.jobs === n);
    const head = ["figure", ...ps.map((p) => `pair ${p.pair}: ours / ${theirsName} (ours÷theirs)`), "median ours÷theirs"];
    const rows = FIGURES.map((f) => {
      const ratios = ps.map((p) => ratio(f.value(p.ours), f.value(p.theirs)));
      const cells = ps.map((p, i) => `${fmt(f.value(p.ours), f.digits)} / ${fmt(f.value(p.theirs), f.digits)} (${fmt(ratios[i], 2)})`);
      return [f.unit ? `${f.name}, ${f.unit}` : f.name, ...cells, fmt(median(ratios), 2)];
    });
    parts.push(`**N=${n}**, ${ps.length} pair${ps.length === 1 ? "" : "s"}\n\n` + table(head, rows));
  }
  return parts.join("\n\n");
}

/** The comparison section of a results file made with --compare (header, tables, notes). */
export function renderCompareMarkdown(r: BenchResults): string {
  const oursName = String(r.options["ours"] ?? "finetune-operator");
  const theirsName = String(r.options["compare"] ?? "kubeflow");
  const m = r.machine;
  const lifecycle = String(r.options["lifecycle"] ?? "full");
  const flags = r.options["nodeFlags"] as string[] | undefined;
  const env = Object.entries((r.options["env"] as Record<string, string> | undefined) ?? {}).map(([k, v]) => `${k}=${v} `);
  const head =
    `Run ${r.startedAt}: **${oursName}** (lifecycle ${lifecycle}${flags ? `; ${env.join("")}node ${flags.join(" ") || "without flags"}` : ""}) against **${theirsName}**, alternating pairs of the burst scenario ` +
    `(${r.options["concurrency"]} create calls in flight; 1 GPU each, pods succeed after 1 s); ${m.cpus} CPU cores (${m.cpuModel}), ` +
    `${r.cluster.nodes} kwok nodes × ${r.cluster.gpusPerNode} GPUs. ${m.note}` +
    (r.options["theirsBuildSeconds"] !== undefined
      ? ` Building ${theirsName} from its Go modules took ${r.options["theirsBuildSeconds"]} s (cached afterwards).`
      : "");
  const notes = r.scenarios.flatMap((s) => s.notes.map((n) => `- ${s.sut.name} N=${s.jobs} pair ${s.pair ?? "–"}: ${n}`));
  return [head, renderComparison(r.scenarios, oursName, theirsName), ...(notes.length > 0 ? ["Notes:\n\n" + notes.join("\n")] : [])].join("\n\n") + "\n";
}
