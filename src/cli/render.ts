/** `kubectl finetune render FILE`: the child objects the operator would create, as YAML. */
import { stringifyAxolotlYaml } from "../axolotl/yaml.ts";
import type { FineTuneJobSpec } from "../api/schema.ts";
import { launcherSource } from "../trainer/source.ts";
import type { RenderInput } from "../render/children.ts";
import { desiredObjects, enabledStages, renderAll } from "../render/desired.ts";
import { hasErrors, validateFineTuneJob } from "../validation/job.ts";
import { CliError, readDocuments, wrapConfig, type WrapOptions } from "./documents.ts";
import { formatIssue } from "./validate.ts";

function renderChildren(manifest: Record<string, unknown>): unknown[] {
  const { spec, issues } = validateFineTuneJob(manifest);
  if (!spec || hasErrors(issues))
    throw new CliError(
      `cannot render an invalid FineTuneJob:\n${issues
        .filter((i) => i.severity === "error")
        .map(formatIssue)
        .join("\n")}`,
      1,
    );
  if (!spec.config) throw new CliError("render needs an inline spec.config (configFrom is resolved by the operator in the cluster)", 1);
  const meta = (manifest.metadata ?? {}) as { name?: string; namespace?: string; uid?: string };
  const input: RenderInput = {
    job: { name: meta.name ?? "finetune", namespace: meta.namespace ?? "default", uid: meta.uid ?? "00000000-0000-0000-0000-000000000000" },
    spec: spec as FineTuneJobSpec,
    axolotlConfig: spec.config,
    settings: { launcherSource: launcherSource() },
  };
  return renderAll(desiredObjects(input, enabledStages(spec, spec.config)), 0);
}

export function runRender(file: string, wrap: Omit<WrapOptions, "name"> & { name: string }, out: (text: string) => void): number {
  const docs = readDocuments(file);
  if (docs.length === 0) throw new CliError(`${file}: empty`, 1);
  const objects = docs.flatMap((doc) => renderChildren(doc.kind === "FineTuneJob" ? (doc.value as Record<string, unknown>) : wrapConfig(doc.value, wrap)));
  // Quoted for YAML 1.1 readers (kubectl's): strings such as "yes" or "500_000" stay strings (src/axolotl/yaml.ts).
  out(objects.map((o) => stringifyAxolotlYaml(o)).join("---\n"));
  return 0;
}
