/**
 * Whether the training loss looks healthy, from status.lossHistory alone
 * (pure, level-triggered: the same history always gives the same verdict).
 * The checks and hints are the Axolotl guide's: "if loss starts above 2-3 and
 * drops quickly in the first 100 steps, your config is working; if loss stays
 * flat or spikes, check your learning rate and dataset quality".
 */
import type { FineTuneJobSpec, LossHistory } from "../api/schema.ts";
import { RECENT } from "../progress/loss.ts";
import { Reason } from "./reasons.ts";

export type LossGuard = FineTuneJobSpec["lossGuard"];

export interface LossVerdict {
  healthy: boolean;
  reason: Reason;
  message: string;
  /** Only for a non-finite loss: what lossGuard.action applies to. */
  nonFinite?: boolean;
}

/** Relative spread under which the first logged losses count as flat. */
const FLAT_TOLERANCE = 0.01;
/** A spike must also be this much above the recent minimum, so noise on a loss near 0 is no spike. */
const SPIKE_MIN_RISE = 0.1;

const LOSS_HINTS = {
  nonFinite:
    "Lower learning_rate (e.g. 10x) and keep warmup; prefer bf16 over fp16 (fp16 overflows); check max_grad_norm. A NaN loss from the first step often means no token is trained: check that each dataset's `type` matches its data and, for chat data, `roles_to_train` (and `train_on_eos`).",
  flat: "Check learning_rate (too low, or a long warmup) and that each dataset's `type` matches its data (e.g. `alpaca` vs `chat_template`); for chat data, `roles_to_train` must include the assistant role, or no token is trained.",
  spike: "Lower learning_rate or add warmup (warmup_steps/warmup_ratio); a spike can also come from a bad batch: check the dataset's quality.",
};

/** undefined while there is not enough to say anything. */
export function assessLoss(history: LossHistory | undefined, guard: LossGuard): LossVerdict | undefined {
  if (!history) return undefined;
  if (history.nonFiniteStep !== undefined) {
    return {
      healthy: false,
      nonFinite: true,
      reason: Reason.LossNotFinite,
      message: `the training loss was NaN or infinite at step ${history.nonFiniteStep}. ${LOSS_HINTS.nonFinite}`,
    };
  }
  const points = history.points;
  const spike = findSpike(points, guard.spikeFactor);
  if (spike) {
    return {
      healthy: false,
      reason: Reason.LossSpike,
      message: `the loss spiked to ${spike.loss} at step ${spike.step}, over ${guard.spikeFactor}x its recent minimum ${spike.min}. ${LOSS_HINTS.spike}`,
    };
  }
  const n = guard.flatSteps;
  if (n >= 2 && points.length >= n) {
    const first = points.slice(0, n).map((p) => p.loss);
    const lo = Math.min(...first);
    const hi = Math.max(...first);
    const scale = Math.max(Math.abs(first[0]!), 1e-6);
    const latest = points[points.length - 1]!.loss;
    // Flat at the start and still not below where it started: a loss that dropped later is working after all.
    if ((hi - lo) / scale < FLAT_TOLERANCE && latest >= first[0]! * (1 - FLAT_TOLERANCE)) {
      return {
        healthy: false,
        reason: Reason.LossFlat,
        message: `the loss stayed flat at about ${round(first[0]!)} over the first ${n} logged steps. ${LOSS_HINTS.flat}`,
      };
    }
  }
  if (points.length < Math.max(2, n)) return undefined;
  return { healthy: true, reason: Reason.LossDecreasing, message: "no NaN, flat start or spike in the logged training loss" };
}

/** The newest point among the recent ones that is above factor x the minimum of the RECENT points logged before it. */
function findSpike(points: LossHistory["points"], factor: number): { step: number; loss: number; min: number } | undefined {
  if (!(factor > 0)) return undefined;
  for (let i = points.length - 1; i >= Math.max(1, points.length - RECENT); i--) {
    const before = points.slice(Math.max(0, i - RECENT), i).map((p) => p.loss);
    const min = Math.min(...before);
    const p = points[i]!;
    if (min >= 0 && p.loss > factor * min && p.loss - min > SPIKE_MIN_RISE) return { step: p.step, loss: p.loss, min };
  }
  return undefined;
}

function round(x: number): number {
  return Number(x.toPrecision(4));
}
