/**
 * Axolotl's FSDP examples say "change `transformer_layer_cls_to_wrap` to match your model architecture": FSDP wraps
 * the decoder layers by class name, and a class the model does not have fails at startup, after the GPUs are
 * allocated (accelerate: "Could not find the transformer layer class ... in the model"). The class comes from the
 * model's config.json when the caller could read it (known), else from the model name's family (guessed).
 */

/** What a model's config.json says about its architecture. */
export interface ModelInfo {
  architectures?: string[];
  model_type?: string;
  /** Where it was read, for the message. */
  source: string;
}

/** transformers' naming: `LlamaForCausalLM` has `LlamaDecoderLayer`s. */
export function decoderLayerFromConfig(info: ModelInfo): string | undefined {
  const arch = info.architectures?.find((a) => /For[A-Z]\w*$/.test(a));
  const stem = arch?.replace(/For[A-Z]\w*$/, "");
  return stem ? `${stem}DecoderLayer` : undefined;
}

/** Families by name, most specific first (Mixtral before Mistral, Qwen3 MoE before Qwen3). */
export const FAMILIES: ReadonlyArray<[RegExp, string]> = [
  [/mixtral/i, "MixtralDecoderLayer"],
  [/mistral|ministral/i, "MistralDecoderLayer"],
  [/qwen3.*-a\d+(\.\d+)?b|qwen3-?moe/i, "Qwen3MoeDecoderLayer"],
  [/qwen3/i, "Qwen3DecoderLayer"],
  [/qwen2|qwq/i, "Qwen2DecoderLayer"],
  [/gemma-?3/i, "Gemma3DecoderLayer"],
  [/gemma-?2/i, "Gemma2DecoderLayer"],
  [/gemma/i, "GemmaDecoderLayer"],
  [/phi-?3/i, "Phi3DecoderLayer"],
  [/llama-?4/i, "Llama4TextDecoderLayer"],
  [/llama/i, "LlamaDecoderLayer"],
];

/** The decoder layer class a model name suggests, if its family is one we recognise. */
export function decoderLayerFromName(baseModel: string): string | undefined {
  const name = baseModel.split("/").pop() ?? baseModel;
  return FAMILIES.find(([re]) => re.test(name))?.[1];
}
