/**
 * `npm run bench`: scenarios against a controller on the simulated cluster
 * (kwok), measured from outside: watches for latency, the API server's audit
 * log for requests, /proc for memory and CPU.
 *
 *   npm run bench                                   burst N=1 and N=100, steady (100 jobs, 180 s), recovery (20 jobs)
 *   npm run bench -- --scenario burst --jobs 1000   one scenario, one size
 *   npm run bench -- --jobs 100,1000 --concurrency 50 --steady-seconds 60
 *   npm run bench -- --markdown [results.json]      print the table of the latest (or given) results, run nothing
 *   npm run bench -- --out /tmp/r.json             results elsewhere (default bench/results/<timestamp>.json)
 *   npm run bench -- --update-readme                also rewrite README.md between <!-- bench:start --> and <!-- bench:end -->
 *   npm run bench -- --sut kubeflow                 the scenarios against Kubeflow Trainer + JobSet instead
 *   npm run bench -- --compare kubeflow --jobs 100 --pairs 3
 *                                                   alternating pairs of burst (ours, Kubeflow, ours, ...), each figure
 *                                                   as ours / Kubeflow / ratio per pair and the median ratio
 *                                                   (--update-readme: between <!-- bench-compare:<lifecycle>:start --> and :end)
 *   npm run bench -- --compare kubeflow --lifecycle train-only
 *                                                   ours without merge, in an existing claim: what a TrainJob does
 *   npm run bench -- --node-flags="--lite-mode"     ours under other node flags than the Deployment's args (V8's
 *                                                   compilers: the chart's heap.compilers); --node-flags= for none
 *                                                   (the = is needed: the value starts with a dash)
 *
 * Kubeflow Trainer and JobSet are built from their Go modules on first use (cached by version
 * beside the control plane's binaries); the run prints how long that took.
 *
 * The benchmark starts its own control plane in ~/.cache/finetune-operator/bench-cluster
 * ($FINETUNE_BENCH_CLUSTER_DIR or --cluster-dir), fresh, with the API server
 * auditing the controller's user, and deletes it at the end (--keep-cluster keeps it).
 * Results: bench/results/<timestamp>.json.
 */
import { cpus, freemem, totalmem } from "node:os";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cacheDir } from "../e2e/cluster/paths.ts";
import { renderCompareMarkdown } from "./compare.ts";
import { compareMarkers, renderMarkdown, replaceSection } from "./report.ts";
import type { BenchContext, BenchResults, ScenarioResult } from "./scenarios/types.ts";
import type { SystemUnderTest } from "./sut/types.ts";
import { FinetuneOperator, LIFECYCLES, type Lifecycle } from "./sut/finetune-operator.ts";
import { KubeflowTrainer } from "./sut/kubeflow-trainer.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const RESULTS_DIR = join(ROOT, "bench", "results");
const SUTS: Record<string, (lifecycle: Lifecycle, nodeFlags?: string[]) => SystemUnderTest> = {
  "finetune-operator": (lifecycle, nodeFlags) => new FinetuneOperator(lifecycle, nodeFlags),
  kubeflow: () => new KubeflowTrainer(),
};
const SCENARIOS = ["burst", "steady", "recovery"] as const;
const GPUS_PER_NODE = 8;

const { values } = parseArgs({
  options: {
    jobs: { type: "string", default: "1,100" },
    scenario: { type: "string", default: SCENARIOS.join(",") },
    concurrency: { type: "string", default: "20" },
    "steady-seconds": { type: "string", default: "180" },
    "steady-jobs": { type: "string", default: "100" },
    "recovery-jobs": { type: "string", default: "20" },
    "restart-backoff-seconds": { type: "string", default: "0" },
    nodes: { type: "string" },
    sut: { type: "string", default: "finetune-operator" },
    compare: { type: "string" },
    pairs: { type: "string", default: "3" },
    lifecycle: { type: "string", default: "full" },
    "node-flags": { type: "string" },
    "cluster-dir": { type: "string" },
    "keep-cluster": { type: "boolean", default: false },
    out: { type: "string" },
    markdown: { type: "boolean", default: false },
    "update-readme": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: true,
  strict: true,
});

const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

function latestResults(): string {
  const files = readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith(".json"))
    .sort();
  if (files.length === 0) throw new Error(`no results in ${RESULTS_DIR}; run npm run bench first`);
  return join(RESULTS_DIR, files[files.length - 1]!);
}

