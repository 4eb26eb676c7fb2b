/**
 * Stage progression: the base objects first, then each enabled stage in order (preprocess, train, smoke test,
 * merge), one attempt at a time, each stage's Job watched until it completes or its attempt ends.
 */
import type { V1Job } from "@kubernetes/client-node";
import type { Stage } from "../../api/group.ts";
import type { FineTuneJobSpec, StageStatus } from "../../api/schema.ts";
import type { RenderInput } from "../../render/children.ts";
import { stageEnabled, type BaseChild, type DesiredObjects } from "../../render/desired.ts";
import { stageJobName } from "../../render/names.ts";
import { getCondition } from "../conditions.ts";
import { classifyFailure, stuckPods, type AttemptFailure, type MissingPodReference } from "../failures.ts";
import { Reason } from "../reasons.ts";
import { specHash } from "../spec-hash.ts";
import { attemptEnded, closeAttempt, noteResumePoint, runningPodsUpTo, startNextAttempt, teardownLeft } from "./attempts.ts";
import { STAGE_CONDITION, STAGE_PHASE, attemptOf, jobCondition, type Planner } from "./context.ts";
import { smokeTestPassed } from "./health.ts";
import { reportPodCreation, reportPodReferences, reportScheduling } from "./pods.ts";
import { createStageJob, stageCondition, stageJobMessage } from "./stage-job.ts";

/**
 * Creates the missing base objects; true when all of them are observed. Never waits for the claim to bind
 * (WaitForFirstConsumer classes bind only once a pod uses it).
 */
export function ensureBaseObjects(p: Planner, desired: DesiredObjects): boolean {
  const c = p.obs.children;
  // A stage Job in the cache proves they existed (they are created before it); a later deletion must not stall the run.
  const started = c.jobs.length > 0;
  const observed: Record<BaseChild, boolean> = { claim: c.claim !== undefined || started, configMap: c.configMap, launcher: c.launcher, service: c.service };
  let created = 0;
  for (const { child, render } of desired.base) {
    if (observed[child]) continue;
    const object = render();
    if (!object) continue;
    p.create(object);
    created += 1;
  }
  return started || created === 0;
}

/** Stages that do not run say so once in their condition: Disabled by the spec, or NotApplicable to this config. */
export function markSkippedStages(p: Planner, spec: FineTuneJobSpec, config: Record<string, unknown>): void {
  const st = p.status;
  if (!stageEnabled("preprocess", spec, config) && !getCondition(st.conditions, "Preprocessed")) {
    p.condition({ type: "Preprocessed", status: "True", reason: Reason.Disabled, message: "spec.preprocess.enabled is false" });
  }
  if (!stageEnabled("smoke", spec, config) && !getCondition(st.conditions, "SmokeTested")) {
    const off = spec.smokeTest.enabled === false;
    p.condition({
      type: "SmokeTested",
      status: "False",
      reason: off ? Reason.Disabled : Reason.NotApplicable,
      message: off ? "spec.smokeTest.enabled is false" : "no LoRA/QLoRA adapter is trained, nothing to smoke-test",
    });
  }
  if (!stageEnabled("merge", spec, config) && !getCondition(st.conditions, "Merged")) {
    const off = spec.merge.enabled === false;
    p.condition({
      type: "Merged",
      status: "False",
      reason: off ? Reason.Disabled : Reason.NotApplicable,
      message: off ? "spec.merge.enabled is false" : "no LoRA/QLoRA adapter is trained, nothing to merge",
    });
  }
}

