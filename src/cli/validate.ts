/** `kubectl finetune validate FILE`: every error and warning with its key path; exit 0 valid, 1 invalid, 2 unreadable. */
import { validateAxolotlConfig } from "../axolotl/validate.ts";
import { hasErrors, validateFineTuneJob, type ValidationIssue } from "../validation/job.ts";
import { readDocuments, type InputDocument } from "./documents.ts";

export interface ValidateOptions {
  nodes: number;
  gpusPerNode: number;
}

export interface DocumentReport {
  label: string;
  issues: ValidationIssue[];
}

export function validateDocument(doc: InputDocument, opts: ValidateOptions): DocumentReport {
  if (doc.kind === "FineTuneJob") {
    const meta = (doc.value as { metadata?: { name?: string } }).metadata;
    const { issues, spec } = validateFineTuneJob(doc.value);
    if (spec?.configFrom) {
      const ref = spec.configFrom.configMapKeyRef;
      issues.push({ severity: "warning", path: "spec.configFrom", message: `the Axolotl config comes from ConfigMap ${ref.name} (key ${ref.key}) and is validated by the operator when applied` });
    }
    return { label: `FineTuneJob ${meta?.name ?? "(unnamed)"}`, issues };
  }
  return { label: "Axolotl config", issues: validateAxolotlConfig(doc.value, { nodes: opts.nodes, gpusPerNode: opts.gpusPerNode }) };
}

export function formatIssue(issue: ValidationIssue): string {
  return `  ${issue.severity}: ${issue.path || "(root)"}: ${issue.message}`;
}

export function runValidate(file: string, opts: ValidateOptions, out: (line: string) => void): number {
  const docs = readDocuments(file);
  if (docs.length === 0) {
    out(`${file}: empty: expected an Axolotl config or FineTuneJob manifests`);
    return 1;
  }
  let invalid = 0;
  for (const doc of docs) {
    const report = validateDocument(doc, opts);
    const errors = report.issues.filter((i) => i.severity === "error").length;
    const warnings = report.issues.length - errors;
    const where = docs.length > 1 ? `${file} (document ${doc.index + 1})` : file;
    out(`${where}: ${report.label}: ${errors ? "INVALID" : "valid"} (${errors} error(s), ${warnings} warning(s))`);
    for (const issue of report.issues) out(formatIssue(issue));
    if (hasErrors(report.issues)) invalid++;
  }
  return invalid > 0 ? 1 : 0;
}
