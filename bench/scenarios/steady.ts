/**
 * steady: N finished user jobs (and their children) at rest for `seconds`,
 * with a resync period short enough to fall inside the window; counts every
 * request and write the controller makes while nothing changes, and its
 * memory and CPU at rest.
 */
import { auditWindow, startRss, MiB, round, sleep } from "./common.ts";
import { BURST_SHAPE, outcome, runToCompletion } from "./burst.ts";
import type { BenchContext, ScenarioResult } from "./types.ts";

export async function steady(ctx: BenchContext, n: number, seconds: number): Promise<ScenarioResult> {
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  // At least two resyncs inside the window (a resync must not write or LIST).
  const resyncSeconds = Math.max(10, Math.min(60, Math.floor(seconds / 3)));
  const c = await runToCompletion(ctx, `steady-${n}`, n, BURST_SHAPE, resyncSeconds);
  try {
    await sleep(10_000);
    const fromMs = Date.now();
    ctx.log(`steady: ${n} jobs finished; at rest for ${seconds} s (resync every ${resyncSeconds} s)`);
    await sleep(seconds * 1000);
    const toMs = Date.now();
    const { audit, leadership } = await auditWindow(ctx, fromMs, toMs);
    const proc = c.sampler.window(fromMs, toMs);
    const minutes = (toMs - fromMs) / 60_000;
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    return {
      scenario: "steady",
      jobs: n,
      shape: BURST_SHAPE,
      sut: { name: ctx.sut.name, settings: ctx.sut.settings },
      startedAt,
      wallSeconds: round((Date.now() - t0) / 1000),
      latencyMs: {},
      outcome: outcome(c.rec, n),
      audit,
      auditWindowSeconds: round((toMs - fromMs) / 1000),
      atRest: {
        seconds: round((toMs - fromMs) / 1000),
        writesPerMinute: round(audit.writes / minutes, 2),
        eventWritesPerMinute: round(audit.eventWrites / minutes, 2),
        leaseWritesPerMinute: round(audit.leaseWrites / minutes, 2),
        requestsPerMinute: round(audit.total / minutes, 2),
        lists: sum(audit.lists),
        watches: sum(audit.watches),
      },
      ...(proc
        ? {
            process: {
              ...startRss(c.sampler),
              peakRssMiB: round(proc.peakRssBytes / MiB),
              restRssMiB: round(proc.meanRssBytes / MiB),
              cpuSeconds: round(proc.cpuSeconds, 2),
            },
          }
        : {}),
      leadership,
      notes: [...c.notes, ...ctx.sut.takeIncidents()],
    };
  } finally {
    c.sampler.stop();
    c.rec.stop();
    await ctx.sut.stop();
  }
}
