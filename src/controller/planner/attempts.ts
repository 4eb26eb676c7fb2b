/**
 * Attempts and restarts: how an attempt ends (succeeded, failed, disrupted, suspended, stopped), whether the
 * failure counts, when the stage gives up, and the teardown, backoff and start of the next attempt.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { Stage } from "../../api/group.ts";
import type { AttemptRecord, FineTuneJobSpec, StageStatus } from "../../api/schema.ts";
import type { DesiredObjects } from "../../render/desired.ts";
import { stageJobName } from "../../render/names.ts";
import { parseTerminationMessage, type AttemptFailure } from "../failures.ts";
import { Reason, STAGE_FAILED_REASON, type FailureReason } from "../reasons.ts";
import { STAGE_CONDITION, STAGE_PHASE, attemptOf, isTerminal, jobCondition, type Planner } from "./context.ts";
import { failJob } from "./outcome.ts";
import { createStageJob } from "./stage-job.ts";

/** How an attempt ended, as its record keeps it. */
export interface AttemptEnd {
  result: "Succeeded" | "Failed" | "Disrupted" | "Suspended";
  reason?: FailureReason;
  message?: string;
  /** Whether it counts against the stage's retries (unset for a success). */
  counted?: boolean;
}

/** Closes an open attempt record; the checkpoint it resumed from is kept when its pods reported one. */
export function closeAttempt(p: Planner, record: AttemptRecord, end: AttemptEnd, pods: readonly V1Pod[] = []): void {
  if (record.endTime) return;
  record.endTime = p.now;
  record.result = end.result;
  if (end.reason !== undefined) record.reason = end.reason;
  if (end.message !== undefined) record.message = end.message;
  if (end.counted !== undefined) record.counted = end.counted;
  noteResumePoint(record, pods);
}

/** Records the checkpoint the attempt resumed from, once its pods have said. */
export function noteResumePoint(record: AttemptRecord, pods: readonly V1Pod[]): void {
  const resume = resumePoint(pods);
  if (resume && resume !== "none" && record.resumedFrom === undefined) record.resumedFrom = resume;
}

/** The checkpoint the launcher resumed from, from the termination message of a finished pod (running pods have none yet). */
function resumePoint(pods: readonly V1Pod[]): string | undefined {
  for (const pod of pods) {
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    const { summary } = parseTerminationMessage(term?.message);
    if (summary && summary.resumeFrom !== undefined) return summary.resumeFrom ?? "none";
  }
  return undefined;
}

function retryLimit(p: Planner, stage: Stage, spec: FineTuneJobSpec): number {
  return stage === "train" ? spec.maxRestarts : p.obs.settings.auxStageRetries;
}

/** The attempt failed or was disrupted: record it, then fail the stage (and the job) or start the next attempt. */
export function attemptEnded(
  p: Planner,
  desired: DesiredObjects,
  spec: FineTuneJobSpec,
  stage: Stage,
  ss: StageStatus,
  failure: AttemptFailure,
  current: V1Job,
  pods: readonly V1Pod[],
): void {
  const st = p.status;
  const record = p.findRecord(stage, ss.attempt) ?? p.addRecord({ stage, attempt: ss.attempt, result: "Running" });
  const counted = failure.kind === "Failed";
  closeAttempt(p, record, { result: failure.kind, reason: failure.reason, message: failure.message, counted }, pods);
  if (counted) ss.retries += 1;
  else if (stage === "train") st.disruptions = (st.disruptions ?? 0) + 1;
  st.lastFailure = {
    stage,
    attempt: ss.attempt,
    reason: failure.reason,
    message: failure.message,
    ...(failure.hint ? { hint: failure.hint } : {}),
    ...(failure.exitCode !== undefined ? { exitCode: failure.exitCode } : {}),
    ...(failure.pod ? { pod: failure.pod } : {}),
    ...(failure.node ? { node: failure.node } : {}),
    time: p.now,
    permanent: failure.permanent,
  };
  const limit = retryLimit(p, stage, spec);
  const hint = failure.hint ? `. Hint: ${failure.hint}` : "";
  if (counted && (failure.permanent || ss.retries > limit)) {
    ss.phase = "Failed";
    ss.completionTime = p.now;
    const why = failure.permanent ? "a retry cannot fix this" : `retry limit reached (${limit})`;
    failJob(p, failure.permanent ? Reason.PermanentFailure : Reason.BackoffLimitExceeded, `${stage} failed (${why}): ${failure.message}${hint}`);
    p.condition({ type: STAGE_CONDITION[stage], status: "False", reason: Reason.StageFailed, message: failure.message });
    // Failed pods stay for `kubectl logs`; anything still running is stopped.
    if ((current.status?.active ?? 0) > 0 || !jobCondition(current, "Failed")) p.deleteJob(current, "job failed");
    return;
  }
  const what = counted ? `failed (${failure.reason}; restart ${ss.retries} of ${limit})` : `was disrupted (not counted)`;
  p.event("Warning", counted ? STAGE_FAILED_REASON[stage] : Reason.Disrupted, `${stage} attempt ${ss.attempt} ${what}: ${failure.message}${hint}`);
  ss.phase = "Pending";
  startNextAttempt(p, desired, stage, ss, record, current);
}

