/**
 * What the informer caches keep of each child: only what the planner reads, so thousands of jobs fit in a small
 * operator (see src/runtime/README.md). Objects the operator expects but the cache does not show yet
 * (runtime/expectations.ts) are kept in the same shape, so the planner cannot tell them apart.
 */
import type { V1ConfigMap, V1Job, V1Pod } from "@kubernetes/client-node";

/** Trims in place (informer transforms own the object they are given) and returns it. */
export function trimJob(job: V1Job): V1Job {
  delete job.metadata?.managedFields;
  if (job.spec) job.spec = { parallelism: job.spec.parallelism, completions: job.spec.completions, suspend: job.spec.suspend } as V1Job["spec"];
  return job;
}

export function trimPod(pod: V1Pod): V1Pod {
  delete pod.metadata?.managedFields;
  if (pod.spec) pod.spec = { nodeName: pod.spec.nodeName, containers: pod.spec.containers.map((c) => ({ name: c.name, image: c.image })) } as V1Pod["spec"];
  return pod;
}

/** The launcher source is the bulk of each rendered ConfigMap and the planner never reads it. */
export function trimConfigMap(cm: V1ConfigMap): V1ConfigMap {
  delete cm.metadata?.managedFields;
  if (cm.data) cm.data = { ...(cm.data["config.yaml"] !== undefined ? { "config.yaml": cm.data["config.yaml"] } : {}) };
  return cm;
}
