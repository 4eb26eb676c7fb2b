/**
 * `npm test`: every test, one command. Type-check, formatting, unit tests, the Python
 * launcher's tests, the e2e suites on the local control plane (started, and
 * built on first use, when it is not running), then the real-Axolotl tier
 * (e2e/axolotl: the pinned axolotl on CPU, its venv built on first use). Ends
 * with one line "N passed, N failed" summing every runner.
 *
 *   npm test                    everything
 *   npm test -- --unit-only     no cluster, no Axolotl environment
 *   npm test -- --e2e-only      only the control-plane e2e suites
 *   npm test -- --axolotl-only  only the real-Axolotl tier
 *   npm test -- e2e/faults.test.ts   only the named test files
 */
import { spawn } from "node:child_process";
import { ensureCluster } from "../e2e/cluster/cluster.ts";
import { logDigest } from "../e2e/cluster/digest.ts";
import { layout } from "../e2e/cluster/paths.ts";
import { ensureAxolotlEnv } from "../e2e/axolotl/env.ts";

interface Tally {
  passed: number;
  failed: number;
}

const args = process.argv.slice(2);
const unitOnly = args.includes("--unit-only");
const e2eOnly = args.includes("--e2e-only");
const axolotlOnly = args.includes("--axolotl-only");
const files = args.filter((a) => !a.startsWith("--"));
const total: Tally = { passed: 0, failed: 0 };
let stepsFailed = 0;

/** Runs one step; resolves true when it passed. */
function run(title: string, cmd: string, cmdArgs: string[], parse: (out: string) => Tally | undefined, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  process.stdout.write(`\n=== ${title}\n`);
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
      process.stderr.write(d);
    });
    child.on("close", (code) => {
      const tally = parse(out);
      if (tally) {
        total.passed += tally.passed;
        total.failed += tally.failed;
      }
      if (code !== 0) {
        stepsFailed++;
        // A step that failed without failing a test (a crash, a type error) still counts as one failure.
        if (!tally || tally.failed === 0) total.failed += 1;
      }
      resolve(code === 0 && (tally?.failed ?? 0) === 0);
    });
  });
}

const nodeTap = (out: string): Tally | undefined => {
  const pass = [...out.matchAll(/^ℹ pass (\d+)$/gm)].pop();
  const fail = [...out.matchAll(/^ℹ fail (\d+)$/gm)].pop();
  const cancelled = [...out.matchAll(/^ℹ cancelled (\d+)$/gm)].pop();
  if (!pass || !fail) return undefined;
  return { passed: Number(pass[1]), failed: Number(fail[1]) + Number(cancelled?.[1] ?? 0) };
};

const pyUnittest = (out: string): Tally | undefined => {
  const ran = out.match(/^Ran (\d+) tests?/m);
  if (!ran) return undefined;
  const f = out.match(/^FAILED \((.*)\)$/m);
  const failed = f ? [...f[1]!.matchAll(/(?:failures|errors)=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0) : 0;
  return { passed: Number(ran[1]) - failed, failed };
};

/** After a failed e2e step: what the control plane's components complained of (CI keeps only this output). */
function printClusterDigest(): void {
  process.stdout.write(`\n=== control-plane warnings and errors during the run (${layout().logs})\n${logDigest(layout().logs) || "none"}\n`);
}

const node = process.execPath;
const nodeTest = ["--test", "--test-reporter=spec", "--test-reporter-destination=stdout"];

if (files.length > 0) {
  if (files.some((f) => f.startsWith("e2e/") && !f.startsWith("e2e/axolotl/"))) await ensureCluster();
  const ok = await run(`tests: ${files.join(" ")}`, node, [...nodeTest, "--test-concurrency=1", ...files], nodeTap);
  if (!ok && files.some((f) => f.startsWith("e2e/") && !f.startsWith("e2e/axolotl/"))) printClusterDigest();
} else {
  if (!e2eOnly && !axolotlOnly) {
    await run("type-check (tsc --noEmit)", node, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], () => undefined);
    await run("formatting (prettier --check, .prettierrc.json)", node, ["node_modules/prettier/bin/prettier.cjs", "--check", "**/*.ts"], () => undefined);
    await run("unit tests", node, [...nodeTest, "src/**/*.test.ts", "bench/**/*.test.ts", "e2e/cluster/*.test.ts"], nodeTap);
    await run("launcher tests (Python, stdlib only)", "python3", ["-m", "unittest", "discover", "-s", "src/trainer/tests"], pyUnittest);
  }
  if (!unitOnly && !axolotlOnly) {
    process.stdout.write("\n=== local control plane\n");
    const { kubeconfigPath } = await ensureCluster();
    process.stdout.write(`cluster ready (KUBECONFIG=${kubeconfigPath})\n`);
    // One file at a time: each suite runs its own operator process, and this machine has two cores.
    const ok = await run(
      "e2e tests (real kube-apiserver, etcd, scheduler, controller-manager, kwok)",
      node,
      [...nodeTest, "--test-concurrency=1", "e2e/*.test.ts"],
      nodeTap,
    );
    if (!ok) printClusterDigest();
  }
  if (!unitOnly && !e2eOnly) {
    process.stdout.write("\n=== real Axolotl environment\n");
    const started = Date.now();
    const env = await ensureAxolotlEnv((line) => process.stdout.write(`${line}\n`));
    process.stdout.write(`axolotl ${env.version} at ${env.root} (${Math.round((Date.now() - started) / 1000)} s)\n`);
    await run(
      `real-Axolotl tier (axolotl ${env.version} on CPU, tiny local model)`,
      node,
      [...nodeTest, "--test-concurrency=1", "e2e/axolotl/*.test.ts"],
      nodeTap,
    );
  }
}

process.stdout.write(`\n${total.passed} passed, ${total.failed} failed\n`);
process.exitCode = stepsFailed > 0 || total.failed > 0 ? 1 : 0;
