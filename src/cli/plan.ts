/**
 * `kubectl finetune plan CONFIG --nodes N --gpus-per-node G [--gpu-memory 80Gi] [--host-memory 256Gi] [--params 8B]`:
 * GPU memory per GPU and host RAM the run needs, before anything is scheduled (src/sizing/estimate.ts has the
 * formula). Exit 0 when it fits, 1 when it does not (the biggest term named), 2 when the input cannot be read or the
 * model's size is unknown.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  estimate,
  formatGiB,
  paramsFromName,
  quantityBytes,
  shapeForParams,
  shapeFromHfConfig,
  sizingFromConfig,
  type ModelShape,
} from "../sizing/estimate.ts";
import { CliError, readDocuments } from "./documents.ts";

export interface PlanOptions {
  nodes: number;
  gpusPerNode: number;
  gpuMemory?: string;
  hostMemory?: string;
  params?: string;
  /** Where a Hugging Face cache may hold the model's config.json (default $HF_HOME or ~/.cache/huggingface). */
  hfHome?: string;
}

/** "80Gi" (Kubernetes quantity), "24G", "24GB" -> bytes. */
export function parseBytes(text: string, flag: string): number {
  const bytes = quantityBytes(text);
  if (bytes === undefined) throw new CliError(`--${flag} must be a size such as 80Gi or 24G, got "${text}"`, 2);
  return bytes;
}

/** "8B", "0.5B", "350M" or a plain number. */
function parseParams(text: string): number {
  const plain = Number(text);
  if (Number.isFinite(plain) && plain > 0) return plain;
  const p = paramsFromName(text);
  if (!p) throw new CliError(`--params must be a parameter count such as 8B or 350M, got "${text}"`, 2);
  return p;
}

/** The model's shape: its config.json (a local base_model folder or the Hugging Face cache), else --params, else the name. */
function resolveModel(baseModel: string, opts: PlanOptions): { shape: ModelShape; source: string } {
  const candidates = [join(baseModel, "config.json")];
  const hub = join(
    opts.hfHome ?? process.env.HF_HOME ?? join(process.env.HOME ?? "", ".cache", "huggingface"),
    "hub",
    `models--${baseModel.replace(/\//g, "--")}`,
    "snapshots",
  );
  if (existsSync(hub)) for (const snap of readdirSync(hub)) candidates.push(join(hub, snap, "config.json"));
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    try {
      const shape = shapeFromHfConfig(JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>);
      if (shape) return { shape, source: file };
    } catch {
      // An unreadable config.json: fall through to the next source.
    }
  }
  if (opts.params) return { shape: shapeForParams(parseParams(opts.params)), source: "--params" };
  const fromName = paramsFromName(baseModel);
  if (fromName) return { shape: shapeForParams(fromName), source: `the name "${baseModel}"` };
  throw new CliError(
    `cannot tell the size of base_model "${baseModel}": no config.json found locally or in the Hugging Face cache and no size in its name; pass --params (e.g. --params 8B)`,
    2,
  );
}

export function runPlan(file: string, opts: PlanOptions, out: (line: string) => void): number {
  const docs = readDocuments(file);
  if (docs.length !== 1) throw new CliError(`${file}: expected exactly one document, found ${docs.length}`, 2);
  const doc = docs[0]!;
  const value = doc.value as Record<string, unknown>;
  const config = (doc.kind === "FineTuneJob" ? (value.spec as Record<string, unknown> | undefined)?.config : value) as Record<string, unknown> | undefined;
  if (!config || typeof config !== "object") throw new CliError(`${file}: no inline Axolotl config to size`, 2);
  const baseModel = typeof config.base_model === "string" ? config.base_model : "";
  if (!baseModel) throw new CliError(`${file}: base_model is not set`, 2);
  const { shape, source } = resolveModel(baseModel, opts);
  const gpuMemoryBytes = parseBytes(opts.gpuMemory ?? "80Gi", "gpu-memory");
  const input = sizingFromConfig(config, shape, {
    nodes: opts.nodes,
    gpusPerNode: opts.gpusPerNode,
    gpuMemoryBytes,
    ...(opts.hostMemory ? { hostMemoryBytes: parseBytes(opts.hostMemory, "host-memory") } : {}),
  });
  const r = estimate(input);
  out(
    `model: ${(shape.params / 1e9).toFixed(2)}B parameters (from ${source}); ${input.method}${input.method !== "full" ? ` r=${input.loraR}, ${(r.adapterParams / 1e6).toFixed(1)}M adapter parameters` : ""}; sequence_len ${input.sequenceLen} x micro_batch_size ${input.microBatchSize}; gradient checkpointing ${input.gradientCheckpointing ? "on" : "off"}; sharding ${input.sharding} over ${input.worldSize} GPU(s)`,
  );
  for (const t of r.terms) out(`  ${t.name.padEnd(46)} ${formatGiB(t.bytes).padStart(10)}`);
  out(`  ${"per GPU".padEnd(46)} ${formatGiB(r.perGpuBytes).padStart(10)} of ${formatGiB(gpuMemoryBytes)}`);
  out(
    `host RAM per node: at least ${formatGiB(r.hostRamNeededBytes)} (2x the model at 16-bit)${r.hostRamOk === false ? ` - more than --host-memory ${opts.hostMemory}` : ""}`,
  );
  if (r.fits && r.hostRamOk !== false) {
    out("fits");
    return 0;
  }
  if (!r.fits)
    out(`does not fit: ${formatGiB(r.perGpuBytes)} per GPU > ${formatGiB(gpuMemoryBytes)}; biggest term: ${r.biggest.name} (${formatGiB(r.biggest.bytes)})`);
  if (r.hostRamOk === false) out(`does not fit: host RAM below 2x the model size`);
  return 1;
}
