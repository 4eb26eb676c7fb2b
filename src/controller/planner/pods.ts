/**
 * Pod diagnostics of a running stage: pods the scheduler cannot place, pods the API server refuses to create, and
 * pods waiting for a Secret or ConfigMap. Each goes into a condition, a note on the job's message, and one Event
 * per episode; none of them ends the attempt (failures.ts decides that).
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import type { Stage } from "../../api/group.ts";
import type { StageStatus } from "../../api/schema.ts";
import { getCondition } from "../conditions.ts";
import type { MissingPodReference } from "../failures.ts";
import { Reason } from "../reasons.ts";
import { firstUnschedulable } from "../scheduling.ts";
import { attemptOf, type Planner } from "./context.ts";

/** How long a Job may have no pod at all before the operator looks for refused pod creates (FailedCreate Events). */
export const POD_CREATE_CHECK_MS = 10_000;

/** How often a Job that still has no pod is looked at again (each look lists the Job's Events). */
export const POD_CREATE_RECHECK_MS = 15_000;
/**
 * How long a pod may be unschedulable before it is reported. A pod whose fresh output claim is still being bound is
 * unschedulable for seconds ("unbound immediate PersistentVolumeClaims"; the PV binder also syncs every 15 s), as is
 * one waiting for the autoscaler or a preemption: reporting those would be an Event and two status writes per job
 * about nothing a user should do.
 */
export const UNSCHEDULABLE_GRACE_MS = 30_000;

/** The scheduler's words for a pod whose claim (of an Immediate-binding class) is not bound yet. */
const UNBOUND_CLAIM = /unbound immediate PersistentVolumeClaims/i;

/**
 * How long a pod may wait for its claim to bind before it is reported. A fresh claim waits in the storage system's
 * queue: kube-controller-manager's PV binder binds claims one at a time (in the benchmark's burst of 500 new output
 * claims the last one waited about 100 s), and a cloud disk adds its own seconds. A claim not bound after five
 * minutes is worth a Warning: no provisioner for its class, a provisioner that fails, or a quota.
 */
export const UNBOUND_CLAIM_GRACE_MS = 300_000;

/** A stage Job that has existed for POD_CREATE_CHECK_MS without any pod, not suspended and not finished. */
export function podCreateSuspect(job: V1Job, pods: readonly V1Pod[], nowMs: number): boolean {
  if (
    job.spec?.suspend ||
    job.metadata?.deletionTimestamp ||
    job.status?.conditions?.some((c) => c.status === "True" && ["Complete", "Failed"].includes(c.type))
  )
    return false;
  const name = job.metadata?.name;
  if (pods.some((pod) => pod.metadata?.labels?.["batch.kubernetes.io/job-name"] === name || pod.metadata?.labels?.["job-name"] === name)) return false;
  return nowMs - new Date(job.metadata?.creationTimestamp ?? nowMs).getTime() >= POD_CREATE_CHECK_MS;
}

/** ReferencesResolved reasons that come from the pods (the kubelet), not from the spec's references. */
export const POD_REFERENCE_REASONS = new Set<string>([Reason.SecretNotFound, Reason.ConfigMapNotFound]);

/**
 * A Secret or ConfigMap the pods need (spec.secrets, env, envFrom) that does not exist yet: the job waits (the
 * kubelet starts the container once it exists) with ReferencesResolved=False and one Event, instead of failing.
 * The operator cannot read Secrets; the kubelet's CreateContainerConfigError is how it learns of them.
 */
