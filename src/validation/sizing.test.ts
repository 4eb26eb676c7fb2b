import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { validateFineTuneJob } from "./job.ts";

const QLORA_8B = {
  base_model: "meta-llama/Llama-3.1-8B",
  adapter: "qlora",
  load_in_4bit: true,
  lora_r: 16,
  lora_target_linear: true,
  micro_batch_size: 2,
  gradient_accumulation_steps: 4,
  sequence_len: 4096,
  gradient_checkpointing: true,
  bf16: true,
  learning_rate: 0.0002,
  datasets: [{ path: "data.jsonl", type: "alpaca" }],
};
const FULL_8B = {
  ...QLORA_8B,
  adapter: undefined,
  load_in_4bit: undefined,
  lora_r: undefined,
  lora_target_linear: undefined,
  micro_batch_size: 1,
  sequence_len: 2048,
};
const warnings = (spec: Record<string, unknown>) =>
  validateFineTuneJob({ apiVersion: "finetune.dev/v1alpha1", kind: "FineTuneJob", metadata: { name: "j" }, spec }).issues.filter(
    (i) => i.path === "spec.gpuMemory" || i.path === "spec.resources.memory",
  );

describe("sizing warnings", () => {
  it("nothing without a GPU size or host memory to compare with", () => {
    assert.deepEqual(warnings({ config: JSON.parse(JSON.stringify(FULL_8B)) }), []);
  });

  it("a full 8B fine-tune on 80Gi GPUs: a warning naming spec.gpuMemory and the biggest term", () => {
    const [w] = warnings({ config: JSON.parse(JSON.stringify(FULL_8B)), gpuMemory: "80Gi" });
    assert.equal(w?.severity, "warning");
    assert.match(w!.message, /does not fit 80\.0 GiB.*optimizer states/);
  });

  it("QLoRA 8B on a 24G GPU fits: no warning; host RAM below 2x the model: a warning on spec.resources.memory", () => {
    assert.deepEqual(warnings({ config: QLORA_8B, gpuMemory: "24G" }), []);
    const [w] = warnings({ config: QLORA_8B, gpuMemory: "24G", resources: { memory: "16Gi" } });
    assert.equal(w?.path, "spec.resources.memory");
    assert.match(w!.message, /2x the model's size: 29\.8 GiB/);
  });

  it("spec.modelParameters gives the size when the name does not", () => {
    const config = { ...QLORA_8B, base_model: "acme/mystery" };
    assert.deepEqual(warnings({ config, resources: { memory: "16Gi" } }), []);
    assert.equal(warnings({ config, modelParameters: "70B", resources: { memory: "64Gi" } })[0]?.path, "spec.resources.memory");
  });
});
