/**
 * Training progress from the tail of rank 0's log: the fallback when the
 * trainer cannot push (src/progress/server.ts). It reads exactly what Axolotl
 * and the HF Trainer print (see /work/shared/reference/axolotl.md and the
 * launcher's src/trainer/launcher/progress_parse.py, which parses the same
 * stream on the push path; the regular expressions below are copies of its):
 *
 *   [2025-01-01 10:00:00,000] [INFO] [axolotl.utils.data.sft:123] [RANK:0] Maximum number of steps set at 873
 *    12%|█▏        | 102/873 [09:08<1:10:11,  5.46s/it]           (tqdm, redrawn with \r)
 *   {'loss': 1.2345, 'grad_norm': 0.4, 'learning_rate': 2e-05, 'epoch': 0.5}
 *   {'eval_loss': 1.1, 'eval_runtime': 3.2, 'epoch': 0.5}
 *   [INFO|trainer.py:3984] >> Saving model checkpoint to /finetune/output/model/checkpoint-100
 *
 * Differences from the launcher come from reading a tail instead of the whole
 * stream: the "Maximum number of steps" line and the first training bar may
 * have scrolled away, so the caller may pass the total it already knows, and
 * a checkpoint counts only once training has visibly moved past it (the
 * launcher looks at the files instead; the operator cannot).
 *
 * Pure and total: any input gives a result, malformed lines are skipped.
 */
import { MAX_CHECKPOINTS, type Checkpoint } from "../api/schema.ts";
import type { LossSample } from "./loss.ts";
import { parseMetricsDict } from "./py-literal.ts";

export interface LogProgress {
  step?: number;
  totalSteps?: number;
  epoch?: number;
  loss?: number;
  evalLoss?: number;
  learningRate?: number;
  gradNorm?: number;
  tokensPerSecond?: number;
  etaSeconds?: number;
  /** Checkpoints whose save finished (training went on past them), oldest first. */
  checkpoints: Checkpoint[];
  /** Every training loss in the tail with the step it was logged at, oldest first; NaN/±Infinity for non-finite ones. */
  losses: LossSample[];
  /** "Training completed!" was printed. */
  completed: boolean;
}

export interface ParseHints {
  /** totalSteps already known (status.progress.totalSteps): picks the training bar when the tail lacks "Maximum number of steps". */
  totalSteps?: number;
}

// Same expressions as the launcher (ansi.py _ANSI_RE; progress_parse.py _MAX_STEPS_RE, _SAVING_RE, _TQDM_RE, _TAG_PREFIX_RE; checkpoints.py CHECKPOINT_DIR_RE).
const ANSI_RE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
const MAX_STEPS_RE = /Maximum number of steps set at (\d+)/;
const SAVING_RE = /Saving model checkpoint to (\S+)/;
const TQDM_RE = /(?:(\d{1,3})%\|[^|]*\|\s*)?(\d+)\/(\d+)\s*\[([\d:]+)<([\d:]+|\?)\s*,\s*([\d.]+|\?)\s*(s\/it|it\/s)/;
const TAG_PREFIX_RE = /^(?:\s*\[[^\]]*\]\s*:?)+/;
const CHECKPOINT_DIR_RE = /^checkpoint-(\d+)$/;
const GLOBAL_TOKENS_KEYS = ["tokens_per_second", "train_tokens_per_second", "tokens/train_per_sec"];
/** A longer "line" is a runaway tqdm redraw or binary noise; its segments are still read one by one. */
const MAX_SEGMENT_CHARS = 64 * 1024;

interface Bar {
  n: number;
  total: number;
  remaining: number | undefined;
  secondsPerStep: number | undefined;
  /** Index of the segment, to order bars against checkpoint saves. */
  at: number;
}

/** `1:10:11` -> 4211, `09:08` -> 548, `?` -> undefined (progress_parse.py parse_duration). */
export function parseDuration(text: string): number | undefined {
  if (!text || text === "?") return undefined;
  let total = 0;
  for (const part of text.split(":")) {
    if (!/^\d+$/.test(part)) return undefined;
    total = total * 60 + Number(part);
  }
  return total;
}

