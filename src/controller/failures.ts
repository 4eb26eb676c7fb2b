/**
 * Classifies how an attempt ended, from the Job and its pods as observed:
 * a disruption (preemption, eviction, drain, node loss: not the job's fault,
 * not counted), a failure worth retrying, or a permanent failure.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { z } from "zod";
import type { Stage } from "../api/group.ts";
import { TRAINER_CONTAINER } from "../render/names.ts";
import { matchFailure } from "./hints.ts";
import { Reason, type FailureReason } from "./reasons.ts";

export interface AttemptFailure {
  kind: "Disrupted" | "Failed";
  permanent: boolean;
  reason: FailureReason;
  message: string;
  hint?: string;
  exitCode?: number;
  pod?: string;
  node?: string;
}

/**
 * The JSON summary the launcher (src/trainer/launcher/) writes as the container's termination message. Anything in a pod can
 * write that file, so every field is checked: a wrong type drops the field (it must never reach status, where the
 * CRD schema would refuse the whole write and stall the job).
 */
const optional = <T extends z.ZodType>(schema: T) => schema.optional().catch(undefined);
const LauncherSummarySchema = z.object({
  stage: optional(z.string().max(32)),
  attempt: optional(z.number().int()),
  nodeRank: optional(z.number().int()),
  exitCode: optional(z.number().int()),
  childExitCode: optional(z.number().int().nullable()),
  signal: optional(z.string().max(32).nullable()),
  /** How a torchrun worker ended, from torchrun's own report (it exits 1 even when a worker was SIGKILLed). */
  workerSignal: optional(z.string().max(32).nullable()),
  workerExitCode: optional(z.number().int().nullable()),
  reason: optional(z.string().max(64)),
  message: optional(z.string().max(4096)),
  finalModel: optional(z.boolean().nullable()),
  resumeFrom: optional(z.string().max(4096).nullable()),
  resumeStep: optional(z.number().int().nonnegative().nullable()),
  tail: optional(z.array(z.string()).max(200)),
  /** The smoke-test stage's answers (smoke.py run_smoke): prompts and answers truncated by the launcher. */
  smoke: optional(
    z.object({
      answers: z
        .array(
          z.object({
            prompt: z.string().max(4096),
            answer: z.string().max(4096),
            stopped: z.boolean().nullable().optional(),
            chars: z.number().int().nonnegative().optional(),
          }),
        )
        .max(8),
      file: z.string().max(1024).nullable().optional(),
    }),
  ),
});
export type LauncherSummary = z.output<typeof LauncherSummarySchema>;

export function parseTerminationMessage(message: string | undefined): { summary?: LauncherSummary; text: string } {
  if (!message) return { text: "" };
  try {
    const parsed = JSON.parse(message) as unknown;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const summary = Object.fromEntries(Object.entries(LauncherSummarySchema.parse(parsed)).filter(([, v]) => v !== undefined)) as LauncherSummary;
      return { summary, text: summary.tail ? summary.tail.join("\n") : "" };
    }
  } catch {
    // Not the launcher's JSON: FallbackToLogsOnError put the raw log tail here.
  }
  return { text: message };
}

const DISRUPTION_POD_REASONS = new Set([
  "Evicted",
  "Preempting",
  "Preempted",
  "Terminated",
  "NodeLost",
  "NodeShutdown",
  "Shutdown",
  "UnexpectedAdmissionError",
  "DeletionByPodGC",
  "DeletionByTaintManager",
]);

export function isDisrupted(pod: V1Pod): boolean {
  if (pod.status?.conditions?.some((c) => c.type === "DisruptionTarget" && c.status === "True")) return true;
  return DISRUPTION_POD_REASONS.has(pod.status?.reason ?? "");
}

function terminated(pod: V1Pod) {
  return pod.status?.containerStatuses?.find((c) => c.name === TRAINER_CONTAINER)?.state?.terminated ?? pod.status?.containerStatuses?.[0]?.state?.terminated;
}

function finishedAt(pod: V1Pod): number {
  const t = terminated(pod)?.finishedAt;
  return t ? new Date(t).getTime() : Number.MAX_SAFE_INTEGER;
}

function jobFailedCondition(job: V1Job | undefined) {
  return job?.status?.conditions?.find((c) => (c.type === "Failed" || c.type === "FailureTarget") && c.status === "True");
}

