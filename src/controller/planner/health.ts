/**
 * Health of what a run produced: the training loss (LossHealthy, lossGuard) and the smoke test's answers
 * (SmokeTested, smokeTest.action). Either may end the job under action Fail.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { FineTuneJobSpec } from "../../api/schema.ts";
import { smokeAnswersPath, type RenderInput } from "../../render/children.ts";
import { smokeAnswersConfigMapName } from "../../render/names.ts";
import { getCondition } from "../conditions.ts";
import { parseTerminationMessage } from "../failures.ts";
import { assessLoss } from "../loss-health.ts";
import { Reason } from "../reasons.ts";
import { assessSmokeTest } from "../smoke-test.ts";
import { closeAttempt } from "./attempts.ts";
import { isFinishedJob, type Planner } from "./context.ts";
import { failJob } from "./outcome.ts";

/**
 * LossHealthy from status.lossHistory (written by the progress paths). The
 * condition message of a healthy loss does not quote values, so new progress
 * alone never makes the reconciler write status. True when the run must stop
 * (a non-finite loss under lossGuard.action Fail).
 */
export function lossHealth(p: Planner, spec: FineTuneJobSpec): boolean {
  const st = p.status;
  const verdict = assessLoss(st.lossHistory, spec.lossGuard);
  if (!verdict) return false;
  const prev = getCondition(st.conditions, "LossHealthy");
  const status = verdict.healthy ? "True" : "False";
  p.condition({ type: "LossHealthy", status, reason: verdict.reason, message: verdict.message });
  if (prev?.status !== status || prev.reason !== verdict.reason) {
    if (!verdict.healthy) p.event("Warning", verdict.reason, verdict.message);
    else if (prev) p.event("Normal", verdict.reason, "the training loss looks healthy again");
  }
  if (!verdict.nonFinite || spec.lossGuard.action !== "Fail") return false;
  stopForLoss(p, verdict.message);
  return true;
}

/**
 * Fails the job and stops whatever stage runs. Deleting the training Job sends SIGTERM: the launcher asks Axolotl to
 * save a checkpoint first (dynamic_checkpoint), and nothing on the claim is deleted, so the checkpoints stay.
 */
function stopForLoss(p: Planner, why: string): void {
  const st = p.status;
  for (const job of p.obs.children.jobs) {
    if (!isFinishedJob(job) && !job.metadata?.deletionTimestamp) p.deleteJob(job, "spec.lossGuard.action is Fail and the loss is not finite");
  }
  const ss = st.stages?.train;
  const message = `training stopped by spec.lossGuard (action Fail): ${why}`;
  if (ss && ss.phase !== "Succeeded") {
    ss.phase = "Failed";
    ss.completionTime ??= p.now;
    const record = p.findRecord("train", ss.attempt);
    if (record) closeAttempt(p, record, { result: "Failed", reason: Reason.LossNotFinite, counted: false });
    p.condition({ type: "Trained", status: "False", reason: Reason.LossNotFinite, message });
  }
  st.lastFailure = { stage: "train", ...(ss ? { attempt: ss.attempt } : {}), reason: Reason.LossNotFinite, message, time: p.now, permanent: true };
  failJob(p, Reason.LossNotFinite, message);
}

/**
 * Records what the smoke test answered (from the launcher's termination message) and its checks. False when the
 * checks failed under smokeTest.action Fail: the job fails and nothing is merged. Under Warn the run goes on to the
 * merge with SmokeTested=False and a Warning Event.
 */
export function smokeTestPassed(p: Planner, input: RenderInput, pods: readonly V1Pod[]): boolean {
  const st = p.status;
  if (st.smokeTest) return st.smokeTest.result !== "Failed";
  const summaries = pods.map((pod) => parseTerminationMessage(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).summary);
  const verdict = assessSmokeTest(summaries.find((s) => s?.smoke)?.smoke, input.spec.smokeTest.action);
  st.smokeTest = {
    ...verdict.status,
    answersFile: smokeAnswersPath(input),
    ...(verdict.status.answers.length > 0 ? { answersConfigMap: smokeAnswersConfigMapName(input.job.name) } : {}),
  };
  if (verdict.status.result === "Passed") return true;
  const message = `${verdict.status.message}${verdict.status.hint ? `. Hint: ${verdict.status.hint}` : ""}`;
  p.condition({ type: "SmokeTested", status: "False", reason: verdict.reason, message });
  p.event("Warning", verdict.reason, message);
  if (verdict.status.result !== "Failed") return true;
  const ss = p.stage("smoke");
  ss.phase = "Failed";
  st.lastFailure = {
    stage: "smoke",
    attempt: ss.attempt,
    reason: verdict.reason,
    message: verdict.status.message,
    ...(verdict.status.hint ? { hint: verdict.status.hint } : {}),
    time: p.now,
    permanent: true,
  };
  failJob(p, verdict.reason, `smoke test failed (spec.smokeTest.action is Fail), nothing merged: ${message}`);
  return false;
}
