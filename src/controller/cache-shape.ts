/**
 * What each informer keeps of an object: only the fields the controller reads, so thousands of
 * jobs fit in a small operator (measured in the README's Benchmark section). Each trim runs once
 * per object from a list or a watch event, before it is cached. Objects the operator expects but
 * the cache does not show yet (runtime/expectations.ts) are kept in the same shape, so the
 * planner cannot tell them apart; those come from create answers, hence the managedFields delete
 * here too (the informer already drops it from what it caches). Read by the planner, the failure
 * classifier, the scheduling hints, the smoke-answers reader, the progress log poller and the
 * progress authenticator; widen a trim before reading a new field.
 */
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject, V1ConfigMap, V1ContainerStatus, V1Job, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import type { FineTuneJobObject } from "../api/schema.ts";

/** kubectl's client-side apply stores a whole copy of the object here; nothing in the operator reads it. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** FineTuneJobs: the planner reads all of spec and status; only kubectl's copy of the object goes. */
export function trimFineTuneJob<T extends FineTuneJobObject & KubernetesObject>(ftj: T): T {
  const annotations = ftj.metadata?.annotations;
  if (annotations && LAST_APPLIED in annotations) delete annotations[LAST_APPLIED];
  return ftj;
}

/** Jobs: parallelism/completions/suspend of spec (the pod template is ours and never read back); status in full. */
export function trimJob(job: V1Job): V1Job {
  delete job.metadata?.managedFields;
  if (job.spec) job.spec = { parallelism: job.spec.parallelism, completions: job.spec.completions, suspend: job.spec.suspend } as V1Job["spec"];
  return job;
}

/** A container status as the failure classifier reads it: which container, its state, and the previous one. */
function trimContainerStatus(cs: V1ContainerStatus): V1ContainerStatus {
  return { name: cs.name, state: cs.state, lastState: cs.lastState, restartCount: cs.restartCount, ready: cs.ready } as V1ContainerStatus;
}

/**
 * Pods: nodeName and container names/images of spec; of status the phase, reason, conditions and container states
 * (IPs, QoS class, image IDs and resources are never read).
 */
export function trimPod(pod: V1Pod): V1Pod {
  delete pod.metadata?.managedFields;
  if (pod.spec)
    pod.spec = { nodeName: pod.spec.nodeName, containers: (pod.spec.containers ?? []).map((c) => ({ name: c.name, image: c.image })) } as V1Pod["spec"];
  const st = pod.status;
  if (st) {
    pod.status = {
      phase: st.phase,
      reason: st.reason,
      message: st.message,
      startTime: st.startTime,
      conditions: st.conditions,
      ...(st.containerStatuses ? { containerStatuses: st.containerStatuses.map(trimContainerStatus) } : {}),
      ...(st.initContainerStatuses ? { initContainerStatuses: st.initContainerStatuses.map(trimContainerStatus) } : {}),
    } as V1Pod["status"];
  }
  return pod;
}

/** ConfigMaps: the rendered config.yaml only; the launcher source is the bulk of each rendered ConfigMap and the planner never reads it. */
export function trimConfigMap(cm: V1ConfigMap): V1ConfigMap {
  delete cm.metadata?.managedFields;
  if (cm.data) cm.data = { ...(cm.data["config.yaml"] !== undefined ? { "config.yaml": cm.data["config.yaml"] } : {}) };
  delete cm.binaryData;
  return cm;
}

/** Services: the planner asks only whether the rank Service exists. */
export function trimService(svc: V1Service): V1Service {
  delete svc.spec;
  delete svc.status;
  return svc;
}

/**
 * Claims: existence only. The planner never waits for a claim to bind (a WaitForFirstConsumer class binds only once a
 * pod uses it), so the binder's annotations, spec.volumeName and status, three updates per new claim, go.
 */
export function trimClaim(pvc: V1PersistentVolumeClaim): V1PersistentVolumeClaim {
  delete pvc.spec;
  delete pvc.status;
  delete pvc.metadata?.annotations;
  return pvc;
}

/**
 * Whether an update changed what the controller reads of a trimmed child: one that differs only in resourceVersion
 * (a claim being bound, a Job field the trim drops) needs no reconcile.
 */
export function changedForController(now: KubernetesObject, before: KubernetesObject): boolean {
  if (now.metadata?.resourceVersion === before.metadata?.resourceVersion) return false;
  const withoutVersion = (o: KubernetesObject) => ({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return !isDeepStrictEqual(withoutVersion(now), withoutVersion(before));
}
