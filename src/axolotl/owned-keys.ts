/**
 * The Axolotl config keys the operator owns, listed once. The validator warns when a user sets one
 * (validate.ts); the renderer sets or drops them (render/axolotl-config.ts, whose table is typed by this list).
 */

/** Keys the operator sets: the shared storage paths, and Axolotl's own auto-resume turned off. */
const OPERATOR_SET_KEYS = ["output_dir", "dataset_prepared_path", "auto_resume_from_checkpoints"] as const;
export type OperatorSetKey = (typeof OPERATOR_SET_KEYS)[number];

/** Keys the operator drops: the launcher picks the checkpoint to resume from and passes it explicitly. */
export const OPERATOR_REMOVED_KEYS = ["resume_from_checkpoint"] as const;

/** Keys the operator sets itself (shared storage paths and resume handling). */
export const OPERATOR_OWNED_KEYS: readonly string[] = [...OPERATOR_SET_KEYS, ...OPERATOR_REMOVED_KEYS];
