/**
 * Memory sizing of an Axolotl run before anything is scheduled (`kubectl finetune plan`). Pure.
 *
 * Per GPU, in bytes (P = parameters, A = adapter parameters, t = sequence_len x micro_batch_size tokens,
 * h = hidden size, L = layers, I = MLP size, V = vocabulary):
 *  - weights: 2P at 16-bit (4P at fp32); QLoRA: about 4.13 bits per quantised weight (NF4 + double-quantised
 *    block constants) and the embeddings and LM head kept at 16-bit;
 *  - full fine-tune: gradients at the weights' width, and AdamW in mixed precision: fp32 master copy + m + v =
 *    12 bytes/param (the ZeRO paper's 16 bytes/param with weights and gradients; 6 for 8-bit optimizers);
 *  - LoRA/QLoRA: the adapter in fp32 with its gradient and AdamW states, 16 bytes per adapter parameter;
 *  - sharding divides weights, gradients and optimizer states by the world size (FSDP full shard, ZeRO-3),
 *    gradients and optimizer states (ZeRO-2) or the optimizer states (ZeRO-1);
 *  - activations (Korthikanti et al. 2022, per layer and token, 16-bit, attention without the s^2 term as with
 *    flash/SDPA): 11h attention + 4h norms + 19h x (I / 4h) x 1.5 SwiGLU MLP bytes; with gradient checkpointing only
 *    each layer's input (2h bytes) is kept for all layers, plus one layer recomputed;
 *  - logits: t x V x 10 bytes (16-bit logits, their fp32 upcast for the loss, and the fp32 softmax kept for backward);
 *  - 1 GiB for the CUDA context and allocator slack.
 * Host RAM: at least 2x the model's size at 16-bit per node (the Axolotl guide's rule for loading and merging).
 * It is an estimate: fragmentation, sample packing, long-context kernels and optimizer choice move it by 10-20%.
 */

export interface ModelShape {
  params: number;
  hidden: number;
  layers: number;
  intermediate: number;
  vocab: number;
  heads: number;
  kvHeads: number;
  tiedEmbeddings: boolean;
}

export type Method = "full" | "lora" | "qlora";

export interface SizingInput {
  model: ModelShape;
  method: Method;
  sequenceLen: number;
  microBatchSize: number;
  gradientCheckpointing: boolean;
  /** Bytes per weight: 2 with bf16/fp16, 4 otherwise. */
  weightBytes: 2 | 4;
  optimizer8bit: boolean;
  loraR: number;
  /** Which linear layers get an adapter; "all" with lora_target_linear. */
  loraTargets: "all" | string[];
  /** What is sharded across the world size. */
  sharding: "none" | "optimizer" | "gradients" | "full";
  worldSize: number;
  gpuMemoryBytes: number;
  hostMemoryBytes?: number;
}

export interface SizingTerm {
  name: string;
  bytes: number;
}

export interface SizingResult {
  perGpuBytes: number;
  terms: SizingTerm[];
  fits: boolean;
  biggest: SizingTerm;
  hostRamNeededBytes: number;
  hostRamOk?: boolean;
  adapterParams: number;
}

export const GiB = 1024 ** 3;
const CONTEXT_BYTES = 1 * GiB;

/** Reference shapes for models known by size only (a name like "Llama-3.1-8B", or --params). */
const REFERENCE_SHAPES: ModelShape[] = [
  { params: 0.49e9, hidden: 896, layers: 24, intermediate: 4864, vocab: 151936, heads: 14, kvHeads: 2, tiedEmbeddings: true }, // Qwen2.5-0.5B
  { params: 1.24e9, hidden: 2048, layers: 16, intermediate: 8192, vocab: 128256, heads: 32, kvHeads: 8, tiedEmbeddings: true }, // Llama 3.2 1B
  { params: 3.21e9, hidden: 3072, layers: 28, intermediate: 8192, vocab: 128256, heads: 24, kvHeads: 8, tiedEmbeddings: true }, // Llama 3.2 3B
  { params: 6.74e9, hidden: 4096, layers: 32, intermediate: 11008, vocab: 32000, heads: 32, kvHeads: 32, tiedEmbeddings: false }, // Llama 2 7B
  { params: 8.03e9, hidden: 4096, layers: 32, intermediate: 14336, vocab: 128256, heads: 32, kvHeads: 8, tiedEmbeddings: false }, // Llama 3.1 8B
  { params: 13.0e9, hidden: 5120, layers: 40, intermediate: 13824, vocab: 32000, heads: 40, kvHeads: 40, tiedEmbeddings: false }, // Llama 2 13B
  { params: 32.8e9, hidden: 5120, layers: 64, intermediate: 27648, vocab: 152064, heads: 40, kvHeads: 8, tiedEmbeddings: false }, // Qwen2.5-32B
  { params: 65.2e9, hidden: 8192, layers: 80, intermediate: 22016, vocab: 32000, heads: 64, kvHeads: 64, tiedEmbeddings: false }, // LLaMA 65B
  { params: 70.6e9, hidden: 8192, layers: 80, intermediate: 28672, vocab: 128256, heads: 64, kvHeads: 8, tiedEmbeddings: false }, // Llama 3.1 70B
];

