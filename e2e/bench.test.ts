/**
 * The benchmark harness end to end, tiny: burst N=2, steady for 8 s, recovery N=1, on its
 * own throw-away cluster (not the shared test cluster). Asserts the figures exist and
 * come from the API server's audit log, not that they are fast.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BenchResults } from "../bench/scenarios/types.ts";

test("npm run bench: burst, steady and recovery produce audited figures", { timeout: 480_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bench-e2e-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "results.json");
  const clusterDir = join(process.env.FINETUNE_CACHE_DIR ?? join(homedir(), ".cache", "finetune-operator"), "bench-e2e-cluster");
  const args = [
    "bench/run.ts",
    "--jobs",
    "2",
    "--steady-jobs",
    "2",
    "--steady-seconds",
    "8",
    "--recovery-jobs",
    "1",
    "--nodes",
    "4",
    "--cluster-dir",
    clusterDir,
    "--out",
    out,
  ];
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (c) => resolve({ code: c, stderr }));
  });
  assert.equal(code, 0, stderr.slice(-3000));
  const r = JSON.parse(readFileSync(out, "utf8")) as BenchResults;
  assert.deepEqual(
    r.scenarios.map((s) => s.scenario),
    ["burst", "steady", "recovery"],
  );
  const [burst, steady, recovery] = r.scenarios as [BenchResults["scenarios"][number], BenchResults["scenarios"][number], BenchResults["scenarios"][number]];
  assert.deepEqual(burst.outcome, { succeeded: 2, failed: 0, unfinished: 0 });
  assert.equal(burst.latencyMs.reaction?.count, 2);
  assert.equal(burst.latencyMs.allPodsRunning?.count, 2);
  // Counted by the API server for the operator's ServiceAccount.
  const v = burst.audit.byVerbResource;
  assert.ok((v["create jobs"] ?? 0) >= 4, `train + merge Job per FineTuneJob: ${JSON.stringify(v)}`);
  assert.ok((v["create persistentvolumeclaims"] ?? 0) >= 2);
  assert.ok(Object.keys(v).some((k) => k.startsWith("update finetunejobs/status") || k.startsWith("patch finetunejobs/status")));
  assert.ok((burst.audit.lists["finetunejobs"] ?? 0) >= 1 && (burst.audit.watches["finetunejobs"] ?? 0) >= 1);
  assert.ok(burst.perJob!.writes > 0 && burst.process!.peakRssMiB > 0);
  // Leader election as the audit log shows it: the operator's one Lease, renewed, gaps measured, no process exit.
  const l = burst.leadership;
  assert.ok(l && l.leases.length === 1 && l.renewals > 1 && l.gapMs !== undefined, JSON.stringify(l));
  assert.equal(l.exits, 0);
  assert.equal(steady.atRest?.writesPerMinute, 0, "no writes at rest");
  assert.equal(steady.atRest?.lists, 0, "no LISTs at rest");
  assert.ok((steady.atRest?.leaseWritesPerMinute ?? 0) > 0, "lease renewals are seen (the audit log works in the window)");
  assert.equal(recovery.latencyMs.recoveryPodsCreated?.count, 1);
  assert.ok((recovery.audit.byVerbResource["create jobs"] ?? 0) >= 1);
});
