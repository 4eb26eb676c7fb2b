/** Suspend policy: spec.suspend stops the running stage's pods and keeps all data; unsuspending starts a new attempt. */
import { STAGES } from "../../api/group.ts";
import { isTrue } from "../conditions.ts";
import { Reason } from "../reasons.ts";
import { attemptOf, type Planner } from "./context.ts";
import { closeAttempt } from "./attempts.ts";

/** Stops the running stage's pods (the attempt ends as Suspended, not counted) and keeps all data. */
export function suspend(p: Planner): void {
  const st = p.status;
  for (const stage of STAGES) {
    const ss = st.stages?.[stage];
    if (!ss || ss.phase === "Succeeded" || ss.phase === "Failed") continue;
    const current = p.jobsOf(stage).find((j) => attemptOf(j) === ss.attempt);
    const record = p.findRecord(stage, ss.attempt);
    if (record) closeAttempt(p, record, { result: "Suspended", counted: false });
    ss.phase = "Pending";
    if (current && !current.metadata?.deletionTimestamp) p.deleteJob(current, "suspended");
  }
  if (!isTrue(st.conditions, "Suspended")) {
    p.condition({ type: "Suspended", status: "True", reason: Reason.Suspended, message: "spec.suspend is true: pods stopped, data kept" });
  }
  p.conclude("Suspended", "suspended: pods stopped, output data kept; set spec.suspend=false to continue");
}

/** The job runs again after a suspension: the interrupted stage starts a new attempt (stage progression sees its closed record). */
export function resumeIfSuspended(p: Planner): void {
  if (isTrue(p.status.conditions, "Suspended")) {
    p.condition({ type: "Suspended", status: "False", reason: Reason.Resumed, message: "resumed; the interrupted stage starts a new attempt" });
  }
}