/**
 * Tears the ended attempt down, waits until its Job and pods are gone and for the backoff, then starts the next one.
 *
 * The Job is deleted in the foreground, so the API server keeps it until the garbage collector has removed its pods:
 * the Job still in the cache is the proof that a rank may still run. The pod cache alone is not: it is fed by its own
 * watch, which can lag behind the Job watch (after a reconnect, by seconds), and a pod it has not seen yet looks
 * like no pod at all.
 */
export function startNextAttempt(p: Planner, desired: DesiredObjects, stage: Stage, ss: StageStatus, record: AttemptRecord, current: V1Job | undefined): void {
  const phase = STAGE_PHASE[stage];
  if (current && !current.metadata?.deletionTimestamp) p.deleteJob(current, `attempt ${ss.attempt} ended (${record.result})`);
  // A rank still shutting down may be writing a checkpoint: never let two attempts share the output directory.
  const jobs = p.jobsOf(stage).filter((job) => attemptOf(job) <= ss.attempt);
  const lingering = runningPodsUpTo(p, stage, ss.attempt);
  if (jobs.length > 0 || lingering.length > 0) {
    p.conclude(phase, `waiting for ${stage} attempt ${ss.attempt} to be torn down (${teardownLeft(jobs, lingering)}) before the next attempt`);
    ss.phase = "Pending";
    return;
  }
  if (record.result === "Failed") {
    const delay = Math.min(p.obs.settings.restartBackoffBaseMs * 2 ** Math.max(0, ss.retries - 1), p.obs.settings.restartBackoffMaxMs);
    const startAt = new Date(record.endTime ?? p.now).getTime() + delay;
    if (p.nowMs < startAt) {
      p.conclude(phase, `${stage} attempt ${ss.attempt + 1} starts after backoff at ${new Date(startAt).toISOString()}`);
      p.requeue(startAt - p.nowMs);
      return;
    }
  }
  ss.attempt += 1;
  ss.jobName = stageJobName(p.obs.ftj.metadata.name ?? "", stage, ss.attempt);
  p.addRecord({ stage, attempt: ss.attempt, startTime: p.now, result: "Running" });
  p.event("Normal", Reason.Restarting, `starting ${stage} attempt ${ss.attempt}${stage === "train" ? "; it resumes from the newest complete checkpoint" : ""}`);
  createStageJob(p, stage, ss, desired.stageJob(stage, ss.attempt));
}

/** Pods of the stage's attempts up to `attempt` that have not exited (a rank may still be writing a checkpoint). */
export function runningPodsUpTo(p: Planner, stage: Stage, attempt: number): V1Pod[] {
  return p.podsOf(stage).filter((pod) => attemptOf(pod) <= attempt && !isTerminal(pod));
}

/** What of an ended attempt is still there, in words: "Job being deleted, 1 pod running". */
export function teardownLeft(jobs: readonly V1Job[], pods: readonly V1Pod[]): string {
  const parts = [];
  if (jobs.length > 0) parts.push(jobs.length === 1 ? "Job being deleted" : `${jobs.length} Jobs being deleted`);
  if (pods.length > 0) parts.push(`${pods.length} pod${pods.length === 1 ? "" : "s"} running`);
  return parts.join(", ");
}
