/**
 * Sizing warnings on a FineTuneJob (src/sizing/estimate.ts has the formula): host RAM below 2x the model's size
 * (spec.resources.memory), and, when spec.gpuMemory says how much one GPU has, an estimate per GPU above it. The
 * model's size comes from spec.modelParameters or the base_model name (the operator reads no model files); nothing
 * is said when neither gives it. Warnings, not errors: the estimate is an estimate.
 */
import type { FineTuneJobSpec } from "../api/schema.ts";
import { estimate, formatGiB, paramsFromName, quantityBytes, shapeForParams, sizingFromConfig } from "../sizing/estimate.ts";
import type { ValidationIssue } from "./job.ts";

export function checkSizing(config: Record<string, unknown>, spec: FineTuneJobSpec): ValidationIssue[] {
  const params = spec.modelParameters
    ? paramsFromName(spec.modelParameters)
    : typeof config.base_model === "string"
      ? paramsFromName(config.base_model)
      : undefined;
  if (!params) return [];
  const gpu = spec.gpuMemory !== undefined ? quantityBytes(spec.gpuMemory) : undefined;
  const host = spec.resources?.memory !== undefined ? quantityBytes(spec.resources.memory) : undefined;
  const r = estimate(
    sizingFromConfig(config, shapeForParams(params), {
      nodes: spec.nodes,
      gpusPerNode: spec.gpusPerNode,
      gpuMemoryBytes: gpu ?? Number.POSITIVE_INFINITY,
      ...(host !== undefined ? { hostMemoryBytes: host } : {}),
    }),
  );
  const issues: ValidationIssue[] = [];
  const size = `${(params / 1e9).toFixed(1)}B parameters`;
  if (gpu !== undefined && !r.fits) {
    issues.push({
      severity: "warning",
      path: "spec.gpuMemory",
      message: `estimated ${formatGiB(r.perGpuBytes)} per GPU for ${size} does not fit ${formatGiB(gpu)}; the biggest term is ${r.biggest.name} (${formatGiB(r.biggest.bytes)}); see \`kubectl finetune plan\``,
    });
  }
  if (r.hostRamOk === false) {
    issues.push({
      severity: "warning",
      path: "spec.resources.memory",
      message: `host RAM should be at least 2x the model's size: ${formatGiB(r.hostRamNeededBytes)} for ${size} at 16-bit`,
    });
  }
  return issues;
}
