/**
 * What a FineTuneJob needs, in creation order: which stages run, and the objects the planner creates and
 * `kubectl finetune render` prints. One list for both, so the CLI shows exactly what the operator would create.
 * Rendering is lazy: the planner renders only the objects it finds missing (a reconcile of a running job renders
 * nothing), and a stage's Job for the attempt it starts.
 */
import type { V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Service } from "@kubernetes/client-node";
import { STAGES, type Stage } from "../api/group.ts";
import type { FineTuneJobSpec } from "../api/schema.ts";
import { trainsMergeableAdapter } from "./axolotl-config.ts";
import {
  renderConfigMap,
  renderLauncherConfigMap,
  renderMergeJob,
  renderOutputClaim,
  renderPreprocessJob,
  renderService,
  renderSmokeTestJob,
  renderTrainJob,
  type Rendered,
  type RenderInput,
} from "./children.ts";

/** An object the operator creates: every builder sets apiVersion and kind. */
export type Creatable = Rendered<V1Job> | Rendered<V1ConfigMap> | Rendered<V1Service> | Rendered<V1PersistentVolumeClaim>;

/** Whether a stage runs: preprocess unless disabled, train always, smoke test and merge when asked or when a LoRA/QLoRA adapter is trained. */
export function stageEnabled(stage: Stage, spec: FineTuneJobSpec, config: Record<string, unknown>): boolean {
  if (stage === "preprocess") return spec.preprocess.enabled;
  if (stage === "train") return true;
  if (stage === "smoke") return spec.smokeTest.enabled ?? trainsMergeableAdapter(config);
  return spec.merge.enabled ?? trainsMergeableAdapter(config);
}

/** The stages that run, in order. */
export function enabledStages(spec: FineTuneJobSpec, config: Record<string, unknown>): Stage[] {
  return STAGES.filter((stage) => stageEnabled(stage, spec, config));
}

/** The objects every stage's pods mount; created before any stage Job, independent of each other. */
export type BaseChild = "claim" | "configMap" | "launcher" | "service";

export interface DesiredObjects {
  /** In creation order; `render` gives undefined for an object this job does not need (no claim with existingClaim). */
  base: ReadonlyArray<{ child: BaseChild; render: () => Creatable | undefined }>;
  stages: readonly Stage[];
  stageJob(stage: Stage, attempt: number): Rendered<V1Job>;
}

export function desiredObjects(input: RenderInput, stages: readonly Stage[]): DesiredObjects {
  return {
    base: [
      { child: "claim", render: () => renderOutputClaim(input) },
      { child: "configMap", render: () => renderConfigMap(input) },
      { child: "launcher", render: () => renderLauncherConfigMap(input.job.namespace, input.settings) },
      { child: "service", render: () => renderService(input) },
    ],
    stages,
    stageJob: (stage, attempt) => STAGE_BUILDERS[stage](input, attempt),
  };
}

/** Every object, each stage at one attempt, in creation order (what `kubectl finetune render` prints). */
export function renderAll(desired: DesiredObjects, attempt: number): Creatable[] {
  const base = desired.base.map((b) => b.render()).filter((o) => o !== undefined);
  return [...base, ...desired.stages.map((stage) => desired.stageJob(stage, attempt))];
}

const STAGE_BUILDERS: Record<Stage, (input: RenderInput, attempt: number) => Rendered<V1Job>> = {
  preprocess: renderPreprocessJob,
  train: renderTrainJob,
  smoke: renderSmokeTestJob,
  merge: renderMergeJob,
};
