/**
 * Whether a SIGTERM (preemption, drain, suspend) can still end in a checkpoint. The launcher creates Axolotl's
 * dynamic-checkpoint trigger on SIGTERM and waits up to the grace period minus a safety margin for the save; Axolotl
 * looks for the trigger only every `dynamic_checkpoint.check_interval` steps. The operator renders check_interval 1
 * when the config leaves it unset (render/axolotl-config.ts); a config that sets more gets the arithmetic as a warning.
 */
import type { FineTuneJobSpec } from "../api/schema.ts";
import type { ValidationIssue } from "../axolotl/validate.ts";
import { dynamicCheckpointEnabled } from "../render/axolotl-config.ts";

/** Seconds the launcher keeps for forwarding SIGTERM and exiting after the save window (env_config.py DEFAULT_SAFETY_SECONDS). */
const SHUTDOWN_SAFETY_SECONDS = 10;

export function checkShutdownSave(config: Record<string, unknown>, spec: FineTuneJobSpec, prefix: string): ValidationIssue[] {
  if (!dynamicCheckpointEnabled(config)) return [];
  const interval = (config.dynamic_checkpoint as Record<string, unknown>).check_interval;
  if (typeof interval !== "number" || !Number.isInteger(interval) || interval <= 1) return [];
  const window = spec.terminationGracePeriodSeconds - SHUTDOWN_SAFETY_SECONDS;
  const perStep = window / interval;
  return [
    {
      severity: "warning",
      path: `${prefix}.dynamic_checkpoint.check_interval`,
      message:
        `Axolotl looks for the save trigger only every ${interval} steps; on SIGTERM the launcher waits ${window} s ` +
        `(spec.terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} s minus ${SHUTDOWN_SAFETY_SECONDS} s) for the checkpoint, ` +
        `so it is saved only if a step takes under ${perStep.toFixed(1)} s (less the save itself). ` +
        `Remove check_interval (the operator then checks every step) or raise spec.terminationGracePeriodSeconds.`,
    },
  ];
}