/** The reference shape nearest in size, scaled to `params` (parameter count exact, layout borrowed). */
export function shapeForParams(params: number): ModelShape {
  let best = REFERENCE_SHAPES[0]!;
  for (const s of REFERENCE_SHAPES) if (Math.abs(Math.log(s.params / params)) < Math.abs(Math.log(best.params / params))) best = s;
  return { ...best, params };
}

/** "meta-llama/Llama-3.1-8B-Instruct" -> 8e9; "Qwen2.5-0.5B" -> 0.5e9; undefined when the name has no size. */
export function paramsFromName(name: string): number | undefined {
  const m = /(?:^|[^a-z0-9.])(\d+(?:\.\d+)?)\s*([bm])(?![a-z0-9])/i.exec(name.replace(/x\d+(?:\.\d+)?[bm]/i, ""));
  if (!m) return undefined;
  return Number(m[1]) * (m[2]!.toLowerCase() === "b" ? 1e9 : 1e6);
}

/** A Hugging Face config.json (Llama-style keys) -> shape; undefined when the keys are missing. */
export function shapeFromHfConfig(cfg: Record<string, unknown>): ModelShape | undefined {
  const n = (k: string) => (typeof cfg[k] === "number" ? (cfg[k] as number) : undefined);
  const hidden = n("hidden_size");
  const layers = n("num_hidden_layers");
  const vocab = n("vocab_size");
  if (!hidden || !layers || !vocab) return undefined;
  const intermediate = n("intermediate_size") ?? 4 * hidden;
  const heads = n("num_attention_heads") ?? Math.max(1, Math.round(hidden / 128));
  const kvHeads = n("num_key_value_heads") ?? heads;
  const tiedEmbeddings = cfg.tie_word_embeddings === true;
  const kvDim = (hidden / heads) * kvHeads;
  const perLayer = 2 * hidden * hidden + 2 * hidden * kvDim + 3 * hidden * intermediate + 2 * hidden;
  const params = layers * perLayer + vocab * hidden * (tiedEmbeddings ? 1 : 2) + hidden;
  return { params, hidden, layers, intermediate, vocab, heads, kvHeads, tiedEmbeddings };
}

const LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

export function adapterParams(m: ModelShape, r: number, targets: "all" | string[]): number {
  const kvDim = (m.hidden / m.heads) * m.kvHeads;
  const dims: Record<(typeof LINEAR)[number], [number, number]> = {
    q_proj: [m.hidden, m.hidden],
    k_proj: [m.hidden, kvDim],
    v_proj: [m.hidden, kvDim],
    o_proj: [m.hidden, m.hidden],
    gate_proj: [m.hidden, m.intermediate],
    up_proj: [m.hidden, m.intermediate],
    down_proj: [m.intermediate, m.hidden],
  };
  const chosen = targets === "all" ? [...LINEAR] : LINEAR.filter((l) => targets.includes(l));
  return m.layers * chosen.reduce((sum, l) => sum + r * (dims[l][0] + dims[l][1]), 0);
}

