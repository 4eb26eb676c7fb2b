/** Building blocks the scenarios share: namespaces, paced creates, waiting with progress, windows of audit and /proc figures. */
import { randomBytes } from "node:crypto";
import { countRequests, readAuditLog, type AuditCounts } from "../measure/audit.ts";
import { steps, STEPS, type Step } from "../measure/breakdown.ts";
import { leaseRenewals } from "../measure/leases.ts";
import { gangTime, LifecycleRecorder, ownerKey } from "../measure/lifecycle.ts";
import { ProcSampler } from "../measure/proc.ts";
import { distribution, type Distribution } from "../measure/stats.ts";
import type { BenchContext, JobShape, Leadership } from "./types.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const MiB = 1024 * 1024;

export async function scenarioNamespace(ctx: BenchContext, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await ctx.admin.core.createNamespace({ body: { metadata: { name, labels: { "bench.finetune.dev/scenario": prefix } } } });
  return name;
}

/** Runs `fn` over items with at most `concurrency` in flight. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

/** Creates `names` as user jobs of `shape`, recording request and answer times. */
export async function createJobs(ctx: BenchContext, rec: LifecycleRecorder, namespace: string, names: string[], shape: JobShape): Promise<void> {
  const r = ctx.sut.jobResource;
  await pool(names, ctx.concurrency, async (name) => {
    const body = ctx.sut.jobManifest(name, namespace, shape);
    const requestMs = Date.now();
    await ctx.admin.custom.createNamespacedCustomObject({ group: r.group, version: r.version, namespace, plural: r.plural, body });
    rec.noteCreate(name, { requestMs, createdMs: Date.now() });
  });
}

/** Polls `check` (which returns a progress line, or true when done) every second, logging progress every 10 s. */
export async function waitProgress(ctx: BenchContext, what: string, timeoutMs: number, check: () => string | true): Promise<boolean> {
  const t0 = Date.now();
  let lastLog = t0;
  for (;;) {
    const state = check();
    if (state === true) return true;
    if (Date.now() - t0 > timeoutMs) {
      ctx.log(`gave up waiting for ${what} after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${state}`);
      return false;
    }
    if (Date.now() - lastLog >= 10_000) {
      ctx.log(`  waiting for ${what} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${state}`);
      lastLog = Date.now();
    }
    await sleep(250);
  }
}

/** Audit counts and Lease renewals of the controller's users in [fromMs, toMs], once the API server has written them. */
export async function auditWindow(ctx: BenchContext, fromMs: number, toMs: number): Promise<{ audit: AuditCounts; leadership: Leadership }> {
  await sleep(1500);
  const requests = await readAuditLog(ctx.auditLog, ctx.sut.userNames);
  return {
    audit: countRequests(requests, { user: ctx.sut.userNames, fromMs, toMs }),
    leadership: { ...leaseRenewals(requests, ctx.sut.userNames, fromMs, toMs), exits: ctx.sut.unexpectedExits() },
  };
}

/** Latencies from the create answer to attempt-0 milestones, per job that reached them. */
export function creationLatencies(
  rec: LifecycleRecorder,
  gangSize: number,
): { firstStatus?: Distribution; reaction?: Distribution; allPodsRunning?: Distribution } {
  const firstStatus: number[] = [];
  const reaction: number[] = [];
  const running: number[] = [];
  for (const [job, c] of rec.creates) {
    const key = ownerKey(job, 0);
    const ack = rec.acknowledged.get(job);
    if (ack !== undefined) firstStatus.push(ack - c.createdMs);
    const seen = rec.trainingJobSeen.get(key);
    if (seen !== undefined) reaction.push(seen - c.createdMs);
    const all = gangTime(rec.podRunning.get(key), gangSize);
    if (all !== undefined) running.push(all - c.createdMs);
  }
  const f = distribution(firstStatus);
  const r = distribution(reaction);
  const a = distribution(running);
  return { ...(f ? { firstStatus: f } : {}), ...(r ? { reaction: r } : {}), ...(a ? { allPodsRunning: a } : {}) };
}

/** Job created → Running, step by step (bench/measure/breakdown.ts), over the attempt-0 gangs that got Running. */
export function latencyBreakdown(rec: LifecycleRecorder, gangSize: number): Partial<Record<Step, Distribution>> {
  const values = Object.fromEntries(STEPS.map((s) => [s, [] as number[]])) as Record<Step, number[]>;
  for (const job of rec.creates.keys()) {
    const key = ownerKey(job, 0);
    const jobSeen = rec.trainingJobSeen.get(key);
    const podsCreated = gangTime(rec.podCreated.get(key), gangSize);
    const scheduled = gangTime(rec.podScheduled.get(key), gangSize);
    const running = gangTime(rec.podRunning.get(key), gangSize);
    if (jobSeen === undefined || podsCreated === undefined || scheduled === undefined || running === undefined) continue;
    const claimBound = rec.claimBound.get(job);
    for (const [step, ms] of Object.entries(steps({ jobSeen, podsCreated, scheduled, running, ...(claimBound !== undefined ? { claimBound } : {}) })))
      values[step as Step].push(ms);
  }
  const out: Partial<Record<Step, Distribution>> = {};
  for (const step of STEPS) {
    const d = distribution(values[step]);
    if (d) out[step] = d;
  }
  return out;
}

export function startSampler(ctx: BenchContext): ProcSampler {
  if (ctx.sut.pids().length === 0) throw new Error(`${ctx.sut.name} has no pid`);
  return new ProcSampler(() => ctx.sut.pids(), 500);
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** RSS of the first sample (taken when the controller had just become ready). */
export function startRss(sampler: ProcSampler): { startRssMiB?: number } {
  const first = sampler.samples[0];
  return first ? { startRssMiB: round(first.rssBytes / MiB) } : {};
}
