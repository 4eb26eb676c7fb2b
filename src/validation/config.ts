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
import { LruCache } from "../runtime/lru.ts";
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
  /** Reads the `configFrom` ConfigMap; rejects with the API error (404 when it does not exist). */
  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap>;
}

export interface ConfigResolution {
  axolotlConfig?: Record<string, unknown>;
  issues: ValidationIssue[];
  /** The `configFrom` ConfigMap does not exist yet and the run has not started: wait for it (GitOps order). */
  missingConfigMap?: { name: string; path: string };
}

/** Parsed rendered configs by ConfigMap resourceVersion; never stale (the version is in the key), bounded in memory. Read-only. */
const renderedConfigs = new LruCache<Record<string, unknown>>(512);

export async function resolveAxolotlConfig(src: ConfigSources): Promise<ConfigResolution> {
  const { namespace: ns, spec, rendered, needsValidation } = src;
  const issues: ValidationIssue[] = [];
  let missingConfigMap: ConfigResolution["missingConfigMap"];
  let axolotlConfig: Record<string, unknown> | undefined;
  if (rendered?.data?.["config.yaml"] && (!needsValidation || src.started)) {
    const text = rendered.data["config.yaml"];
    // Parsing the YAML was ~10% of the operator's CPU in a 100-job burst; a job's reconciles cluster in time.
    axolotlConfig = renderedConfigs.getOrCompute(
      `${ns}/${rendered.metadata?.name}@${rendered.metadata?.resourceVersion}`,
      () => parseAxolotlYaml(text) as Record<string, unknown>,
    );
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
