import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decoderLayerFromConfig, decoderLayerFromName } from "./model-family.ts";
import { validateAxolotlConfig } from "./validate.ts";

describe("FSDP transformer_layer_cls_to_wrap and the model family", () => {
  it("guesses the decoder layer class from the model's name (the seed config's families)", () => {
    assert.equal(decoderLayerFromName("meta-llama/Llama-3.1-8B-Instruct"), "LlamaDecoderLayer");
    assert.equal(decoderLayerFromName("mistralai/Mistral-7B-v0.3"), "MistralDecoderLayer");
    assert.equal(decoderLayerFromName("Qwen/Qwen3-8B"), "Qwen3DecoderLayer");
    assert.equal(decoderLayerFromName("Qwen/Qwen2.5-7B-Instruct"), "Qwen2DecoderLayer");
    assert.equal(decoderLayerFromName("some-org/unknown-model"), undefined);
  });

  it("reads it from config.json's architectures", () => {
    assert.equal(decoderLayerFromConfig({ architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", source: "x" }), "Qwen3DecoderLayer");
    assert.equal(decoderLayerFromConfig({ source: "x" }), undefined);
  });

  const config = (base: string, cls: string) => ({
    base_model: base,
    learning_rate: 1e-4,
    micro_batch_size: 1,
    gradient_accumulation_steps: 1,
    datasets: [{ path: "a.jsonl", type: "alpaca" }],
    fsdp_version: 2,
    fsdp_config: { auto_wrap_policy: "TRANSFORMER_BASED_WRAP", transformer_layer_cls_to_wrap: cls },
  });
  const at = (issues: ReturnType<typeof validateAxolotlConfig>) => issues.filter((i) => i.path === "fsdp_config.transformer_layer_cls_to_wrap");

  it("Qwen3-8B wrapped as LlamaDecoderLayer: a warning when guessed from the name", () => {
    const [issue] = at(validateAxolotlConfig(config("Qwen/Qwen3-8B", "LlamaDecoderLayer")));
    assert.equal(issue?.severity, "warning");
    assert.match(issue!.message, /Qwen3DecoderLayer.*guessed/);
  });

  it("an error when config.json says so", () => {
    const model = { architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", source: "/models/qwen3/config.json" };
    const [issue] = at(validateAxolotlConfig(config("/models/qwen3", "LlamaDecoderLayer"), { nodes: 1, gpusPerNode: 2, model }));
    assert.equal(issue?.severity, "error");
    assert.match(issue!.message, /Qwen3DecoderLayer.*\/models\/qwen3\/config\.json/);
  });

  it("nothing when the class matches, or when the family is unknown", () => {
    assert.deepEqual(at(validateAxolotlConfig(config("Qwen/Qwen3-8B", "Qwen3DecoderLayer"))), []);
    assert.deepEqual(at(validateAxolotlConfig(config("some-org/unknown-model", "LlamaDecoderLayer"))), []);
  });
});
