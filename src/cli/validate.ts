/**
 * `kubectl finetune validate PATH...`: files and folders (their *.yml / *.yaml, recursively), one verdict line per
 * file (and per document when a file holds several), then every error and warning with its key path. Exit 0 when
 * all are valid, 1 when any is invalid, 2 when any cannot be read or is not YAML.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { validateAxolotlConfig } from "../axolotl/validate.ts";
import { hasErrors, validateFineTuneJob, type ValidationIssue } from "../validation/job.ts";
import type { ModelInfo } from "../axolotl/model-family.ts";
import { CliError, readDocuments, type InputDocument } from "./documents.ts";
import { localModelInfo } from "./model-config.ts";

export interface ValidateOptions {
  nodes: number;
  gpusPerNode: number;
  /** True when neither --nodes nor --gpus-per-node was given: the shape is a guess, and we say so. */
  shapeAssumed?: boolean;
  /** --image: a plain config meant for another trainer image (newer names become warnings). */
  image?: string;
}

export interface DocumentReport {
  label: string;
  issues: ValidationIssue[];
  /** Said after the verdict, e.g. the job shape a plain config was checked for. */
  note?: string;
}

/** "1 node x 1 GPU" / "2 nodes x 8 GPUs". */
function shapeText(opts: ValidateOptions): string {
  return `${opts.nodes} node${opts.nodes === 1 ? "" : "s"} x ${opts.gpusPerNode} GPU${opts.gpusPerNode === 1 ? "" : "s"}`;
}

function validateDocument(doc: InputDocument, opts: ValidateOptions): DocumentReport {
  if (doc.kind === "FineTuneJob") {
    const meta = (doc.value as { metadata?: { name?: string } }).metadata;
    const { issues, spec } = validateFineTuneJob(doc.value);
    if (spec?.configFrom) {
      const ref = spec.configFrom.configMapKeyRef;
      issues.push({
        severity: "warning",
        path: "spec.configFrom",
        message: `the Axolotl config comes from ConfigMap ${ref.name} (key ${ref.key}) and is validated by the operator when applied`,
      });
    }
    return { label: `FineTuneJob ${meta?.name ?? "(unnamed)"}`, issues };
  }
  // A plain config has no shape of its own: rules that depend on it (DeepSpeed needs 2 GPUs) use the flags'.
  const note = `checked for ${shapeText(opts)}${opts.shapeAssumed ? ", assumed: pass --nodes and --gpus-per-node for the job's shape" : ""}`;
  return {
    label: "Axolotl config",
    issues: validateAxolotlConfig(doc.value, {
      nodes: opts.nodes,
      gpusPerNode: opts.gpusPerNode,
      ...(opts.image ? { image: opts.image } : {}),
      ...modelOf(doc.value),
    }),
    note,
  };
}

/** The base model's config.json when this machine has it (for the FSDP layer class rule). */
function modelOf(config: unknown): { model?: ModelInfo } {
  const base = typeof config === "object" && config !== null ? (config as Record<string, unknown>).base_model : undefined;
  const model = localModelInfo(base);
  return model ? { model } : {};
}

export function formatIssue(issue: ValidationIssue): string {
  return `  ${issue.severity}: ${issue.path || "(root)"}: ${issue.message}`;
}

function counts(issues: ValidationIssue[]): string {
  const errors = issues.filter((i) => i.severity === "error").length;
  return `${errors ? "INVALID" : "valid"} (${errors} error(s), ${issues.length - errors} warning(s))`;
}

/** One file: exit 0 valid, 1 invalid. Throws CliError (exit 2) when it cannot be read. */
function runValidate(file: string, opts: ValidateOptions, out: (line: string) => void): number {
  const docs = readDocuments(file);
  if (docs.length === 0) {
    out(`${file}: empty: expected an Axolotl config or FineTuneJob manifests`);
    return 1;
  }
  const reports = docs.map((doc) => ({ doc, report: validateDocument(doc, opts) }));
  const invalid = reports.filter(({ report }) => hasErrors(report.issues)).length;
  if (docs.length > 1) out(`${file}: ${invalid ? "INVALID" : "valid"} (${docs.length} documents, ${invalid} invalid)`);
  for (const { doc, report } of reports) {
    const where = docs.length > 1 ? `${file} (document ${doc.index + 1})` : file;
    out(`${where}: ${report.label}: ${counts(report.issues)}${report.note ? ` (${report.note})` : ""}`);
    for (const issue of report.issues) out(formatIssue(issue));
  }
  return invalid > 0 ? 1 : 0;
}

/** The YAML files under `dir`, sorted, recursively (hidden entries skipped). */
function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith("."))
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/i.test(e.name) ? [join(dir, e.name)] : []));
}

/**
 * Several paths: every file gets its verdict even when another cannot be read (that one gets an `unreadable`
 * line and makes the exit code 2). A single file keeps the single-file behaviour (an unreadable one is an error).
 */
export function runValidateAll(paths: string[], opts: ValidateOptions, out: (line: string) => void): number {
  const isDir = (p: string) => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  };
  if (paths.length === 1 && !isDir(paths[0]!)) return runValidate(paths[0]!, opts, out);
  let worst = 0;
  for (const path of paths) {
    const files = isDir(path) ? yamlFiles(path) : [path];
    if (files.length === 0) {
      out(`${path}: unreadable: no .yml or .yaml files in this folder`);
      worst = 2;
    }
    for (const file of files) {
      try {
        worst = Math.max(worst, runValidate(file, opts, out));
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        out(`${file}: unreadable: ${err.message.startsWith(`${file}`) ? err.message.slice(file.length).replace(/^:\s*/, "") : err.message}`);
        worst = 2;
      }
    }
  }
  return worst;
}
