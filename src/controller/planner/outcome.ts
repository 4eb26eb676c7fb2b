/** The job's end: Failed (any policy may end it) and the counters status shows, derived from the train stage. */
import type { FineTuneJobStatus } from "../../api/schema.ts";
import type { Reason } from "../reasons.ts";
import type { Planner } from "./context.ts";

export function failJob(p: Planner, reason: Reason, message: string): void {
  p.status.completionTime ??= p.now;
  p.conclude("Failed", message);
  p.condition({ type: "Failed", status: "True", reason, message });
  p.condition({ type: "Succeeded", status: "False", reason, message });
}

/**
 * status.attempt and status.restarts mirror the train stage. A counted failure that ended the job caused no
 * restart, so it is not one.
 */
export function trainCounters(st: FineTuneJobStatus): { attempt: number; restarts: number } | undefined {
  const train = st.stages?.train;
  if (!train) return undefined;
  const last = st.attempts?.find((a) => a.stage === "train" && a.attempt === train.attempt);
  const endedByLastFailure = train.phase === "Failed" && last?.result === "Failed" && last.counted === true;
  return { attempt: train.attempt, restarts: endedByLastFailure ? Math.max(0, train.retries - 1) : train.retries };
}
