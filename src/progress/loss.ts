/**
 * The short loss history kept in status.lossHistory: fed by both progress
 * paths (push reports in server.ts, the log tail in log-plan.ts) as part of
 * the progress patch they already write, so it costs no write of its own.
 * Pure. Bounded: the first FIRST values as logged (the flat-start check reads
 * them), the newest RECENT as logged (the spike check reads them), and the
 * ones between thinned by halving, so a whole run fits in MAX_POINTS and a
 * sparkline still shows its shape.
 */
import type { LossHistory } from "../api/schema.ts";

export const MAX_POINTS = 48;
/** lossGuard.flatSteps is at most this (schema.ts): the flat check must see its window as logged. */
export const FIRST = 16;
export const RECENT = 16;

/** One logged loss; `loss` NaN or ±Infinity marks a non-finite value. */
export interface LossSample {
  step: number;
  loss: number;
}

/**
 * The history with the samples added, or the same object when nothing
 * changed (callers skip the write then). A sample at or before the newest
 * step is a repeat (a push report resent, a log tail read again) and is
 * ignored. So is what a restarted attempt logs again between the checkpoint
 * it resumed from and the step the history had reached: the curve continues
 * from there, and a non-finite loss seen before the restart stays recorded.
 */
export function addLoss(history: LossHistory | undefined, samples: readonly LossSample[]): LossHistory | undefined {
  let points = history?.points ?? [];
  let nonFiniteStep = history?.nonFiniteStep;
  let changed = false;
  for (const s of samples) {
    if (!Number.isInteger(s.step) || s.step < 0) continue;
    if (!Number.isFinite(s.loss)) {
      if (nonFiniteStep === undefined) {
        nonFiniteStep = s.step;
        changed = true;
      }
      continue;
    }
    const last = points[points.length - 1];
    if (last && s.step <= last.step) continue;
    points = [...points, { step: s.step, loss: round(s.loss) }];
    changed = true;
  }
  if (!changed) return history;
  return { points: thin(points), ...(nonFiniteStep !== undefined ? { nonFiniteStep } : {}) };
}

/** Keeps FIRST and RECENT as logged and halves the middle until the whole fits. */
export function thin<T>(points: readonly T[]): T[] {
  let out = [...points];
  while (out.length > MAX_POINTS) {
    const head = out.slice(0, FIRST);
    const middle = out.slice(FIRST, out.length - RECENT);
    const tail = out.slice(out.length - RECENT);
    out = [...head, ...middle.filter((_, i) => i % 2 === 1), ...tail];
  }
  return out;
}

/** Six significant digits: enough for a curve, and a value read back from the API server compares equal. */
function round(x: number): number {
  return Number(x.toPrecision(6));
}

const BARS = "▁▂▃▄▅▆▇█";

/** A one-line sparkline of the history (kubectl finetune status), at most `width` characters. */
export function sparkline(history: LossHistory | undefined, width = 32): string {
  const values = (history?.points ?? []).map((p) => p.loss);
  if (values.length === 0) return "";
  const n = Math.min(width, values.length);
  const sampled = Array.from({ length: n }, (_, i) => values[Math.floor((i * values.length) / n)]!);
  const min = Math.min(...sampled);
  const max = Math.max(...sampled);
  return sampled.map((v) => BARS[max === min ? 0 : Math.round(((v - min) / (max - min)) * (BARS.length - 1))]).join("");
}