export function classifyFailure(stage: Stage, job: V1Job | undefined, pods: readonly V1Pod[], permanentExitCodes: readonly number[] = []): AttemptFailure {
  const condition = jobFailedCondition(job);
  const disruptedPod = pods.find(isDisrupted);
  if (disruptedPod || (condition?.reason === "PodFailurePolicy" && /DisruptionTarget/.test(condition.message ?? ""))) {
    return {
      kind: "Disrupted",
      permanent: false,
      reason: Reason.Disrupted,
      message: disruptedPod
        ? `pod ${disruptedPod.metadata?.name} was disrupted (${disruptedPod.status?.reason ?? "DisruptionTarget"}): ${disruptedPod.status?.message ?? condition?.message ?? "preempted, evicted or its node was lost"}`
        : (condition?.message ?? "a pod was disrupted"),
      ...(disruptedPod?.metadata?.name ? { pod: disruptedPod.metadata.name } : {}),
      ...(disruptedPod?.spec?.nodeName ? { node: disruptedPod.spec.nodeName } : {}),
    };
  }
  // The first rank to fail is the cause; the others usually fail after it (NCCL errors).
  const failed = pods.filter((p) => p.status?.phase === "Failed").sort((a, b) => finishedAt(a) - finishedAt(b));
  const first = failed[0];
  if (!first) {
    return {
      kind: "Failed",
      permanent: false,
      reason: condition?.reason ?? Reason.JobFailed,
      message: condition?.message ?? "the Job failed and its pods are gone",
    };
  }
  const term = terminated(first);
  const exitCode = term?.exitCode;
  const { summary, text } = parseTerminationMessage(term?.message);
  const signature = matchFailure({
    stage,
    ...(exitCode !== undefined ? { exitCode } : {}),
    ...(term?.reason ? { containerReason: term.reason } : {}),
    ...(summary?.workerSignal ? { workerSignal: summary.workerSignal } : {}),
    text,
  });
  const userPermanent = exitCode !== undefined && permanentExitCodes.includes(exitCode);
  const lastLine = lastMeaningfulLine(summary?.tail ?? text.split("\n"));
  const where = `pod ${first.metadata?.name}${first.spec?.nodeName ? ` on ${first.spec.nodeName}` : ""}`;
  return {
    kind: "Failed",
    permanent: userPermanent || (signature?.permanent ?? false),
    reason: signature?.reason ?? (term?.reason === "OOMKilled" ? Reason.OOMKilled : userPermanent ? Reason.PermanentExitCode : Reason.TrainerError),
    message: `${where} exited with code ${exitCode ?? "unknown"}${term?.reason ? ` (${term.reason})` : ""}${lastLine ? `: ${lastLine}` : ""}`,
    ...(signature?.hint ? { hint: signature.hint } : userPermanent ? { hint: `exit code ${exitCode} is listed in spec.permanentExitCodes` } : {}),
    ...(exitCode !== undefined ? { exitCode } : {}),
    ...(first.metadata?.name ? { pod: first.metadata.name } : {}),
    ...(first.spec?.nodeName ? { node: first.spec.nodeName } : {}),
  };
}

function lastMeaningfulLine(lines: readonly string[]): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (line && !/^[-=~^ ]+$/.test(line)) return line.length > 300 ? `${line.slice(0, 300)}...` : line;
  }
  return undefined;
}

const PULL_FAILURES = new Set(["ErrImagePull", "ImagePullBackOff"]);
const IMMEDIATE_FAILURES = new Set(["InvalidImageName", "ErrImageNeverPull"]);
const CONFIG_FAILURES = new Set(["CreateContainerConfigError", "CreateContainerError"]);

/** A Secret or ConfigMap a pod needs that does not exist (yet): the kubelet starts the pod once it does. */
export interface MissingPodReference {
  kind: "Secret" | "ConfigMap";
  name: string;
  pod: string;
}

/** The kubelet's CreateContainerConfigError message for an object that does not exist, e.g. `secret "hf-token" not found`. */
const MISSING_OBJECT = /^(secret|configmap) "([^"]+)" not found$/i;

/**
 * A running attempt whose pods cannot start: an image that cannot be pulled
 * (after a grace period, since registries flap) or a broken container config.
 * A Secret/ConfigMap that does not exist yet is not a failure but `missing`: GitOps applies objects in any order
 * and the kubelet retries. Returns undefined while it may still recover; otherwise the time at which to look again.
 */
export function stuckPods(
  pods: readonly V1Pod[],
  now: number,
  graceMs: number,
): { failure?: AttemptFailure; recheckAt?: number; missing?: MissingPodReference } {
  let recheckAt: number | undefined;
  let missing: MissingPodReference | undefined;
  for (const pod of pods) {
    for (const cs of pod.status?.containerStatuses ?? []) {
      const reason = cs.state?.waiting?.reason;
      if (!reason) continue;
      const object = reason === "CreateContainerConfigError" ? MISSING_OBJECT.exec(cs.state?.waiting?.message?.trim() ?? "") : null;
      if (object) {
        missing ??= { kind: object[1]!.toLowerCase() === "secret" ? "Secret" : "ConfigMap", name: object[2]!, pod: pod.metadata?.name ?? "" };
        continue;
      }
      const since = new Date(pod.metadata?.creationTimestamp ?? now).getTime();
      const base = {
        kind: "Failed" as const,
        permanent: true,
        exitCode: undefined,
        ...(pod.metadata?.name ? { pod: pod.metadata.name } : {}),
        ...(pod.spec?.nodeName ? { node: pod.spec.nodeName } : {}),
      };
      if (IMMEDIATE_FAILURES.has(reason) || ((PULL_FAILURES.has(reason) || CONFIG_FAILURES.has(reason)) && now - since >= graceMs)) {
        const image = pod.spec?.containers?.[0]?.image;
        const isImage = PULL_FAILURES.has(reason) || IMMEDIATE_FAILURES.has(reason);
        return {
          failure: {
            ...base,
            reason: isImage ? Reason.ImagePullFailed : Reason.ContainerConfigError,
            message: `pod ${pod.metadata?.name}: ${reason}: ${cs.state?.waiting?.message ?? ""}`.trim(),
            hint: isImage
              ? `The image ${image} cannot be pulled. Check spec.image (pin an existing tag) and spec.imagePullSecrets.`
              : "A Secret or ConfigMap the pod needs is missing (spec.secrets, spec.env valueFrom, spec.envFrom). Create it; the job then needs to be re-created.",
          },
        };
      }
      if (PULL_FAILURES.has(reason) || CONFIG_FAILURES.has(reason)) recheckAt = Math.min(recheckAt ?? Infinity, since + graceMs);
    }
  }
  return { ...(recheckAt !== undefined ? { recheckAt } : {}), ...(missing ? { missing } : {}) };
}
