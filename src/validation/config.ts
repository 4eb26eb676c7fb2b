/**
 * Config resolution: which Axolotl config a FineTuneJob's reconcile works from, read and parsed as Axolotl reads
 * it, with the config's validation issues when the generation needs validating. The rendered copy once it exists
 * (it is what the run uses), else `spec.config`, else the `spec.configFrom` ConfigMap. A started run keeps rendering
 * from its copy even while an edit is being validated: edits after start are reported, not applied.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import type { FineTuneJobSpec } from "../api/schema.ts";
import { parseAxolotlYaml } from "../axolotl/yaml.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import { validateConfigForSpec, type ValidationIssue } from "./job.ts";

export interface ConfigSources {
  namespace: string;
  /** The defaulted spec (undefined when it failed its schema). */
  spec: FineTuneJobSpec | undefined;
  /** The operator's rendered ConfigMap for the job, when the cache has it. */
  rendered: V1ConfigMap | undefined;
  /** The Validated condition does not match this generation. */
  needsValidation: boolean;
  /** The run has started (status.specHash is set). */
  started: boolean;
  /**
   * The caller's memory of this job's parsed rendered config, by the ConfigMap's resourceVersion (the reconciler keeps
   * one per job): the rendered copy never changes once created, and parsing its YAML on every pass was about 10 % of
   * the operator's CPU in a burst of 100 (an earlier round's profile). Parsed each time when absent.
   */
  renderedMemo?: { get(version: string, compute: () => Record<string, unknown>): Record<string, unknown> };
  /** Reads the `configFrom` ConfigMap; rejects with the API error (404 when it does not exist). */
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap>;
}

export interface ConfigResolution {
  axolotlConfig?: Record<string, unknown>;
  issues: ValidationIssue[];
  /** The `configFrom` ConfigMap does not exist yet and the run has not started: wait for it (GitOps order). */
  missingConfigMap?: { name: string; path: string };
}

export async function resolveAxolotlConfig(src: ConfigSources): Promise<ConfigResolution> {
  const { namespace: ns, spec, rendered, needsValidation } = src;
  const issues: ValidationIssue[] = [];
  let missingConfigMap: ConfigResolution["missingConfigMap"];
  let axolotlConfig: Record<string, unknown> | undefined;
  if (rendered?.data?.["config.yaml"] && (!needsValidation || src.started)) {
    const text = rendered.data["config.yaml"];
    const parse = () => parseAxolotlYaml(text) as Record<string, unknown>;
    const version = rendered.metadata?.resourceVersion;
    // Read-only: reconciles of the job share it.
    axolotlConfig = src.renderedMemo && version ? src.renderedMemo.get(version, parse) : parse();
  } else if (spec?.config) {
    axolotlConfig = spec.config;
  } else if (spec?.configFrom) {
    const ref = spec.configFrom.configMapKeyRef;
    const source = `spec.configFrom(${ref.name}/${ref.key})`;
    try {
      const cm = await src.getConfigMap(ns, ref.name);
      const text = cm.data?.[ref.key];
      if (text === undefined)
        issues.push({ severity: "error", path: "spec.configFrom.configMapKeyRef.key", message: `ConfigMap ${ref.name} has no key ${ref.key}` });
      else {
        try {
          axolotlConfig = parseAxolotlYaml(text) as Record<string, unknown>;
        } catch (err) {
          issues.push({ severity: "error", path: source, message: `not valid YAML: ${errorMessage(err)}` });
        }
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // Before the run starts, a missing ConfigMap means waiting for it (GitOps applies in any order); see controller/planner/validation.ts.
      if (!src.started) missingConfigMap = { name: ref.name, path: "spec.configFrom.configMapKeyRef.name" };
      else issues.push({ severity: "error", path: "spec.configFrom.configMapKeyRef.name", message: `ConfigMap ${ref.name} not found in namespace ${ns}` });
    }
    if (axolotlConfig !== undefined && needsValidation) issues.push(...validateConfigForSpec(axolotlConfig, spec, source));
  }
  if (spec?.config && needsValidation) issues.push(...validateConfigForSpec(spec.config, spec, "spec.config"));
  return { ...(axolotlConfig !== undefined ? { axolotlConfig } : {}), issues, ...(missingConfigMap ? { missingConfigMap } : {}) };
}