export function reportPodReferences(p: Planner, missing: MissingPodReference | undefined): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "ReferencesResolved");
  if (missing) {
    const message = `${missing.kind} ${missing.name} not found in namespace ${p.obs.ftj.metadata.namespace ?? ""} (needed by pod ${missing.pod}: spec.secrets, env or envFrom)`;
    const reason = missing.kind === "Secret" ? Reason.SecretNotFound : Reason.ConfigMapNotFound;
    if (cond?.status !== "False" || cond.message !== message) p.event("Warning", reason, `${message}; the pod starts once it exists`);
    p.condition({ type: "ReferencesResolved", status: "False", reason, message });
    p.note(`waiting: ${message}`);
  } else if (cond?.status === "False" && POD_REFERENCE_REASONS.has(cond.reason)) {
    p.condition({ type: "ReferencesResolved", status: "True", reason: Reason.ReferencesFound, message: "every referenced object exists" });
    p.event("Normal", Reason.ReferencesFound, "the missing Secret/ConfigMap exists now; the pods start");
  }
}

/**
 * Pods the API server refuses to create (a Pod Security level, a ResourceQuota, a LimitRange, an unknown
 * PriorityClass) show only in the Job controller's FailedCreate Events: the refusal goes into status (message,
 * PodsCreated=False with reason FailedCreate) and one Event per episode. The job waits; fixing the namespace lets
 * the Job controller create the pods. While a Job has no pod the planner looks again.
 */
export function reportPodCreation(p: Planner, stage: Stage, ss: StageStatus, job: V1Job, pods: readonly V1Pod[]): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "PodsCreated");
  const refused = p.obs.podCreateFailures?.[job.metadata?.name ?? ""];
  const podless = !job.spec?.suspend && !pods.some((pod) => attemptOf(pod) === ss.attempt);
  if (podless) {
    const createdAt = new Date(job.metadata?.creationTimestamp ?? p.now).getTime();
    const due = createdAt + POD_CREATE_CHECK_MS - p.nowMs;
    // First look when the Job is old enough to be suspect, then every POD_CREATE_RECHECK_MS.
    p.requeue(due > 0 ? due : POD_CREATE_RECHECK_MS);
  }
  if (refused && podless) {
    const message = `${stage} attempt ${ss.attempt}: pods of Job ${job.metadata?.name} are refused: ${refused}`;
    if (cond?.status !== "False") p.event("Warning", Reason.FailedCreate, message);
    p.condition({ type: "PodsCreated", status: "False", reason: Reason.FailedCreate, message });
    p.note(message);
  } else if (cond?.status === "False" && !podless) {
    p.condition({ type: "PodsCreated", status: "True", reason: Reason.Created, message: `pods of ${stage} attempt ${ss.attempt} were created` });
  }
}

/** The scheduler's reason for a pod it cannot place goes into status (message, PodsScheduled) and one Event per episode. */
export function reportScheduling(p: Planner, stage: Stage, ss: StageStatus, pods: readonly V1Pod[]): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "PodsScheduled");
  const found = firstUnschedulable(pods);
  const waitedMs = found ? p.nowMs - (Number.isNaN(found.sinceMs) ? p.nowMs : found.sinceMs) : 0;
  const graceMs = found && UNBOUND_CLAIM.test(found.message) ? UNBOUND_CLAIM_GRACE_MS : UNSCHEDULABLE_GRACE_MS;
  if (found && cond?.status !== "False" && waitedMs < graceMs) p.requeue(graceMs - waitedMs);
  const stuck = found && (cond?.status === "False" || waitedMs >= graceMs) ? found : undefined;
  if (stuck) {
    const message = `${stage} attempt ${ss.attempt}: pod ${stuck.pod} cannot be scheduled: ${stuck.message}`;
    if (cond?.status !== "False") p.event("Warning", Reason.Unschedulable, message);
    p.condition({ type: "PodsScheduled", status: "False", reason: Reason.Unschedulable, message });
    p.note(message);
  } else if (cond?.status === "False" && pods.length > 0 && pods.every((pod) => pod.spec?.nodeName)) {
    p.condition({ type: "PodsScheduled", status: "True", reason: Reason.Scheduled, message: `every pod of ${stage} attempt ${ss.attempt} is scheduled` });
  }
}
