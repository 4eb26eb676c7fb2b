/** API coordinates of the FineTuneJob custom resource, defined once. */
export const GROUP = "finetune.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "FineTuneJob";
export const PLURAL = "finetunejobs";
export const SINGULAR = "finetunejob";
export const SHORT_NAMES = ["ftj"];

/**
 * The trainer image used when a FineTuneJob names none. A pinned release tag,
 * never `latest`, so a job re-run next month trains with the same code.
 */
export const DEFAULT_TRAINER_IMAGE = "axolotlai/axolotl:0.18.0";

/** Labels every child object carries; selectors and the informer indexes rely on them. */
export const LABEL_JOB_NAME = `${GROUP}/job-name`;
export const LABEL_STAGE = `${GROUP}/stage`;
export const LABEL_ATTEMPT = `${GROUP}/attempt`;
/** Objects shared by several jobs (the launcher ConfigMap) carry this instead of a job name. */
export const LABEL_COMPONENT = `${GROUP}/component`;
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "finetune-operator";
export const KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name";

/** In run order: the smoke test checks the trained adapter before it is merged. */
export const STAGES = ["preprocess", "train", "smoke", "merge"] as const;
export type Stage = (typeof STAGES)[number];
