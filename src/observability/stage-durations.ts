/**
 * Stage durations for finetune_stage_duration_seconds, derived from a status
 * transition: a stage that was not Succeeded before the write and is after it
 * finished now. Pure; called after a status write succeeded, so a transition is
 * observed once per leader (a crash between write and record loses one sample,
 * which a histogram can afford).
 */
import { STAGES } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";

type Status = FineTuneJobObject["status"];

export function finishedStages(before: Status, after: Status): Array<{ stage: string; seconds: number }> {
  const out: Array<{ stage: string; seconds: number }> = [];
  for (const stage of STAGES) {
    const was = before?.stages?.[stage];
    const now = after?.stages?.[stage];
    if (now?.phase !== "Succeeded" || was?.phase === "Succeeded" || !now.startTime || !now.completionTime) continue;
    const seconds = (Date.parse(now.completionTime) - Date.parse(now.startTime)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) out.push({ stage, seconds });
  }
  return out;
}
