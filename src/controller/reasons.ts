import type { Stage } from "../api/group.ts";
import type { Phase } from "../api/schema.ts";

/** Reasons of conditions and Events, in one place (CamelCase, stable: dashboards and alerts match on them). */
export const Reason = {
  InvalidSpec: "InvalidSpec",
  Valid: "Valid",
  ConfigWarnings: "ConfigWarnings",
  ConfigNotFound: "ConfigNotFound",
  SecretNotFound: "SecretNotFound",
  ConfigMapNotFound: "ConfigMapNotFound",
  ClaimNotFound: "ClaimNotFound",
  ReferencesFound: "ReferencesFound",
  Unschedulable: "Unschedulable",
  FailedCreate: "FailedCreate",
  CreateRefused: "CreateRefused",
  Scheduled: "Scheduled",
  Pending: "Pending",
  Running: "Running",
  Completed: "Completed",
  Disabled: "Disabled",
  NotApplicable: "NotApplicable",
  StageFailed: "StageFailed",
  Restarting: "Restarting",
  Disrupted: "Disrupted",
  BackoffLimitExceeded: "BackoffLimitExceeded",
  PermanentFailure: "PermanentFailure",
  Suspended: "Suspended",
  Resumed: "Resumed",
  Succeeded: "Succeeded",
  Created: "Created",
  JobDeleted: "JobDeleted",
  SpecChangeRejected: "SpecChangeRejected",
  TTLExpired: "TTLExpired",
  LossDecreasing: "LossDecreasing",
  LossNotFinite: "LossNotFinite",
  LossFlat: "LossFlat",
  LossSpike: "LossSpike",
  SmokeTestPassed: "SmokeTestPassed",
  SmokeTestEmptyAnswer: "SmokeTestEmptyAnswer",
  SmokeTestNoEOS: "SmokeTestNoEOS",
  SmokeTestNoAnswers: "SmokeTestNoAnswers",
  // The Event on reaching Failed carries the phase as its reason (Succeeded and Suspended are above).
  Failed: "Failed",
  PreprocessFailed: "PreprocessFailed",
  TrainFailed: "TrainFailed",
  SmokeFailed: "SmokeFailed",
  MergeFailed: "MergeFailed",
  // How an attempt ended (status.lastFailure.reason, status.attempts[].reason), from the pods (failures.ts).
  JobFailed: "JobFailed",
  OOMKilled: "OOMKilled",
  PermanentExitCode: "PermanentExitCode",
  TrainerError: "TrainerError",
  ImagePullFailed: "ImagePullFailed",
  ContainerConfigError: "ContainerConfigError",
  // Known failure signatures, each with a hint (hints.ts).
  ConfigRejected: "ConfigRejected",
  MergeSizeMismatch: "MergeSizeMismatch",
  MergeOutOfMemory: "MergeOutOfMemory",
  GPUOutOfMemory: "GPUOutOfMemory",
  HostOutOfMemory: "HostOutOfMemory",
  NCCLTimeout: "NCCLTimeout",
  DeepSpeedWorldSize: "DeepSpeedWorldSize",
  FlashAttentionUnavailable: "FlashAttentionUnavailable",
  DatasetNotFound: "DatasetNotFound",
  ModelNotFound: "ModelNotFound",
  FileNotFound: "FileNotFound",
  NoFinalModel: "NoFinalModel",
} as const;

/** Every reason the operator writes into a condition, an Event or status.lastFailure. */
export type Reason = (typeof Reason)[keyof typeof Reason];

/**
 * The reason of a failed attempt: the operator's own, or the one the Job controller put on the Job's Failed
 * condition (BackoffLimitExceeded, DeadlineExceeded, ...) when no pod is left to explain it, passed through as it is.
 */
export type FailureReason = Reason | (string & {});

/** Event reason when a stage's attempt fails and counts against its retries. */
export const STAGE_FAILED_REASON: Record<Stage, Reason> = {
  preprocess: Reason.PreprocessFailed,
  train: Reason.TrainFailed,
  smoke: Reason.SmokeFailed,
  merge: Reason.MergeFailed,
};

/**
 * The phases whose arrival is an Event: the ones a user acts on (fetch the model, read the failure, resume). The
 * way through the stages is in status (phase, stages, conditions) and in the Jobs' own Events; an Event per stage
 * was 7 writes per job for nothing a user does anything about.
 */
export const PHASE_EVENT_REASON: Partial<Record<Phase, Reason>> = {
  Succeeded: Reason.Succeeded,
  Failed: Reason.Failed,
  Suspended: Reason.Suspended,
};
