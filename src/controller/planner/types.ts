/** What the planner reads (Observed) and what it answers (Decision): the contract with the reconciler. */
import type { V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import type { FineTuneJobObject, FineTuneJobSpec, FineTuneJobStatus } from "../../api/schema.ts";
import type { OperatorSettings } from "../../render/children.ts";
import type { Creatable } from "../../render/desired.ts";
import type { ValidationIssue } from "../../validation/job.ts";
import type { Reason } from "../reasons.ts";

export interface PlannerSettings extends OperatorSettings {
  /** First delay between failed attempts; doubles per counted failure. */
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  /** How long pods may sit in ImagePullBackOff / CreateContainerConfigError before the attempt fails. */
  imagePullGraceMs: number;
  /** Retries of the preprocess and merge stages (training uses spec.maxRestarts). */
  auxStageRetries: number;
  attemptHistoryLimit: number;
}

export const DEFAULT_PLANNER_SETTINGS: Omit<PlannerSettings, "launcherSource"> = {
  restartBackoffBaseMs: 10_000,
  restartBackoffMaxMs: 300_000,
  imagePullGraceMs: 300_000,
  auxStageRetries: 2,
  attemptHistoryLimit: 20,
};

/** An object the spec names that does not exist (yet): GitOps tools apply objects in any order. */
export interface MissingReference {
  kind: "ConfigMap" | "Secret" | "PersistentVolumeClaim";
  name: string;
  /** The spec field that names it, for the message. */
  path: string;
}

export interface Observed {
  ftj: FineTuneJobObject;
  /** FailedCreate messages of stage Jobs without pods (see podCreateSuspect), by Job name. */
  podCreateFailures?: Readonly<Record<string, string>>;
  /** Messages of the API server's refusals of this job's own creates, by `Kind/name` (see creates.ts). */
  createRefusals?: Readonly<Record<string, string>>;
  /** Referenced objects found missing before the run started; the job waits for them. */
  missing?: readonly MissingReference[];
  /** Result of validating the spec and the resolved Axolotl config. */
  validation: { spec?: FineTuneJobSpec; issues: ValidationIssue[] };
  axolotlConfig?: Record<string, unknown>;
  children: {
    configMap: boolean;
    /** The namespace's shared launcher ConfigMap (renderLauncherConfigMap) is in the cache. */
    launcher: boolean;
    service: boolean;
    claim?: V1PersistentVolumeClaim;
    jobs: readonly V1Job[];
    pods: readonly V1Pod[];
  };
  settings: PlannerSettings;
  now: Date;
}

export type Action =
  | { kind: "create"; object: Creatable }
  | { kind: "delete"; apiVersion: string; resource: "jobs"; namespace: string; name: string; reason: string }
  | { kind: "deleteFineTuneJob"; reason: string };

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: Reason;
  message: string;
}

export interface Decision {
  status: FineTuneJobStatus;
  statusChanged: boolean;
  actions: Action[];
  events: PlannedEvent[];
  requeueAfterMs?: number;
}
