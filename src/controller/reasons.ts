import type { Stage } from "../api/group.ts";

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
  JobCreated: "JobCreated",
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
} as const;

/** Event reason when a stage's Job completes. */
export const STAGE_SUCCEEDED_REASON: Record<Stage, string> = {
  preprocess: "PreprocessSucceeded",
  train: "TrainSucceeded",
  smoke: "SmokeSucceeded",
  merge: "MergeSucceeded",
};

/** Event reason when a stage's attempt fails and counts against its retries. */
export const STAGE_FAILED_REASON: Record<Stage, string> = {
  preprocess: "PreprocessFailed",
  train: "TrainFailed",
  smoke: "SmokeFailed",
  merge: "MergeFailed",
};