function stripAnsi(text: string): string {
  return text.includes("\x1b") ? text.replace(ANSI_RE, "") : text;
}

/** Output segments in order: lines split at \n and at tqdm's \r redraws, ANSI-free, blank ones dropped. */
export function segments(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const seg = stripAnsi(raw.length > MAX_SEGMENT_CHARS ? raw.slice(-MAX_SEGMENT_CHARS) : raw);
    if (seg.trim()) out.push(seg);
  }
  return out;
}

/** A number as Python's float()/int() would read it, written without spaces or underscores (transformers 5 logs `'loss': '6.707'`). */
const NUMERIC_STRING_RE = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * A finite metric value. transformers 5 formats every logged float as a string (`{'loss': '6.707', 'epoch': '0.01'}`,
 * seen from axolotl 0.18.0); earlier versions log floats. Both count; nan/inf, in either form, do not.
 */
const finite = (v: unknown): number | undefined => {
  const n = typeof v === "string" && NUMERIC_STRING_RE.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) ? n : undefined;
};

/** nan/inf as Python prints them: bare (py-literal gives NaN/±Infinity) or, on transformers 5, as strings. */
const nonFinite = (v: unknown): boolean =>
  (typeof v === "number" && !Number.isFinite(v)) || (typeof v === "string" && /^[-+]?(?:nan|inf(?:inity)?)$/i.test(v.trim()));

/** The training-loop bar: no description before it (dataset, download and tokenizer bars have one). */
function parseBar(seg: string, at: number): Bar | undefined {
  if (!seg.includes("/") || !seg.includes("<") || !seg.includes("[")) return undefined;
  const m = TQDM_RE.exec(seg);
  if (!m) return undefined;
  if (seg.slice(0, m.index).replace(TAG_PREFIX_RE, "").trim()) return undefined;
  const n = Number(m[2]);
  const total = Number(m[3]);
  if (!(total > 0) || n > total) return undefined;
  const rate = m[6] === "?" ? undefined : Number(m[6]);
  const secondsPerStep = rate && rate > 0 ? (m[7] === "s/it" ? rate : 1 / rate) : undefined;
  return { n, total, remaining: parseDuration(m[5]!), secondsPerStep, at };
}

/**
 * Which bar total is the training loop's. Eval bars (`25/25 [...]`) look the
 * same; the launcher tells them apart by order (the first bar after "Starting
 * trainer" is training), which a tail may not show. So: the announced maximum
 * in the tail, else the total the caller knew, else the total drawn most often
 * (training redraws its bar for the whole run, an eval bar only while it evaluates).
 */
function trainingTotal(bars: Bar[], announced: number | undefined, hint: number | undefined): number | undefined {
  const totals = new Set(bars.map((b) => b.total));
  if (announced !== undefined && totals.has(announced)) return announced;
  if (hint !== undefined && totals.has(hint)) return hint;
  const counts = new Map<number, number>();
  for (const b of bars) counts.set(b.total, (counts.get(b.total) ?? 0) + 1);
  let best: number | undefined;
  for (const [total, count] of counts) if (best === undefined || count > counts.get(best)! || (count === counts.get(best)! && total > best)) best = total;
  return best;
}

