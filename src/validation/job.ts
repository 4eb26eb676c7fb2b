/**
 * Validation of a whole FineTuneJob: the spec's own schema, the embedded
 * Axolotl config, and the rules that need both (world size, storage for
 * several nodes). One module, used by the controller, the CLI and the tests.
 */
import type { z } from "zod";
import { API_VERSION, KIND } from "../api/group.ts";
import { FineTuneJobSpecSchema, defaultAccessModes, type FineTuneJobSpec } from "../api/schema.ts";
import { validateAxolotlConfig, type ValidationIssue } from "../axolotl/validate.ts";
import { MAX_JOB_NAME_LENGTH } from "../render/names.ts";
import { checkShutdownSave } from "./shutdown.ts";
import { checkSizing } from "./sizing.ts";

export type { ValidationIssue };

/** A validated FineTuneJob (or spec): the defaulted spec when it parsed, and every issue found. */
export interface JobValidation {
  spec?: FineTuneJobSpec;
  issues: ValidationIssue[];
}

export function hasErrors(issues: readonly ValidationIssue[]): boolean {
  return issues.some((i) => i.severity === "error");
}

/** Formats a zod issue path as `spec.storage.output.size` / `spec.env[2]`. */
function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function zodIssues(prefix: string, error: z.ZodError): ValidationIssue[] {
  return error.issues
    .map((issue) => {
      // .strict() reports unknown keys on the parent; name each key instead, since that is what the user mistyped.
      if (issue.code === "unrecognized_keys") {
        const keys = (issue as { keys: string[] }).keys;
        return keys.map((key) => ({ severity: "error" as const, path: formatPath(prefix, [...issue.path, key]), message: `unknown field` }));
      }
      return [{ severity: "error" as const, path: formatPath(prefix, issue.path), message: issue.message }];
    })
    .flat();
}

/** Parses and defaults the spec; reports schema violations with their paths. */
export function validateSpec(rawSpec: unknown): JobValidation {
  const parsed = FineTuneJobSpecSchema.safeParse(rawSpec ?? {});
  if (!parsed.success) return { issues: zodIssues("spec", parsed.error) };
  const spec = parsed.data;
  const issues: ValidationIssue[] = [];
  if ((spec.config === undefined) === (spec.configFrom === undefined)) {
    issues.push({ severity: "error", path: "spec.config", message: "exactly one of spec.config and spec.configFrom must be set" });
  }
  if (spec.nodes > 1) {
    // Every rank writes checkpoint shards into output_dir and reads the prepared dataset: one shared filesystem is required (Axolotl #884).
    const modes = spec.storage.output.existingClaim ? undefined : defaultAccessModes(spec);
    if (modes && !modes.includes("ReadWriteMany")) {
      issues.push({
        severity: "error",
        path: "spec.storage.output.accessModes",
        message: `nodes is ${spec.nodes}: the output claim must be ReadWriteMany so every node can write checkpoints and read the prepared dataset`,
      });
    }
  }
  if (spec.storage.output.existingClaim && spec.storage.output.deletionPolicy === "Delete") {
    issues.push({
      severity: "error",
      path: "spec.storage.output.deletionPolicy",
      message: "Delete applies only to claims the operator creates; an existingClaim is never deleted",
    });
  }
  return { spec, issues };
}

/** Validates the Axolotl config in the context of the job's shape; paths are prefixed with `prefix` (e.g. `spec.config`). */
export function validateConfigForSpec(config: unknown, spec: FineTuneJobSpec | undefined, prefix = "spec.config"): ValidationIssue[] {
  const ctx = spec ? { nodes: spec.nodes, gpusPerNode: spec.gpusPerNode, image: spec.image } : undefined;
  const issues = validateAxolotlConfig(config, ctx).map((issue) => ({
    ...issue,
    path: issue.path && issue.path !== "(root)" ? `${prefix}.${issue.path}`.replace(/\.\[/g, "[") : prefix,
  }));
  if (spec && typeof config === "object" && config !== null && !Array.isArray(config)) {
    issues.push(...checkShutdownSave(config as Record<string, unknown>, spec, prefix));
    issues.push(...checkSizing(config as Record<string, unknown>, spec));
  }
  return issues;
}

/** The name check the CRD's CEL rule makes at admission, for manifests the API server has not seen (the CLI) and older CRDs. */
function validateName(name: unknown): ValidationIssue[] {
  if (typeof name !== "string" || name.length <= MAX_JOB_NAME_LENGTH) return [];
  return [
    {
      severity: "error",
      path: "metadata.name",
      message: `must be at most ${MAX_JOB_NAME_LENGTH} characters (pod host names derived from it are limited to 63)`,
    },
  ];
}

/** The name and the spec of a FineTuneJob; the Axolotl config is checked where it is resolved (validateConfigForSpec). */
export function validateNameAndSpec(name: unknown, rawSpec: unknown): JobValidation {
  const { spec, issues } = validateSpec(rawSpec);
  return { ...(spec ? { spec } : {}), issues: [...validateName(name), ...issues] };
}

/**
 * Validates a FineTuneJob manifest. `resolvedConfig` is the Axolotl config
 * when it comes from a ConfigMap (configFrom); the inline one is used otherwise.
 */
export function validateFineTuneJob(manifest: unknown, resolvedConfig?: { config: unknown; source: string }): JobValidation {
  if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) {
    return { issues: [{ severity: "error", path: "(root)", message: "a FineTuneJob must be a YAML mapping" }] };
  }
  const obj = manifest as Record<string, unknown>;
  const issues: ValidationIssue[] = [];
  if (obj.apiVersion !== undefined && obj.apiVersion !== API_VERSION) issues.push({ severity: "error", path: "apiVersion", message: `must be ${API_VERSION}` });
  if (obj.kind !== undefined && obj.kind !== KIND) issues.push({ severity: "error", path: "kind", message: `must be ${KIND}` });
  const checked = validateNameAndSpec((obj.metadata as Record<string, unknown> | undefined)?.name, obj.spec);
  issues.push(...checked.issues);
  const spec = checked.spec;
  if (spec?.config !== undefined) issues.push(...validateConfigForSpec(spec.config, spec, "spec.config"));
  else if (resolvedConfig) issues.push(...validateConfigForSpec(resolvedConfig.config, spec, resolvedConfig.source));
  return { ...(spec ? { spec } : {}), issues };
}
