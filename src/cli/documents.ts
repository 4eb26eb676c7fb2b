/** Reading the user's YAML: plain Axolotl configs or FineTuneJob manifests, one or more documents. */
import { readFileSync } from "node:fs";
import { parseAxolotlYamlDocuments, type AxolotlYamlError } from "../axolotl/yaml.ts";
import { API_VERSION, KIND } from "../api/group.ts";

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface InputDocument {
  index: number;
  value: unknown;
  kind: "FineTuneJob" | "AxolotlConfig";
}

/** Exit code 2 for a missing/unreadable file or YAML syntax errors (with line and column). */
export function readDocuments(file: string): InputDocument[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`${file}: cannot read file${code === "ENOENT" ? ": no such file" : code ? ` (${code})` : ""}`, 2);
  }
  // Read as Axolotl reads its config (PyYAML safe_load, YAML 1.1): `yes`, `500_000`, `2e-4` mean what they mean there.
  let values: unknown[];
  try {
    values = parseAxolotlYamlDocuments(text);
  } catch (err) {
    const e = err as AxolotlYamlError;
    throw new CliError(`${file}${e.line !== undefined ? `:${e.line}:${e.col}` : ""}: YAML error: ${e.message.split("\n")[0]}`, 2);
  }
  const out: InputDocument[] = [];
  for (const [index, value] of values.entries()) {
    if (value === null || value === undefined) continue; // empty document (e.g. a trailing ---)
    out.push({ index, value, kind: isFineTuneJob(value) ? "FineTuneJob" : "AxolotlConfig" });
  }
  return out;
}

function isFineTuneJob(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.kind === KIND || v.apiVersion === API_VERSION;
}

export interface WrapOptions {
  name: string;
  namespace?: string;
  nodes: number;
  gpusPerNode: number;
  image?: string;
}

/** Wraps a plain Axolotl config into a FineTuneJob manifest (submit, render). */
export function wrapConfig(config: unknown, opts: WrapOptions): Record<string, unknown> {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: opts.name, ...(opts.namespace ? { namespace: opts.namespace } : {}) },
    spec: {
      nodes: opts.nodes,
      gpusPerNode: opts.gpusPerNode,
      ...(opts.image ? { image: opts.image } : {}),
      config,
    },
  };
}

/** A DNS-1123 name from a config file name: `configs/llama-3.1 lora.yml` -> `llama-3-1-lora`. */
export function nameFromFile(file: string): string {
  const base = file
    .split("/")
    .pop()!
    .replace(/\.(ya?ml)$/i, "");
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return name || "finetune";
}