/** Runs `stage` (the first one not yet succeeded) and, when its Job completed, the stages after it in the same pass. */
export function runStage(p: Planner, input: RenderInput, desired: DesiredObjects, stage: Stage, ss: StageStatus): void {
  const st = p.status;
  const name = input.job.name;
  const jobs = p.jobsOf(stage);
  const current = jobs.find((j) => j.metadata?.name === stageJobName(name, stage, ss.attempt));
  // Leftovers of earlier attempts (e.g. the operator died mid-teardown) go first, and entirely: their Job is deleted in
  // the foreground and stays until its pods are gone, so while it is cached a rank of theirs may still run.
  const leftovers = jobs.filter((job) => attemptOf(job) < ss.attempt);
  for (const old of leftovers) {
    if (!old.metadata?.deletionTimestamp) p.deleteJob(old, "superseded by a newer attempt");
  }
  const record = p.findRecord(stage, ss.attempt);
  if (record?.endTime) {
    startNextAttempt(p, desired, stage, ss, record, current);
    return;
  }
  if (!current && leftovers.length > 0) {
    const lingering = runningPodsUpTo(p, stage, ss.attempt - 1);
    p.conclude(
      STAGE_PHASE[stage],
      `waiting for earlier ${stage} attempts to be torn down (${teardownLeft(leftovers, lingering)}) before attempt ${ss.attempt}`,
    );
    ss.phase = "Pending";
    return;
  }
  if (!current) {
    if (!record) p.addRecord({ stage, attempt: ss.attempt, startTime: p.now, result: "Running" });
    ss.jobName = stageJobName(name, stage, ss.attempt);
    ss.startTime ??= p.now;
    st.startTime ??= p.now;
    st.specHash ??= specHash(input.spec);
    st.startedWith ??= { image: input.spec.image, nodes: input.spec.nodes, gpusPerNode: input.spec.gpusPerNode };
    createStageJob(p, stage, ss, desired.stageJob(stage, ss.attempt));
    return;
  }
  // A Job whose pods have all exited but that has no Complete/Failed condition yet is finishing: its counts drop to
  // 0 for the moment before the condition. Mirroring that would be one status write per stage about nothing. A Job
  // suspended while running (Kueue preempting its workload) is not finishing: its pods are gone, and status says so.
  const finishing =
    ss.phase === "Running" &&
    !current.spec?.suspend &&
    (current.status?.active ?? 0) === 0 &&
    !jobCondition(current, "Complete") &&
    !jobCondition(current, "Failed", "FailureTarget");
  if (!finishing) copyCounts(ss, current);
  if (jobCondition(current, "Complete")) {
    stageSucceeded(p, stage, ss, current);
    if (stage === "smoke" && !smokeTestPassed(p, input, p.podsOf(stage, ss.attempt))) return;
    const next = desired.stages[desired.stages.indexOf(stage) + 1];
    if (next) runStage(p, input, desired, next, p.stage(next));
    else succeed(p, desired.stages);
    return;
  }
  const pods = p.podsOf(stage, ss.attempt);
  let failure: AttemptFailure | undefined;
  let missing: MissingPodReference | undefined;
  if (jobCondition(current, "Failed", "FailureTarget")) {
    failure = classifyFailure(stage, current, pods, input.spec.permanentExitCodes ?? []);
  } else {
    const stuck = stuckPods(pods, p.nowMs, p.obs.settings.imagePullGraceMs);
    if (stuck.recheckAt !== undefined) p.requeue(stuck.recheckAt - p.nowMs);
    failure = stuck.failure;
    missing = stuck.missing;
  }
  if (failure) {
    attemptEnded(p, desired, input.spec, stage, ss, failure, current, pods);
    return;
  }
  // A Job whose pods have run is Running until its Complete/Failed condition: between a pod's exit and that condition
  // the Job shows no active pod (and may not have counted the exit yet), which is not a return to Pending.
  const started = ss.phase === "Running" || (current.status?.active ?? 0) + (current.status?.succeeded ?? 0) + (current.status?.failed ?? 0) > 0;
  ss.phase = current.spec?.suspend ? "Pending" : started ? "Running" : "Pending";
  p.conclude(STAGE_PHASE[stage], stageJobMessage(stage, ss, current));
  if (record) noteResumePoint(record, pods);
  reportScheduling(p, stage, ss, pods);
  reportPodCreation(p, stage, ss, current, pods);
  reportPodReferences(p, missing);
  stageCondition(p, stage, ss);
}

/**
 * Mirrors the Job's active and ready pods (what `kubectl finetune status` shows). Not its succeeded/failed counts:
 * they change on the way to the Job's own Complete/Failed condition, which is what the planner acts on, and each
 * mirrored change would be one more status write.
 */
function copyCounts(ss: StageStatus, job: V1Job): void {
  ss.jobName = job.metadata?.name;
  ss.active = job.status?.active ?? 0;
  ss.ready = job.status?.ready ?? 0;
}

function stageSucceeded(p: Planner, stage: Stage, ss: StageStatus, job: V1Job): void {
  ss.phase = "Succeeded";
  ss.completionTime ??= p.now;
  const record = p.findRecord(stage, ss.attempt);
  if (record) closeAttempt(p, record, { result: "Succeeded" }, p.podsOf(stage, ss.attempt));
  p.condition({ type: STAGE_CONDITION[stage], status: "True", reason: Reason.Completed, message: `${stage} Job ${job.metadata?.name} completed` });
}

export function succeed(p: Planner, stages: readonly Stage[]): void {
  const st = p.status;
  st.completionTime ??= p.now;
  const merged = stages.includes("merge");
  const message = merged
    ? `merged model at ${st.outputs?.mergedModelPath} on claim ${st.outputs?.claimName}`
    : `adapter/model at ${st.outputs?.adapterPath} on claim ${st.outputs?.claimName}`;
  if (!merged && st.outputs) delete st.outputs.mergedModelPath;
  p.conclude("Succeeded", message);
  p.condition({ type: "Succeeded", status: "True", reason: Reason.Succeeded, message });
}
