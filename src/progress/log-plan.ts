/**
 * Decisions of the log-tail progress fallback, pure so they are tested
 * without a cluster: which FineTuneJobs to read, which pod is rank 0, and
 * whether what the log says is worth a status write. The poller
 * (log-poller.ts) only does the I/O around these.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_ATTEMPT, LABEL_STAGE } from "../api/group.ts";
import { MAX_CHECKPOINTS, type Checkpoint, type FineTuneJobObject, type FineTuneJobStatus, type Progress } from "../api/schema.ts";
import type { LogProgress } from "./log-parse.ts";
import { addLoss } from "./loss.ts";
import { summarize } from "./report.ts";

const COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index";

/**
 * A job is read when it is training and has no fresh pushed progress: none
 * yet, progress from the log already, or a push report older than
 * `pushStaleMs` (the trainer lost its way to the operator mid-run). Push wins
 * whenever it is fresh: it sees every line and verifies checkpoints on disk.
 */
export function needsLogProgress(job: FineTuneJobObject, nowMs: number, pushStaleMs: number): boolean {
  if (job.metadata.deletionTimestamp || job.status?.phase !== "Training") return false;
  const p = job.status.progress;
  if (!p || p.source !== "push") return true;
  const at = Date.parse(p.updatedAt ?? "");
  return !Number.isFinite(at) || nowMs - at > pushStaleMs;
}

/**
 * The pod whose log shows training progress: completion index 0 of the
 * current training attempt. The render pins global rank 0 to that pod
 * (static rendezvous, children.ts), and only rank 0 prints the training bar
 * and metric dicts. Only a running, scheduled pod has a log worth reading.
 */
export function rankZeroPod(job: FineTuneJobObject, pods: V1Pod[]): V1Pod | undefined {
  const attempt = job.status?.stages?.train?.attempt;
  return pods.find((pod) => {
    const labels = pod.metadata?.labels ?? {};
    const index = pod.metadata?.annotations?.[COMPLETION_INDEX] ?? labels[COMPLETION_INDEX];
    return (
      labels[LABEL_STAGE] === "train" &&
      (attempt === undefined || labels[LABEL_ATTEMPT] === String(attempt)) &&
      index === "0" &&
      pod.status?.phase === "Running" &&
      !pod.metadata?.deletionTimestamp &&
      !!pod.spec?.nodeName
    );
  });
}

export interface PatchOptions {
  /**
   * Whether a lower step than status shows may be written: yes when the log
   * is another pod's than the last one written from (a restarted attempt
   * resumes from an earlier checkpoint), no for the same pod (a cut-off tail
   * shows older lines, the run did not go back).
   */
  allowStepBack: boolean;
}

/**
 * The merge patch of status for what the log shows, or undefined when it
 * adds nothing: a log that did not move costs no write. The shape is that of
 * the push path (server.ts flush): progress (merged key by key), checkpoints,
 * latestCheckpoint. Fields the tail does not show keep their last value.
 */
export function logProgressPatch(
  status: FineTuneJobStatus | undefined,
  parsed: LogProgress,
  now: Date,
  opts: PatchOptions,
): Record<string, unknown> | undefined {
  const current: Progress = status?.progress ?? {};
  if (!opts.allowStepBack && parsed.step !== undefined && current.step !== undefined && parsed.step < current.step) return undefined;
  const checkpoints = mergeCheckpoints(status?.checkpoints ?? [], parsed.checkpoints);
  const checkpointsChanged = !sameCheckpoints(checkpoints, status?.checkpoints ?? []);
  const lossHistory = addLoss(status?.lossHistory, parsed.losses);
  const lossChanged = lossHistory !== status?.lossHistory;
  const moved = (["step", "totalSteps", "loss", "evalLoss"] as const).some((k) => parsed[k] !== undefined && parsed[k] !== current[k]);
  if (!moved && !checkpointsChanged && !lossChanged) return undefined;

  const progress: Progress = { updatedAt: now.toISOString(), source: "logs" };
  for (const k of ["step", "totalSteps", "epoch", "loss", "evalLoss", "learningRate", "gradNorm", "tokensPerSecond", "etaSeconds"] as const) {
    if (parsed[k] !== undefined) progress[k] = parsed[k];
  }
  Object.assign(progress, summarize(parsed.step ?? current.step, parsed.totalSteps ?? current.totalSteps));
  const latest = checkpoints[checkpoints.length - 1];
  return {
    progress,
    ...(checkpointsChanged ? { checkpoints } : {}),
    ...(checkpointsChanged && latest ? { latestCheckpoint: latest } : {}),
    ...(lossChanged && lossHistory ? { lossHistory } : {}),
  };
}

/**
 * Checkpoints already in status plus those in the tail: a tail forgets older
 * saves that scrolled out of it, and those checkpoints are still on disk.
 */
export function mergeCheckpoints(known: Checkpoint[], seen: Checkpoint[]): Checkpoint[] {
  const byStep = new Map<number, Checkpoint>();
  for (const c of [...known, ...seen]) byStep.set(c.step, { step: c.step, path: c.path });
  return [...byStep.values()].sort((a, b) => a.step - b.step).slice(-MAX_CHECKPOINTS);
}

/** By value: objects read back from the API server have their keys in another order than ours. */
function sameCheckpoints(a: Checkpoint[], b: Checkpoint[]): boolean {
  return a.length === b.length && a.every((c, i) => c.step === b[i]!.step && c.path === b[i]!.path);
}

/**
 * How many lines to ask for next time. The kubelet applies limitBytes after
 * tailLines and keeps the oldest bytes, so a tail that hit the byte limit has
 * lost its newest lines: ask for fewer. Grow back when there is room.
 */
export function nextTailLines(current: number, receivedBytes: number, limitBytes: number, maxLines: number): number {
  if (receivedBytes >= limitBytes) return Math.max(16, Math.floor(current / 2));
  if (receivedBytes < limitBytes / 4) return Math.min(maxLines, current * 2);
  return current;
}
