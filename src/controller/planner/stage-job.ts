/** An attempt's Job, and how status speaks of a stage while its Job runs. */
import type { V1Job } from "@kubernetes/client-node";
import type { Stage } from "../../api/group.ts";
import type { StageStatus } from "../../api/schema.ts";
import type { Rendered } from "../../render/children.ts";
import { Reason } from "../reasons.ts";
import { STAGE_CONDITION, STAGE_PHASE, type Planner } from "./context.ts";

/** The stage's status message while its Job exists: queued (suspended, e.g. by Kueue), or how many pods are ready. */
export function stageJobMessage(stage: Stage, ss: StageStatus, job: V1Job): string {
  return job.spec?.suspend
    ? `${stage} Job ${job.metadata?.name} is queued (suspended until admitted, e.g. by Kueue)`
    : `${stage} attempt ${ss.attempt}: ${ss.ready ?? 0}/${job.spec?.parallelism ?? 1} pod(s) ready (Job ${job.metadata?.name})`;
}

export function stageCondition(p: Planner, stage: Stage, ss: StageStatus): void {
  p.condition({
    type: STAGE_CONDITION[stage],
    status: "False",
    reason: ss.phase === "Running" ? Reason.Running : Reason.Pending,
    message: `${stage} attempt ${ss.attempt}: ${ss.phase.toLowerCase()}`,
  });
}

/**
 * Creates an attempt's Job and says in status what the next pass will say once the cache shows the Job without
 * pods (no pod ready or queued, the stage pending): that pass then changes nothing, instead of costing one more status write
 * per stage (the merge Job's pod is often created after the Job is first seen).
 */
export function createStageJob(p: Planner, stage: Stage, ss: StageStatus, job: Rendered<V1Job>): void {
  ss.phase = "Pending";
  ss.active = 0;
  ss.ready = 0;
  p.conclude(STAGE_PHASE[stage], stageJobMessage(stage, ss, job));
  stageCondition(p, stage, ss);
  p.create(job);
}