export function parseLogTail(text: string, hints: ParseHints = {}): LogProgress {
  const out: LogProgress = { checkpoints: [], losses: [], completed: false };
  const losses: Array<{ loss: number; at: number }> = [];
  let announced: number | undefined;
  const bars: Bar[] = [];
  const saves = new Map<number, { path: string; at: number }>();
  let dictStep: number | undefined;
  let completedAt = -1;
  const segs = segments(text);
  segs.forEach((seg, at) => {
    try {
      if (seg.includes("Maximum number of steps set at")) {
        const m = MAX_STEPS_RE.exec(seg);
        if (m) announced = Number(m[1]);
      }
      if (seg.includes("Training completed!")) {
        out.completed = true;
        completedAt = at;
      }
      if (seg.includes("Saving model checkpoint to")) {
        const m = SAVING_RE.exec(seg);
        if (m) {
          const path = m[1]!.replace(/[.,;:'")]+$/, "").replace(/\/+$/, "");
          const cm = CHECKPOINT_DIR_RE.exec(path.slice(path.lastIndexOf("/") + 1));
          if (cm) saves.set(Number(cm[1]), { path, at });
        }
      }
      if (seg.includes("{") && seg.includes("}")) {
        const d = parseMetricsDict(seg);
        if (d && ["loss", "eval_loss", "learning_rate", "grad_norm", "epoch", "train_runtime", "train_loss"].some((k) => k in d)) {
          // nan/inf (a diverging run) leave the last finite value in place, as on the push path.
          out.loss = finite(d.loss) ?? out.loss;
          // The training loss only (not eval_loss, not the final train_loss summary), with where it was logged.
          if ("loss" in d) {
            const v = finite(d.loss);
            if (v !== undefined) losses.push({ loss: v, at });
            else if (nonFinite(d.loss)) losses.push({ loss: Number.NaN, at });
          }
          out.evalLoss = finite(d.eval_loss) ?? out.evalLoss;
          out.learningRate = finite(d.learning_rate) ?? out.learningRate;
          out.gradNorm = finite(d.grad_norm) ?? out.gradNorm;
          out.epoch = finite(d.epoch) ?? out.epoch;
          const s = finite(d.step);
          if (s !== undefined && Number.isInteger(s) && s >= 0 && s >= (dictStep ?? 0)) dictStep = s;
          for (const key of GLOBAL_TOKENS_KEYS) {
            const v = finite(d[key]);
            if (v !== undefined) {
              out.tokensPerSecond = v;
              break;
            }
          }
        }
      }
      const bar = parseBar(seg, at);
      if (bar) bars.push(bar);
    } catch {
      // A line we cannot read is skipped; the rest of the tail still counts.
    }
  });

  const total = trainingTotal(bars, announced, hints.totalSteps);
  const training = total === undefined ? [] : bars.filter((b) => b.total === total);
  // Steps only go forward within one pod's log: a lower n is a stale redraw.
  let newest: Bar | undefined;
  for (const b of training) if (!newest || b.n >= newest.n) newest = b;
  const totalSteps = total ?? announced ?? hints.totalSteps;
  if (totalSteps !== undefined) out.totalSteps = totalSteps;
  // HF draws the step's bar update before it logs the step's metrics: a loss belongs to the newest bar above it.
  for (const l of losses) {
    const bar = training.reduce((m, b) => (b.at < l.at ? Math.max(m, b.n) : m), -1);
    if (bar >= 0) out.losses.push({ step: bar, loss: l.loss });
  }
  const step = Math.max(newest?.n ?? -1, dictStep ?? -1);
  if (step >= 0) out.step = step;
  if (newest) {
    const left = (out.totalSteps ?? newest.total) - (out.step ?? newest.n);
    const eta = newest.remaining ?? (newest.secondsPerStep !== undefined ? newest.secondsPerStep * left : undefined);
    if (eta !== undefined && Number.isFinite(eta)) out.etaSeconds = Math.max(0, Math.round(eta));
  }

  // HF saves synchronously inside the training loop (all ranks, for sharded
  // checkpoints), so a bar past the step, or the end of training, means the
  // save finished; the newest save may still be writing.
  const maxBarAfter = (at: number) => training.reduce((m, b) => (b.at > at ? Math.max(m, b.n) : m), -1);
  const stepsSaved = [...saves.keys()].sort((a, b) => a - b);
  for (const s of stepsSaved) {
    const save = saves.get(s)!;
    const laterSave = stepsSaved.some((o) => o > s && saves.get(o)!.at > save.at);
    if (maxBarAfter(save.at) > s || laterSave || completedAt > save.at) out.checkpoints.push({ step: s, path: save.path });
  }
  out.checkpoints = out.checkpoints.slice(-MAX_CHECKPOINTS);
  return out;
}
