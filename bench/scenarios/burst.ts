/**
 * burst: N user jobs applied at once (creates `concurrency` at a time) against
 * a freshly started controller; measures reaction and end-to-end latency,
 * completions per minute, API requests per job lifecycle, memory and CPU.
 * Also the first half of `steady` (N jobs run to completion).
 */
import { perJob } from "../measure/audit.ts";
import { LifecycleRecorder } from "../measure/lifecycle.ts";
import type { ProcSampler } from "../measure/proc.ts";
import { perMinute } from "../measure/stats.ts";
import {
  auditWindow,
  startRss,
  createJobs,
  creationLatencies,
  latencyBreakdown,
  MiB,
  round,
  scenarioNamespace,
  sleep,
  startSampler,
  waitProgress,
} from "./common.ts";
import type { BenchContext, JobShape, ScenarioResult } from "./types.ts";

/** One GPU, succeed after 1 s: the cheapest real lifecycle (train Job, then merge on CPU). */
export const BURST_SHAPE: JobShape = { nodes: 1, gpusPerNode: 1, fate: "succeed", runSeconds: 1 };

export interface Completed {
  namespace: string;
  rec: LifecycleRecorder;
  sampler: ProcSampler;
  operatorStartMs: number;
  firstCreateMs: number;
  lastFinishMs: number;
  allDone: boolean;
  notes: string[];
}

/** Starts the controller in a fresh namespace, applies n jobs of `shape` and waits until all are terminal. */
export async function runToCompletion(ctx: BenchContext, prefix: string, n: number, shape: JobShape, resyncSeconds?: number): Promise<Completed> {
  const namespace = await scenarioNamespace(ctx, prefix);
  const rec = new LifecycleRecorder(ctx.admin.kc, ctx.sut, namespace);
  await rec.start();
  const operatorStartMs = Date.now();
  await ctx.sut.start({ namespace, ...(resyncSeconds !== undefined ? { resyncSeconds } : {}) });
  const sampler = startSampler(ctx);
  const names = Array.from({ length: n }, (_, i) => `job-${String(i).padStart(5, "0")}`);
  ctx.log(`${prefix}: creating ${n} jobs in ${namespace} (${ctx.concurrency} at a time)`);
  const firstCreateMs = Date.now();
  await createJobs(ctx, rec, namespace, names, shape);
  ctx.log(`${prefix}: ${n} created in ${((Date.now() - firstCreateMs) / 1000).toFixed(1)} s`);
  const allDone = await waitProgress(ctx, `${n} jobs terminal`, 120_000 + n * 1_000, () => {
    if (rec.finished.size >= n) return true;
    return `${rec.finished.size}/${n} terminal, ${rec.trainingJobSeen.size} training Jobs seen`;
  });
  const lastFinishMs = Math.max(...[...rec.finished.values()].map((f) => f.atMs), firstCreateMs);
  const notes: string[] = [];
  if (!allDone) notes.push(`only ${rec.finished.size}/${n} jobs reached a terminal phase in time`);
  if (rec.watchErrors > 0) notes.push(`harness watches reconnected ${rec.watchErrors} times`);
  return { namespace, rec, sampler, operatorStartMs, firstCreateMs, lastFinishMs, allDone, notes };
}

export function outcome(rec: LifecycleRecorder, n: number) {
  const phases = [...rec.finished.values()].map((f) => f.phase);
  const succeeded = phases.filter((p) => p === "Succeeded").length;
  const failed = phases.filter((p) => p === "Failed").length;
  return { succeeded, failed, unfinished: n - succeeded - failed };
}

export async function burst(ctx: BenchContext, n: number): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const shape = BURST_SHAPE;
  const c = await runToCompletion(ctx, `burst-${n}`, n, shape);
  try {
    // Settle: children's last status updates land, then memory with everything cached.
    await sleep(5_000);
    const endMs = Date.now();
    const { audit, leadership } = await auditWindow(ctx, c.operatorStartMs, endMs);
    const proc = c.sampler.window(c.operatorStartMs, endMs);
    const succeededAt = [...c.rec.finished.values()].filter((f) => f.phase === "Succeeded").map((f) => f.atMs);
    const out = outcome(c.rec, n);
    const cpm = perMinute(succeededAt, c.firstCreateMs);
    return {
      scenario: "burst",
      jobs: n,
      shape,
      sut: { name: ctx.sut.name, settings: ctx.sut.settings },
      startedAt,
      wallSeconds: round((Date.now() - t0) / 1000),
      latencyMs: { ...creationLatencies(c.rec, shape.nodes), breakdown: latencyBreakdown(c.rec, shape.nodes) },
      ...(cpm !== undefined ? { completionsPerMinute: round(cpm) } : {}),
      outcome: out,
      audit,
      auditWindowSeconds: round((endMs - c.operatorStartMs) / 1000),
      perJob: {
        writes: round(audit.writes / n, 2),
        eventWrites: round(audit.eventWrites / n, 2),
        gets: round(audit.gets / n, 2),
        requests: round(audit.total / n, 2),
        byVerbResource: perJob(audit.byVerbResource, n),
      },
      ...(proc
        ? {
            process: {
              ...startRss(c.sampler),
              peakRssMiB: round(proc.peakRssBytes / MiB),
              restRssMiB: round(proc.lastRssBytes / MiB),
              cpuSeconds: round(proc.cpuSeconds, 2),
            },
          }
        : {}),
      leadership,
      notes: [...c.notes, ...(out.failed > 0 ? [`${out.failed} jobs Failed`] : []), ...ctx.sut.takeIncidents()],
    };
  } finally {
    c.sampler.stop();
    c.rec.stop();
    await ctx.sut.stop();
  }
}
