import type { V1OwnerReference } from "@kubernetes/client-node";
import { API_VERSION, KIND, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_MANAGED_BY, LABEL_STAGE, MANAGED_BY, type Stage } from "../api/group.ts";

export interface JobRef {
  name: string;
  namespace: string;
  uid: string;
}

export function childLabels(job: JobRef, stage?: Stage, attempt?: number): Record<string, string> {
  const labels: Record<string, string> = { [LABEL_JOB_NAME]: job.name, [LABEL_MANAGED_BY]: MANAGED_BY };
  if (stage) labels[LABEL_STAGE] = stage;
  if (attempt !== undefined) labels[LABEL_ATTEMPT] = String(attempt);
  return labels;
}

/** The controller reference that makes garbage collection remove compute with its FineTuneJob. */
export function ownerReference(job: JobRef): V1OwnerReference {
  return { apiVersion: API_VERSION, kind: KIND, name: job.name, uid: job.uid, controller: true, blockOwnerDeletion: true };
}
