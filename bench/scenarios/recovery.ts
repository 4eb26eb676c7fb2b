/**
 * recovery: N running 2-rank gangs; rank 1 of each fails (exit 1, through the
 * pod status subresource, as kwok's kubelet would report it). Measures the
 * time from the failure to the next attempt's pods created and Running, and
 * the API requests one recovery costs.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { finishPod } from "../../e2e/lib/ftj.ts";
import { perJob } from "../measure/audit.ts";
import { gangTime, LifecycleRecorder, ownerKey } from "../measure/lifecycle.ts";
import { distribution } from "../measure/stats.ts";
import { auditWindow, startRss, createJobs, MiB, pool, round, scenarioNamespace, startSampler, waitProgress } from "./common.ts";
import type { BenchContext, JobShape, ScenarioResult } from "./types.ts";

export const RECOVERY_SHAPE: JobShape = { nodes: 2, gpusPerNode: 4, fate: "run" };

export async function recovery(ctx: BenchContext, n: number, restartBackoffSeconds: number): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  const shape = RECOVERY_SHAPE;
  const namespace = await scenarioNamespace(ctx, `recovery-${n}`);
  const rec = new LifecycleRecorder(ctx.admin.kc, ctx.sut, namespace);
  await rec.start();
  await ctx.sut.start({ namespace, restartBackoffSeconds });
  const sampler = startSampler(ctx);
  const notes: string[] = [];
  try {
    const names = Array.from({ length: n }, (_, i) => `job-${String(i).padStart(4, "0")}`);
    await createJobs(ctx, rec, namespace, names, shape);
    const gangsUp = (attempt: number) => names.filter((j) => gangTime(rec.podRunning.get(ownerKey(j, attempt)), shape.nodes) !== undefined).length;
    if (!(await waitProgress(ctx, `${n} gangs Running`, 120_000 + n * 2_000, () => gangsUp(0) === n || `${gangsUp(0)}/${n} gangs Running`)))
      notes.push("not every first gang ran");

    // Fail rank 1 of every gang, recording when each failure was written.
    const failedAt = new Map<string, number>();
    const fromMs = Date.now();
    ctx.log(`recovery: failing rank 1 of ${n} gangs`);
    await pool(names, ctx.concurrency, async (job) => {
      const pod = [...rec.pods.values()].find((p: V1Pod) => ctx.sut.ownerOf(p)?.job === job && ctx.sut.ownerOf(p)?.attempt === 0 && ctx.sut.rankOf(p) === 1);
      if (!pod) return;
      await finishPod(ctx.admin, pod, 1, JSON.stringify({ stage: "train", exitCode: 1, reason: "Failed", tail: ["RuntimeError: injected by the benchmark"] }));
      failedAt.set(job, Date.now());
    });
    if (
      !(await waitProgress(
        ctx,
        `${n} next attempts Running`,
        120_000 + n * 2_000 + restartBackoffSeconds * 1000,
        () => gangsUp(1) === n || `${gangsUp(1)}/${n} next gangs Running`,
      ))
    )
      notes.push("not every next attempt ran");
    const toMs = Date.now() + 1000;
    const created: number[] = [];
    const running: number[] = [];
    for (const [job, at] of failedAt) {
      const key = ownerKey(job, 1);
      const first = gangTime(rec.podCreated.get(key), 1);
      const all = gangTime(rec.podRunning.get(key), shape.nodes);
      if (first !== undefined) created.push(first - at);
      if (all !== undefined) running.push(all - at);
    }
    const { audit, leadership } = await auditWindow(ctx, fromMs, toMs);
    const proc = sampler.window(fromMs, toMs);
    const createdD = distribution(created);
    const runningD = distribution(running);
    if (restartBackoffSeconds > 0) notes.push(`includes the configured restart backoff of ${restartBackoffSeconds} s`);
    return {
      scenario: "recovery",
      jobs: n,
      shape,
      sut: { name: ctx.sut.name, settings: ctx.sut.settings },
      startedAt,
      wallSeconds: round((Date.now() - t0) / 1000),
      latencyMs: { ...(createdD ? { recoveryPodsCreated: createdD } : {}), ...(runningD ? { recoveryRunning: runningD } : {}) },
      audit,
      auditWindowSeconds: round((toMs - fromMs) / 1000),
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
              ...startRss(sampler),
              peakRssMiB: round(proc.peakRssBytes / MiB),
              restRssMiB: round(proc.lastRssBytes / MiB),
              cpuSeconds: round(proc.cpuSeconds, 2),
            },
          }
        : {}),
      leadership,
      notes: [...notes, ...(rec.watchErrors > 0 ? [`harness watches reconnected ${rec.watchErrors} times`] : []), ...ctx.sut.takeIncidents()],
    };
  } finally {
    sampler.stop();
    rec.stop();
    await ctx.sut.stop();
  }
}
