/**
 * Pods the scheduler cannot place (no toleration for a taint, not enough GPUs, a node selector nothing
 * matches). Without this, a job sits in "0/1 pod(s) ready" with the cause only on the pod; the scheduler's
 * own reason, from the pod's PodScheduled condition, is what the user needs to see.
 */
import type { V1Pod } from "@kubernetes/client-node";

export interface Unschedulable {
  pod: string;
  /** The scheduler's message, e.g. "0/4 nodes are available: 4 Insufficient nvidia.com/gpu." */
  message: string;
  /** Since when (ms) the pod has been unschedulable: the condition's lastTransitionTime, else the pod's creation. */
  sinceMs: number;
}

/** The first pending pod (by name, so the choice is stable between reconciles) that the scheduler marked Unschedulable. */
export function firstUnschedulable(pods: readonly V1Pod[]): Unschedulable | undefined {
  const sorted = [...pods].sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
  for (const pod of sorted) {
    if (pod.spec?.nodeName || pod.metadata?.deletionTimestamp || pod.status?.phase !== "Pending") continue;
    const cond = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
    if (cond?.status === "False" && cond.reason === "Unschedulable") {
      const since = cond.lastTransitionTime ?? pod.metadata?.creationTimestamp;
      return {
        pod: pod.metadata?.name ?? "",
        message: (cond.message ?? "no message from the scheduler").trim(),
        sinceMs: since ? new Date(since).getTime() : Number.NaN,
      };
    }
  }
  return undefined;
}
