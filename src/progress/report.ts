/**
 * What a trainer reports (src/trainer/launcher/ POSTs its progress state as
 * JSON), validated and mapped onto status.progress / status.checkpoints. Pure.
 */
import { z } from "zod";
import { MAX_CHECKPOINTS, type Checkpoint, type Progress } from "../api/schema.ts";
import type { LossSample } from "./loss.ts";

export const MAX_BODY_BYTES = 64 * 1024;

const num = z.number().finite().nullish();
const ReportSchema = z.object({
  step: z.number().int().nonnegative().nullish(),
  totalSteps: z.number().int().positive().nullish(),
  epoch: num,
  loss: num,
  evalLoss: num,
  learningRate: num,
  gradNorm: num,
  tokensPerSecond: num,
  etaSeconds: num,
  /** The step at which `loss` was logged (the launcher's tqdm step then): keys the loss history, so a resent report adds nothing. */
  lossStep: z.number().int().nonnegative().nullish(),
  /** The step at which the first NaN/inf training loss was logged (JSON cannot carry NaN itself). */
  lossNonFiniteStep: z.number().int().nonnegative().nullish(),
  /** The trainer's last report (training ended); it may bypass the per-job rate limit once. */
  final: z.boolean().nullish(),
  checkpoints: z
    .array(z.object({ step: z.number().int().nonnegative(), path: z.string().max(1024), complete: z.boolean().optional() }))
    .max(1000)
    .nullish(),
});

export interface ParsedReport {
  progress: Progress;
  checkpoints: Checkpoint[];
  final: boolean;
  /** For status.lossHistory (loss.ts); the server carries them over when it coalesces reports. */
  lossSamples: LossSample[];
}

export function parseReport(body: string, now: Date): ParsedReport | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { error: "body is not JSON" };
  }
  const parsed = ReportSchema.safeParse(json);
  if (!parsed.success)
    return {
      error: `invalid report: ${parsed.error.issues
        .map((i) => `${i.path.join(".")}: ${i.message}`)
        .slice(0, 3)
        .join("; ")}`,
    };
  const r = parsed.data;
  const progress: Progress = { updatedAt: now.toISOString(), source: "push" };
  const set = <K extends keyof Progress>(key: K, value: Progress[K] | null | undefined) => {
    if (value !== null && value !== undefined) progress[key] = value;
  };
  set("step", r.step);
  set("totalSteps", r.totalSteps);
  set("epoch", r.epoch);
  set("loss", r.loss);
  set("evalLoss", r.evalLoss);
  set("learningRate", r.learningRate);
  set("gradNorm", r.gradNorm);
  set("tokensPerSecond", r.tokensPerSecond);
  if (r.etaSeconds !== null && r.etaSeconds !== undefined) progress.etaSeconds = Math.max(0, Math.round(r.etaSeconds));
  Object.assign(progress, summarize(r.step ?? undefined, r.totalSteps ?? undefined));
  // Only complete checkpoints are worth showing: they are what a restart resumes from.
  const checkpoints = (r.checkpoints ?? [])
    .filter((c) => c.complete !== false)
    .map((c) => ({ step: c.step, path: c.path }))
    .sort((a, b) => a.step - b.step)
    .slice(-MAX_CHECKPOINTS);
  const lossSamples: LossSample[] = [];
  if (typeof r.lossStep === "number" && typeof r.loss === "number") lossSamples.push({ step: r.lossStep, loss: r.loss });
  if (typeof r.lossNonFiniteStep === "number") lossSamples.push({ step: r.lossNonFiniteStep, loss: Number.NaN });
  return { progress, checkpoints, final: r.final === true, lossSamples };
}

/** percent and the `kubectl get` summary ("120/873 (13%)"), the same for pushed and log-derived progress. */
export function summarize(step: number | undefined, totalSteps: number | undefined): Pick<Progress, "percent" | "summary"> {
  if (step === undefined) return {};
  if (!totalSteps) return { summary: `step ${step}` };
  const percent = Math.min(100, Math.floor((step / totalSteps) * 1000) / 10);
  return { percent, summary: `${step}/${totalSteps} (${Math.floor(percent)}%)` };
}
