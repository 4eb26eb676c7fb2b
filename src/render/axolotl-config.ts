/**
 * The Axolotl config as the trainer receives it: the user's config with the
 * keys the operator owns set to the paths on the output claim. Resume is the
 * launcher's job (it picks the newest COMPLETE checkpoint and passes it
 * explicitly), so Axolotl's own auto-resume, which trusts the highest-numbered
 * and possibly half-written checkpoint, is turned off.
 */
import { OPERATOR_REMOVED_KEYS, type OperatorSetKey } from "../axolotl/owned-keys.ts";
import { OUTPUT_DIR, PREPARED_DIR } from "./names.ts";

export interface RenderedAxolotlConfig {
  config: Record<string, unknown>;
}

const OWNED: Record<OperatorSetKey, unknown> = {
  output_dir: OUTPUT_DIR,
  dataset_prepared_path: PREPARED_DIR,
  auto_resume_from_checkpoints: false,
};

/**
 * Axolotl looks for the dynamic-checkpoint trigger only every `check_interval` steps (default 10). On SIGTERM the
 * launcher creates the trigger and has the grace period for the save, so a slow step times ten can miss it. One
 * check per step costs a stat on rank 0 and a one-element broadcast: nothing next to a training step.
 */
const SHUTDOWN_CHECK_INTERVAL = 1;

export function renderAxolotlConfig(userConfig: Record<string, unknown>): RenderedAxolotlConfig {
  const config: Record<string, unknown> = { ...userConfig };
  if (dynamicCheckpointEnabled(config)) {
    const dc = config.dynamic_checkpoint as Record<string, unknown>;
    if (dc.check_interval === undefined || dc.check_interval === null) config.dynamic_checkpoint = { ...dc, check_interval: SHUTDOWN_CHECK_INTERVAL };
  }
  for (const [key, value] of Object.entries(OWNED)) config[key] = value;
  for (const key of OPERATOR_REMOVED_KEYS) delete config[key];
  return { config };
}

/** Whether the run trains a LoRA-style adapter that `axolotl merge-lora` can fold into the base model. */
export function trainsMergeableAdapter(config: Record<string, unknown>): boolean {
  return config.adapter === "lora" || config.adapter === "qlora";
}

/** The trigger file name the config sets (dynamic_checkpoint.trigger_file_path), when it sets one. */
export function dynamicCheckpointTrigger(config: Record<string, unknown>): string | undefined {
  const dc = config.dynamic_checkpoint;
  const path = typeof dc === "object" && dc !== null ? (dc as Record<string, unknown>).trigger_file_path : undefined;
  return typeof path === "string" && path.trim() ? path.trim() : undefined;
}

export function dynamicCheckpointEnabled(config: Record<string, unknown>): boolean {
  const dc = config.dynamic_checkpoint;
  return typeof dc === "object" && dc !== null && (dc as Record<string, unknown>).enabled === true;
}

/** `org/name` as the Hub spells repository ids; a path (`/models/x`, `./x`) is not one. */
const HUB_REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The Hub model (and revision) the preprocess stage downloads into the shared cache: base_model when it names one. */
export function hubModelOf(config: Record<string, unknown>): { repo: string; revision?: string } | undefined {
  const base = config.base_model;
  if (typeof base !== "string" || !HUB_REPO_ID.test(base)) return undefined;
  const revision = config.revision_of_model;
  return { repo: base, ...(typeof revision === "string" && revision ? { revision } : {}) };
}