export function estimate(input: SizingInput): SizingResult {
  const m = input.model;
  const P = m.params;
  const embedParams = m.vocab * m.hidden * (m.tiedEmbeddings ? 1 : 2);
  const world = Math.max(1, input.worldSize);
  const shard = (what: "weights" | "gradients" | "optimizer") => {
    const level = { none: 0, optimizer: 1, gradients: 2, full: 3 }[input.sharding];
    const needs = { optimizer: 1, gradients: 2, weights: 3 }[what];
    return level >= needs ? world : 1;
  };
  const terms: SizingTerm[] = [];
  let adapter = 0;
  if (input.method === "full") {
    terms.push({ name: "weights", bytes: (input.weightBytes * P) / shard("weights") });
    terms.push({ name: "gradients", bytes: (input.weightBytes * P) / shard("gradients") });
    terms.push({ name: "optimizer states", bytes: ((input.optimizer8bit ? 6 : 12) * P) / shard("optimizer") });
  } else {
    const base = input.method === "qlora" ? (4.13 / 8) * (P - embedParams) + 2 * embedParams : input.weightBytes * P;
    terms.push({ name: input.method === "qlora" ? "weights (4-bit base)" : "weights (frozen base)", bytes: base / shard("weights") });
    adapter = adapterParams(m, input.loraR, input.loraTargets);
    terms.push({ name: "adapter, its gradients and optimizer states", bytes: 16 * adapter });
  }
  const tokens = input.sequenceLen * input.microBatchSize;
  const perLayerToken = (11 + 4 + 19 * (m.intermediate / (4 * m.hidden)) * 1.5) * m.hidden;
  const activations = input.gradientCheckpointing ? m.layers * 2 * m.hidden * tokens + perLayerToken * tokens : m.layers * perLayerToken * tokens;
  terms.push({ name: input.gradientCheckpointing ? "activations (checkpointed)" : "activations", bytes: activations });
  terms.push({ name: "logits and loss", bytes: 10 * tokens * m.vocab });
  terms.push({ name: "CUDA context and slack", bytes: CONTEXT_BYTES });
  const perGpuBytes = terms.reduce((s, t) => s + t.bytes, 0);
  const biggest = terms.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const hostRamNeededBytes = 2 * 2 * P;
  return {
    perGpuBytes,
    terms,
    fits: perGpuBytes <= input.gpuMemoryBytes,
    biggest,
    hostRamNeededBytes,
    ...(input.hostMemoryBytes !== undefined ? { hostRamOk: input.hostMemoryBytes >= hostRamNeededBytes } : {}),
    adapterParams: adapter,
  };
}

/** Sizing inputs from an Axolotl config (the keys that change memory). */
export function sizingFromConfig(
  config: Record<string, unknown>,
  model: ModelShape,
  opts: { nodes: number; gpusPerNode: number; gpuMemoryBytes: number; hostMemoryBytes?: number },
): SizingInput {
  const adapter = String(config.adapter ?? "");
  const method: Method = adapter === "qlora" || (adapter === "lora" && config.load_in_4bit === true) ? "qlora" : adapter === "lora" ? "lora" : "full";
  const optimizer = String(config.optimizer ?? "adamw_torch");
  const ds = typeof config.deepspeed === "string" ? config.deepspeed : "";
  const zero = /zero[_-]?3|stage[_-]?3/i.test(ds)
    ? "full"
    : /zero[_-]?2|stage[_-]?2/i.test(ds)
      ? "gradients"
      : /zero[_-]?1|stage[_-]?1/i.test(ds)
        ? "optimizer"
        : undefined;
  const fsdp = config.fsdp !== undefined || config.fsdp_config !== undefined;
  const targets = config.lora_target_linear === true ? "all" : Array.isArray(config.lora_target_modules) ? (config.lora_target_modules as string[]) : "all";
  return {
    model,
    method,
    sequenceLen: Number(config.sequence_len ?? 2048),
    microBatchSize: Number(config.micro_batch_size ?? 1),
    gradientCheckpointing: config.gradient_checkpointing === true || config.gradient_checkpointing === "unsloth" || config.gradient_checkpointing === "offload",
    weightBytes: config.bf16 === true || config.bf16 === "auto" || config.fp16 === true || method === "qlora" ? 2 : 4,
    optimizer8bit: /8bit/.test(optimizer),
    loraR: Number(config.lora_r ?? 8),
    loraTargets: targets,
    sharding: zero ?? (fsdp ? "full" : "none"),
    worldSize: opts.nodes * opts.gpusPerNode,
    gpuMemoryBytes: opts.gpuMemoryBytes,
    ...(opts.hostMemoryBytes !== undefined ? { hostMemoryBytes: opts.hostMemoryBytes } : {}),
  };
}

const UNITS: Record<string, number> = { "": 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** A Kubernetes memory quantity ("80Gi", "24G", 1073741824) or "24GB" -> bytes; undefined when it is not one. */
export function quantityBytes(value: string | number): number | undefined {
  if (typeof value === "number") return value;
  const m = /^(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?B?$/.exec(value.trim());
  return m ? Number(m[1]) * UNITS[m[2] ?? ""]! : undefined;
}

export function formatGiB(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)} GiB`;
}