function publish(results: BenchResults): void {
  const compared = results.options["compare"] !== undefined;
  const md = compared ? renderCompareMarkdown(results) : renderMarkdown(results);
  process.stdout.write("\n" + md);
  if (values["update-readme"]) {
    const readme = join(ROOT, "README.md");
    const text = readFileSync(readme, "utf8");
    const m = compareMarkers(String(results.options["lifecycle"] ?? "full"));
    writeFileSync(readme, compared ? replaceSection(text, md, m.start, m.end) : replaceSection(text, md));
    log(`updated ${readme}`);
  }
}

function machine(): BenchResults["machine"] {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    note: `Load average at start ${loadAverage().join(", ")}; free memory ${Math.round(freemem() / 2 ** 30)} GiB. Everything (control plane, kwok, operator, harness) shares these cores.`,
  };
}
function loadAverage(): string[] {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3);
  } catch {
    return ["?"];
  }
}

/**
 * Deletes the scenario namespaces and waits for them to go: Kubeflow's controllers watch every namespace, so the
 * previous run's objects would otherwise sit in their caches (and the next start would list them).
 */
async function removeScenarioNamespaces(admin: import("../e2e/lib/index.ts").KubeClients, log: (m: string) => void): Promise<void> {
  const selector = "bench.finetune.dev/scenario";
  const list = async () => (await admin.core.listNamespace({ labelSelector: selector })).items;
  for (const ns of await list()) await admin.core.deleteNamespace({ name: ns.metadata!.name! }).catch(() => undefined);
  const t0 = Date.now();
  while ((await list()).length > 0) {
    if (Date.now() - t0 > 180_000) {
      log("scenario namespaces still terminating after 180 s; going on");
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  log(`scenario namespaces removed in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

async function main(): Promise<void> {
  if (values.help) {
    process.stdout.write(
      readFileSync(fileURLToPath(import.meta.url), "utf8")
        .split("*/")[0]!
        .replace(/^\/\*\*?\n?/, "")
        .replace(/^ \* ?/gm, "") + "\n",
    );
    return;
  }
  if (values.markdown) {
    const file = resolve(process.argv.slice(2).find((a) => a.endsWith(".json")) ?? latestResults());
    publish(JSON.parse(readFileSync(file, "utf8")) as BenchResults);
    return;
  }
  const scenarios = values.scenario!.split(",").map((s) => s.trim());
  for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS.join(", ")}`);
  const burstSizes = values
    .jobs!.split(",")
    .map(Number)
    .sort((a, b) => a - b);
  if (burstSizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--jobs must be positive integers, got ${values.jobs}`);
  const steadyJobs = Number(values["steady-jobs"]);
  const steadySeconds = Number(values["steady-seconds"]);
  const recoveryJobs = Number(values["recovery-jobs"]);
  const backoff = Number(values["restart-backoff-seconds"]);
  const concurrency = Math.max(1, Number(values.concurrency));
  const lifecycle = values.lifecycle as Lifecycle;
  if (!LIFECYCLES.includes(lifecycle)) throw new Error(`--lifecycle must be one of ${LIFECYCLES.join(", ")}`);
  const makeSut = SUTS[values.sut!];
  if (!makeSut) throw new Error(`unknown --sut ${values.sut}; one of ${Object.keys(SUTS).join(", ")}`);
  const nodeFlags = values["node-flags"]?.split(/\s+/).filter(Boolean);
  const sut = makeSut(lifecycle, nodeFlags);
  const compare = values.compare;
  if (compare !== undefined && (!SUTS[compare] || compare === values.sut))
    throw new Error(
      `--compare needs another SUT: one of ${Object.keys(SUTS)
        .filter((k) => k !== values.sut)
        .join(", ")}`,
    );
  const other = compare !== undefined ? SUTS[compare]!(lifecycle) : undefined;
  const pairs = Number(values.pairs);
  if (!Number.isInteger(pairs) || pairs < 1) throw new Error(`--pairs must be a positive integer, got ${values.pairs}`);
  if (other && !scenarios.every((s) => s === "burst")) {
    if (values.scenario !== SCENARIOS.join(",")) throw new Error("--compare runs the burst scenario only");
    scenarios.splice(0, scenarios.length, "burst");
  }
  const auditUsers = [...sut.userNames, ...(other?.userNames ?? [])];

  // Enough fake GPUs for the largest burst (1 GPU per job) and every recovery gang (8 GPUs) to run at once.
  const gpuJobs = Math.max(scenarios.includes("burst") ? burstSizes[burstSizes.length - 1]! : 0, scenarios.includes("steady") ? steadyJobs : 0);
  const nodes = Number(values.nodes ?? Math.max(4, Math.ceil(gpuJobs / GPUS_PER_NODE), scenarios.includes("recovery") ? recoveryJobs : 0) + 1);
  // The cluster module reads these when it starts; the bench never touches the shared test cluster.
  process.env.FINETUNE_CLUSTER_DIR = resolve(values["cluster-dir"] ?? process.env.FINETUNE_BENCH_CLUSTER_DIR ?? join(cacheDir(), "bench-cluster"));
  process.env.FINETUNE_CLUSTER_NODES = String(nodes);
  process.env.FINETUNE_CLUSTER_AUDIT_USERS = auditUsers.join(",");
  const cluster = await import("../e2e/cluster/cluster.ts");
  const { kubeClients } = await import("../e2e/lib/index.ts");
  const { burst } = await import("./scenarios/burst.ts");
  const { steady } = await import("./scenarios/steady.ts");
  const { recovery } = await import("./scenarios/recovery.ts");

  const startedAt = new Date();
  const resultsFile = values.out ? resolve(values.out) : join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  const results: BenchResults = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: "",
    machine: machine(),
    cluster: { nodes, gpusPerNode: GPUS_PER_NODE },
    options: {
      scenarios,
      burstSizes,
      steadyJobs,
      steadySeconds,
      recoveryJobs,
      restartBackoffSeconds: backoff,
      concurrency,
      auditUser: sut.userNames.join(", "),
      lifecycle,
      ...(sut instanceof FinetuneOperator ? { nodeFlags: sut.nodeFlags, env: sut.imageEnv } : {}),
      ...(other ? { compare: other.name, ours: sut.name, pairs, auditUsers } : {}),
    },
    sut: sut.name,
    scenarios: [],
  };
  const save = () => {
    mkdirSync(dirname(resultsFile), { recursive: true });
    results.finishedAt = new Date().toISOString();
    writeFileSync(resultsFile, JSON.stringify(results, null, 2) + "\n");
  };

  let tornDown = false;
  const teardown = async () => {
    if (tornDown || values["keep-cluster"]) return;
    tornDown = true;
    log("stopping the benchmark cluster");
    await sut.stop().catch(() => {});
    await other?.stop().catch(() => {});
    await cluster.down({ log }).catch((e: unknown) => log(`cluster down failed: ${String(e)}`));
  };
  process.once("SIGINT", () => void teardown().finally(() => process.exit(130)));

  try {
    log(`fresh cluster in ${process.env.FINETUNE_CLUSTER_DIR} with ${nodes} kwok nodes, auditing ${auditUsers.join(", ")}`);
    await cluster.down({ log });
    const up = await cluster.up({ log });
    log(`cluster up in ${up.startSeconds.toFixed(1)} s`);
    const admin = await kubeClients();
    for (const s of [sut, other]) {
      if (!s) continue;
      await s.install(admin);
      if (s instanceof KubeflowTrainer) {
        log(s.buildSeconds === undefined ? "Kubeflow binaries were cached (no build)" : `Kubeflow build took ${s.buildSeconds.toFixed(0)} s`);
        if (s.buildSeconds !== undefined) results.options[s === sut ? "buildSeconds" : "theirsBuildSeconds"] = Math.round(s.buildSeconds);
      }
    }
    const ctx: BenchContext = { admin, sut, auditLog: cluster.auditLogPath(), concurrency, log };
    if (other) {
      // Alternating pairs: each pair runs ours then theirs at every size, so drift in the shared machine's load hits both.
      for (let pair = 1; pair <= pairs; pair++) {
        for (const n of burstSizes) {
          for (const s of [sut, other]) {
            const what = `pair ${pair}/${pairs}: ${s.name} burst N=${n}`;
            log(`--- ${what}`);
            const r = { ...(await burst({ ...ctx, sut: s }, n)), pair };
            results.scenarios.push(r);
            save();
            log(`${what} done in ${r.wallSeconds} s`);
            await removeScenarioNamespaces(admin, log);
          }
        }
      }
    }
    const run = async (what: string, fn: () => Promise<ScenarioResult>) => {
      log(`--- ${what}`);
      const r = await fn();
      results.scenarios.push(r);
      save();
      log(`${what} done in ${r.wallSeconds} s`);
    };
    if (!other && scenarios.includes("burst")) for (const n of burstSizes) await run(`burst N=${n}`, () => burst(ctx, n));
    if (scenarios.includes("steady")) await run(`steady N=${steadyJobs} for ${steadySeconds} s`, () => steady(ctx, steadyJobs, steadySeconds));
    if (scenarios.includes("recovery")) await run(`recovery N=${recoveryJobs}`, () => recovery(ctx, recoveryJobs, backoff));
  } finally {
    save();
    await teardown();
  }
  log(`results: ${resultsFile}`);
  publish(results);
}

await main();
// Watches and keep-alive sockets would keep the process alive.
process.exit(process.exitCode ?? 0);
