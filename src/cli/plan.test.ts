import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";

import { CliError } from "./documents.ts";
import { parseBytes, runPlan } from "./plan.ts";

const dir = mkdtempSync(join(tmpdir(), "plan-"));
const file = (name: string, config: Record<string, unknown>) => {
  const path = join(dir, name);
  writeFileSync(path, stringify(config));
  return path;
};
const run = (path: string, opts: Partial<Parameters<typeof runPlan>[1]> = {}) => {
  const lines: string[] = [];
  const code = runPlan(path, { nodes: 1, gpusPerNode: 1, hfHome: join(dir, "no-cache"), ...opts }, (l) => lines.push(l));
  return { code, text: lines.join("\n") };
};

describe("kubectl finetune plan", () => {
  it("QLoRA 8B at micro_batch_size 2 x 4096 fits 24G: exit 0", () => {
    const { code, text } = run(
      file("q.yml", {
        base_model: "meta-llama/Llama-3.1-8B",
        adapter: "qlora",
        load_in_4bit: true,
        micro_batch_size: 2,
        sequence_len: 4096,
        gradient_checkpointing: true,
        bf16: true,
        lora_target_linear: true,
        lora_r: 16,
      }),
      { gpuMemory: "24G" },
    );
    assert.equal(code, 0, text);
    assert.match(text, /from the name "meta-llama\/Llama-3\.1-8B"/);
    assert.match(text, /\nfits$/);
  });

  it("a full bf16 8B run on one 80Gi GPU does not fit: exit 1, the biggest term named", () => {
    const { code, text } = run(file("f.yml", { base_model: "meta-llama/Llama-3.1-8B", micro_batch_size: 1, sequence_len: 2048, bf16: true }));
    assert.equal(code, 1);
    assert.match(text, /does not fit: .* biggest term: optimizer states/);
  });

  it("reads config.json of a local base_model folder, or the Hugging Face cache; host RAM below 2x the model fails", () => {
    const model = join(dir, "tiny");
    mkdirSync(model);
    writeFileSync(
      join(model, "config.json"),
      JSON.stringify({ hidden_size: 64, num_hidden_layers: 2, intermediate_size: 128, num_attention_heads: 4, vocab_size: 1000 }),
    );
    const local = run(file("t.yml", { base_model: model, adapter: "lora", micro_batch_size: 1, sequence_len: 64 }));
    assert.equal(local.code, 0, local.text);
    assert.match(local.text, /from .*tiny\/config\.json/);
    const snap = join(dir, "hf", "hub", "models--acme--mystery", "snapshots", "abc");
    mkdirSync(snap, { recursive: true });
    writeFileSync(
      join(snap, "config.json"),
      JSON.stringify({
        hidden_size: 4096,
        num_hidden_layers: 32,
        intermediate_size: 14336,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        vocab_size: 128256,
      }),
    );
    const cached = run(file("c.yml", { base_model: "acme/mystery", adapter: "lora", micro_batch_size: 1, sequence_len: 1024, bf16: true }), {
      hfHome: join(dir, "hf"),
      hostMemory: "16Gi",
    });
    assert.equal(cached.code, 1);
    assert.match(cached.text, /models--acme--mystery/);
    assert.match(cached.text, /host RAM below 2x the model size/);
  });

  it("an unknown size needs --params (exit 2); --params is used", () => {
    const path = file("u.yml", { base_model: "acme/mystery-model", adapter: "lora", micro_batch_size: 1, sequence_len: 512 });
    assert.throws(
      () => run(path),
      (e: unknown) => e instanceof CliError && e.exitCode === 2 && /--params/.test(e.message),
    );
    assert.match(run(path, { params: "1B" }).text, /1\.00B parameters \(from --params\)/);
  });

  it("parses sizes", () => {
    assert.equal(parseBytes("80Gi", "gpu-memory"), 80 * 1024 ** 3);
    assert.equal(parseBytes("24G", "gpu-memory"), 24e9);
    assert.equal(parseBytes("24GB", "gpu-memory"), 24e9);
    assert.throws(() => parseBytes("lots", "gpu-memory"), CliError);
  });
});
