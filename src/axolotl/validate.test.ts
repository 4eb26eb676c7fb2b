import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { DEFAULT_TRAINER_IMAGE } from "../api/group.ts";
import { TOP_LEVEL_KEYS } from "./vocabulary.ts";
import { type DeploymentContext, OPERATOR_OWNED_KEYS, type ValidationIssue, validateAxolotlConfig } from "./validate.ts";

type Config = Record<string, unknown>;

/** Every issue names its key: a non-root path appears in its message. */
function validate(config: unknown, ctx?: DeploymentContext): ValidationIssue[] {
  const issues = validateAxolotlConfig(config, ctx);
  for (const issue of issues) {
    assert.ok(issue.severity === "error" || issue.severity === "warning", `bad severity ${issue.severity}`);
    assert.equal(typeof issue.path, "string");
    assert.ok(issue.message.length > 0, "empty message");
    if (issue.path !== "") assert.ok(issue.message.includes(issue.path), `message does not name ${issue.path}: ${issue.message}`);
  }
  return issues;
}

const errors = (issues: ValidationIssue[]) => issues.filter((i) => i.severity === "error");
const show = (issues: ValidationIssue[]) => issues.map((i) => `${i.severity} ${i.path}: ${i.message}`).join("\n");

// A small LoRA job every broken-rule case starts from.
const BASE: Config = {
  base_model: "meta-llama/Llama-3.1-8B-Instruct",
  learning_rate: 2e-4,
  micro_batch_size: 2,
  gradient_accumulation_steps: 4,
  num_epochs: 1,
  sequence_len: 2048,
  adapter: "lora",
  lora_r: 16,
  lora_alpha: 32,
  lora_dropout: 0.05,
  lora_target_linear: true,
  datasets: [{ path: "data/train.jsonl", ds_type: "json", type: "alpaca" }],
};

/** BASE with `patch` applied; a patch value of undefined deletes the key. */
function make(patch: Config): Config {
  const out: Config = { ...BASE, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete out[k];
  return out;
}

describe("quick-start configs validate cleanly", () => {
  const scenarios: { name: string; config: Config; ctx?: DeploymentContext }[] = [
    {
      name: "alpaca from a local jsonl file",
      config: make({
        datasets: [{ path: "data/alpaca.jsonl", ds_type: "json", type: "alpaca" }],
        val_set_size: 0.05,
        evals_per_epoch: 4,
        saves_per_epoch: 1,
        sample_packing: true,
        bf16: "auto",
        warmup_ratio: 0.1,
        lr_scheduler: "cosine",
        optimizer: "adamw_torch_fused",
      }),
    },
    {
      name: "chat_template with roles_to_train",
      config: make({
        chat_template: "llama3",
        datasets: [
          {
            path: "data/conversations.jsonl",
            type: "chat_template",
            field_messages: "messages",
            message_property_mappings: { role: "role", content: "content" },
            roles_to_train: ["assistant"],
            train_on_eos: "turn",
          },
        ],
      }),
    },
    {
      name: "completion (raw text)",
      config: make({
        adapter: undefined,
        lora_r: undefined,
        lora_alpha: undefined,
        lora_dropout: undefined,
        lora_target_linear: undefined,
        learning_rate: "2e-5", // PyYAML reads 2e-5 as a string; Axolotl converts it
        datasets: [{ path: "data/corpus.jsonl", type: "completion", field: "text" }],
      }),
    },
    {
      name: "Hugging Face hub dataset",
      config: make({
        datasets: [{ path: "mhenrichsen/alpaca_2k_test", type: "alpaca", split: "train" }],
        val_set_size: 100, // a row count
      }),
    },
    {
      name: "Llama 3.1 8B LoRA",
      config: make({
        lora_r: 32,
        lora_alpha: 64,
        lora_dropout: 0.05,
        lora_target_linear: true,
        attn_implementation: "flash_attention_2",
        gradient_checkpointing: true,
        bf16: true,
        tf32: false,
        special_tokens: { pad_token: "<|end_of_text|>" },
        wandb_project: "llama31-lora",
      }),
    },
    {
      name: "QLoRA 4-bit",
      config: make({
        adapter: "qlora",
        load_in_4bit: true,
        lora_r: 32,
        lora_alpha: 16,
        optimizer: "paged_adamw_8bit",
      }),
    },
    {
      name: "FSDP2 on 2 nodes",
      ctx: { nodes: 2, gpusPerNode: 8 },
      config: make({
        fsdp_version: 2,
        fsdp_config: {
          offload_params: false,
          cpu_ram_efficient_loading: true,
          auto_wrap_policy: "TRANSFORMER_BASED_WRAP",
          transformer_layer_cls_to_wrap: "LlamaDecoderLayer",
          state_dict_type: "FULL_STATE_DICT",
          reshard_after_forward: true,
        },
      }),
    },
    {
      name: "DeepSpeed ZeRO-2 with 8 GPUs",
      ctx: { nodes: 1, gpusPerNode: 8 },
      config: make({ deepspeed: "deepspeed_configs/zero2.json", bf16: true }),
    },
  ];
  for (const { name, config, ctx } of scenarios) {
    it(name, () => {
      const issues = validate(config, ctx);
      assert.deepEqual(issues, [], show(issues));
    });
  }
});

describe("broken rules are reported at the right path", () => {
  const cases: {
    name: string;
    config: Config;
    ctx?: DeploymentContext;
    path: string;
    severity?: "error" | "warning";
    includes?: string;
  }[] = [
    // required keys
    { name: "base_model missing", config: make({ base_model: undefined }), path: "base_model" },
    { name: "base_model null", config: make({ base_model: null }), path: "base_model" },
    { name: "learning_rate missing", config: make({ learning_rate: undefined }), path: "learning_rate" },
    { name: "no datasets", config: make({ datasets: undefined }), path: "datasets", includes: "pretraining_dataset" },
    {
      name: "only one batch size key",
      config: make({ gradient_accumulation_steps: undefined }),
      path: "gradient_accumulation_steps",
      includes: "at least two of",
    },
    {
      name: "gradient_accumulation_steps with batch_size",
      config: make({ batch_size: 32 }),
      path: "batch_size",
      includes: "only one of `gradient_accumulation_steps` or `batch_size`",
    },
    // adapter and quantization
    { name: "load_in_4bit without adapter", config: make({ adapter: undefined, load_in_4bit: true }), path: "load_in_4bit" },
    { name: "load_in_8bit without adapter", config: make({ adapter: undefined, load_in_8bit: true }), path: "load_in_8bit" },
    { name: "qlora without load_in_4bit", config: make({ adapter: "qlora" }), path: "load_in_4bit", includes: "load_in_4bit: true" },
    {
      name: "qlora with load_in_8bit",
      config: make({ adapter: "qlora", load_in_4bit: true, load_in_8bit: true }),
      path: "load_in_8bit",
    },
    { name: "adapter typo", config: make({ adapter: "loraa" }), path: "adapter", includes: "did you mean `lora`?" },
    { name: "adapter not a string", config: make({ adapter: 1 }), path: "adapter" },
    {
      name: "plugin adapter is only a warning",
      config: make({ adapter: "my-adapter", plugins: ["my_pkg.MyAdapterPlugin"] }),
      path: "adapter",
      severity: "warning",
    },
    {
      name: "lora settings without adapter",
      config: make({ adapter: undefined }),
      path: "lora_r",
      severity: "warning",
    },
    // mutually exclusive pairs
    { name: "save_steps + saves_per_epoch", config: make({ save_steps: 100, saves_per_epoch: 2 }), path: "saves_per_epoch" },
    {
      name: "eval_steps + evals_per_epoch",
      config: make({ val_set_size: 0.05, eval_steps: 50, evals_per_epoch: 2 }),
      path: "evals_per_epoch",
    },
    { name: "warmup_steps + warmup_ratio", config: make({ warmup_steps: 10, warmup_ratio: 0.1 }), path: "warmup_ratio" },
    {
      name: "deepspeed + fsdp_config",
      config: make({ deepspeed: "zero2.json", fsdp_version: 2, fsdp_config: { offload_params: true } }),
      path: "fsdp_config",
      includes: "cannot be used together",
    },
    {
      name: "deepspeed + legacy fsdp",
      config: make({ deepspeed: "zero2.json", fsdp: ["full_shard", "auto_wrap"] }),
      path: "fsdp",
      includes: "cannot be used together",
    },
    {
      name: "max_memory + gpu_memory_limit",
      config: make({ max_memory: { 0: "20GiB" }, gpu_memory_limit: 20 }),
      path: "gpu_memory_limit",
    },
    {
      name: "test_datasets + val_set_size",
      config: make({ val_set_size: 0.1, test_datasets: [{ path: "data/test.jsonl", type: "alpaca" }] }),
      path: "test_datasets",
    },
    // save / eval
    { name: "save_safetensors false", config: make({ save_safetensors: false }), path: "save_safetensors" },
    { name: "eval_steps with val_set_size 0", config: make({ val_set_size: 0, eval_steps: 50 }), path: "eval_steps", includes: "val_set_size: 0" },
    {
      name: "eval_strategy with val_set_size 0",
      config: make({ val_set_size: 0, eval_strategy: "steps" }),
      path: "eval_strategy",
    },
    {
      name: "eval_steps with no eval data at all warns",
      config: make({ eval_steps: 50 }),
      path: "eval_steps",
      severity: "warning",
    },
    {
      name: "save_strategy mismatching save_steps",
      config: make({ save_strategy: "epoch", save_steps: 100 }),
      path: "save_strategy",
    },
    { name: "save_strategy best needs a metric", config: make({ save_strategy: "best" }), path: "metric_for_best_model" },
    // attention and precision
    {
      name: "legacy flag with attn_implementation",
      config: make({ flash_attention: true, attn_implementation: "flash_attention_2" }),
      path: "flash_attention",
    },
    {
      name: "legacy flag alone is deprecated",
      config: make({ sdp_attention: true }),
      path: "sdp_attention",
      severity: "warning",
      includes: "attn_implementation: sdpa",
    },
    {
      name: "attn_implementation short form",
      config: make({ attn_implementation: "flash" }),
      path: "attn_implementation",
      includes: "flash_attention_2",
    },
    {
      name: "attn_implementation typo",
      config: make({ attn_implementation: "flash_attention2" }),
      path: "attn_implementation",
      includes: "did you mean `flash_attention_2`?",
    },
    { name: "fp8 needs Hopper", config: make({ fp8: true }), path: "fp8", severity: "warning", includes: "sm_90" },
    // distributed
    {
      name: "deepspeed on a single GPU",
      config: make({ deepspeed: "deepspeed_configs/zero2.json" }),
      ctx: { nodes: 1, gpusPerNode: 1 },
      path: "deepspeed",
    },
    {
      name: "fsdp_config without fsdp_version (FSDP1)",
      config: make({ fsdp_config: { offload_params: true } }),
      path: "fsdp_config",
      severity: "warning",
      includes: "FSDP1",
    },
    {
      name: "fsdp_version inside fsdp_config",
      config: make({ fsdp_config: { fsdp_version: 2, offload_params: true } }),
      path: "fsdp_config.fsdp_version",
      severity: "warning",
    },
    {
      name: "FSDP2 with fsdp_-prefixed keys",
      config: make({ fsdp_version: 2, fsdp_config: { fsdp_offload_params: true } }),
      path: "fsdp_config.fsdp_offload_params",
      severity: "warning",
      includes: "write `offload_params`",
    },
    {
      name: "FSDP2 with an FSDP1-only key",
      config: make({ fsdp_version: 2, fsdp_config: { sharding_strategy: "FULL_SHARD" } }),
      path: "fsdp_config.sharding_strategy",
      severity: "warning",
    },
    {
      name: "unknown fsdp_config key",
      config: make({ fsdp_version: 2, fsdp_config: { offload_param: true } }),
      path: "fsdp_config.offload_param",
      severity: "warning",
      includes: "did you mean `offload_params`?",
    },
    // types and ranges
    { name: "learning_rate not numeric", config: make({ learning_rate: "fast" }), path: "learning_rate" },
    { name: "micro_batch_size fractional", config: make({ micro_batch_size: 2.5 }), path: "micro_batch_size" },
    { name: "micro_batch_size zero", config: make({ micro_batch_size: 0 }), path: "micro_batch_size" },
    { name: "lora_alpha fractional", config: make({ lora_alpha: 16.5 }), path: "lora_alpha" },
    { name: "chat_template typo", config: make({ chat_template: "llama-3" }), path: "chat_template", includes: "did you mean `llama3`?" },
    { name: "chat_template jinja without template", config: make({ chat_template: "jinja" }), path: "chat_template_jinja" },
    { name: "rl typo", config: make({ rl: "dop" }), path: "rl", includes: "did you mean `dpo`?" },
    // datasets
    { name: "datasets empty", config: make({ datasets: [] }), path: "datasets" },
    { name: "datasets not a list", config: make({ datasets: "data/train.jsonl" }), path: "datasets" },
    {
      name: "dataset entry not a mapping",
      config: make({ datasets: [{ path: "a.jsonl", type: "alpaca" }, "b.jsonl"] }),
      path: "datasets[1]",
    },
    { name: "dataset without path", config: make({ datasets: [{ type: "alpaca" }] }), path: "datasets[0].path" },
    {
      name: "unknown dataset type",
      config: make({ datasets: [{ path: "a.jsonl", type: "alpacca" }] }),
      path: "datasets[0].type",
      includes: "did you mean `alpaca`?",
    },
    {
      name: "sharegpt type",
      config: make({ datasets: [{ path: "a.jsonl", type: "sharegpt" }] }),
      path: "datasets[0].type",
      includes: "chat_template",
    },
    {
      name: "dataset type of the wrong kind",
      config: make({ datasets: [{ path: "a.jsonl", type: 3 }] }),
      path: "datasets[0].type",
    },
    {
      name: "dataset type missing (pre-tokenized)",
      config: make({ datasets: [{ path: "a.jsonl" }] }),
      path: "datasets[0].type",
      severity: "warning",
      includes: "tokenized",
    },
    {
      name: "custom prompt format key typo",
      config: make({ datasets: [{ path: "a.jsonl", type: { field_instrution: "q", format: "{instruction}" } }] }),
      path: "datasets[0].type.field_instrution",
      severity: "warning",
      includes: "did you mean `field_instruction`?",
    },
    {
      name: "near miss of a built-in module",
      config: make({ datasets: [{ path: "a.jsonl", type: "chat_templat.default" }] }),
      path: "datasets[0].type",
      severity: "warning",
      includes: "did you mean `chat_template`?",
    },
    {
      name: "roles_to_train not a list",
      config: make({ datasets: [{ path: "a.jsonl", type: "chat_template", roles_to_train: "assistant" }] }),
      path: "datasets[0].roles_to_train",
    },
    {
      name: "roles_to_train with non-strings",
      config: make({ datasets: [{ path: "a.jsonl", type: "chat_template", roles_to_train: ["assistant", 1] }] }),
      path: "datasets[0].roles_to_train[1]",
    },
    {
      name: "ds_type jsonl",
      config: make({ datasets: [{ path: "a.jsonl", type: "alpaca", ds_type: "jsonl" }] }),
      path: "datasets[0].ds_type",
      includes: "did you mean `json`?",
    },
    {
      name: "train_on_eos bad value",
      config: make({ datasets: [{ path: "a.jsonl", type: "chat_template", train_on_eos: "first" }] }),
      path: "datasets[0].train_on_eos",
    },
    {
      name: "unknown dataset key",
      config: make({ datasets: [{ path: "a.jsonl", type: "chat_template", feild_messages: "conversations" }] }),
      path: "datasets[0].feild_messages",
      severity: "warning",
      includes: "did you mean `field_messages`?",
    },
    {
      name: "second dataset is checked too",
      config: make({
        datasets: [
          { path: "a.jsonl", type: "alpaca" },
          { path: "b.jsonl", type: "nope_type" },
        ],
      }),
      path: "datasets[1].type",
    },
    {
      name: "test_datasets entries are checked",
      config: make({ test_datasets: [{ path: "t.jsonl", type: "alpaca", ds_type: "yaml" }] }),
      path: "test_datasets[0].ds_type",
    },
    {
      name: "pretraining_dataset needs max_steps",
      config: make({ datasets: undefined, pretraining_dataset: [{ path: "allenai/c4", name: "en" }] }),
      path: "max_steps",
    },
    // keys
    {
      name: "typo in a top-level key",
      config: make({ lora_rr: 8 }),
      path: "lora_rr",
      severity: "warning",
      includes: "did you mean `lora_r`?",
    },
    {
      name: "key renamed since older Axolotl versions",
      config: make({ attention: "flash" }),
      path: "attention",
      severity: "warning",
      includes: "did you mean `attn_implementation`?",
    },
    { name: "removed key", config: make({ rope_scaling: { type: "linear", factor: 2 } }), path: "rope_scaling" },
    { name: "deprecated key", config: make({ dpo_beta: 0.1 }), path: "dpo_beta", severity: "warning", includes: "rl_beta" },
    {
      name: "plugin key without its plugin",
      config: make({ liger_rope: true }),
      path: "liger_rope",
      severity: "warning",
      includes: "LigerPlugin",
    },
  ];

  for (const { name, config, ctx, path, severity = "error", includes } of cases) {
    it(name, () => {
      const issues = validate(config, ctx);
      const hit = issues.find((i) => i.path === path && i.severity === severity && (includes === undefined || i.message.includes(includes)));
      assert.ok(hit, `expected ${severity} at ${path}${includes ? ` mentioning ${JSON.stringify(includes)}` : ""}, got:\n${show(issues)}`);
    });
  }
});

describe("things that must not be flagged", () => {
  const cases: { name: string; config: Config; ctx?: DeploymentContext }[] = [
    { name: "test_datasets with val_set_size 0", config: make({ val_set_size: 0, test_datasets: [{ path: "t.jsonl", type: "alpaca" }] }) },
    { name: "eval_strategy no with val_set_size 0", config: make({ val_set_size: 0, eval_strategy: "no" }) },
    { name: "eval_steps with a validation split", config: make({ val_set_size: 0.05, eval_steps: 0.1 }) },
    { name: "deepspeed when the deployment is unknown", config: make({ deepspeed: "zero2.json" }) },
    { name: "deepspeed on 2 nodes x 1 GPU", config: make({ deepspeed: "zero2.json" }), ctx: { nodes: 2, gpusPerNode: 1 } },
    { name: "hub-kernel attn_implementation", config: make({ attn_implementation: "kernels-community/flash-attn3" }) },
    { name: "alpaca with a prompt style", config: make({ datasets: [{ path: "a.jsonl", type: "alpaca:chat" }] }) },
    { name: "module.function type", config: make({ datasets: [{ path: "a.jsonl", type: "alpaca_w_system.load_open_orca" }] }) },
    { name: "user module type", config: make({ datasets: [{ path: "a.jsonl", type: "my_pkg.my_strategy" }] }) },
    {
      name: "custom prompt format mapping",
      config: make({
        datasets: [
          { path: "a.jsonl", type: { field_instruction: "q", field_output: "a", format: "[INST] {instruction} [/INST]", no_input_format: "{instruction}" } },
        ],
      }),
    },
    { name: "synthetic dataset without path", config: make({ datasets: [{ type: "_synthetic", length: 100 }] }) },
    // Accepted by Axolotl 0.18.0's own validator (pydantic lax mode, no bounds in its schema); we used to reject
    // them. e2e/axolotl/validator-diff.test.ts checks every such verdict against Axolotl itself.
    { name: "eval_strategy typo (Axolotl accepts)", config: make({ eval_strategy: "step" }) },
    { name: "fsdp_version 3 (Axolotl accepts)", config: make({ fsdp_version: 3, fsdp_config: {} }) },
    { name: "learning_rate zero (Axolotl accepts)", config: make({ learning_rate: 0 }) },
    { name: "learning_rate negative (Axolotl accepts)", config: make({ learning_rate: -1e-4 }) },
    { name: "gradient_accumulation_steps as string (Axolotl accepts)", config: make({ gradient_accumulation_steps: "4" }) },
    { name: "num_epochs zero (Axolotl accepts)", config: make({ num_epochs: 0 }) },
    { name: "sequence_len string (Axolotl accepts)", config: make({ sequence_len: "2048" }) },
    { name: "lora_r zero (Axolotl accepts)", config: make({ lora_r: 0 }) },
    { name: "lora_dropout 1 (Axolotl accepts)", config: make({ lora_dropout: 1 }) },
    { name: "lora_dropout negative (Axolotl accepts)", config: make({ lora_dropout: -0.1 }) },
    { name: "val_set_size 1 (Axolotl accepts)", config: make({ val_set_size: 1 }) },
    { name: "val_set_size fractional count (Axolotl accepts)", config: make({ val_set_size: 1.5 }) },
    { name: "val_set_size negative (Axolotl accepts)", config: make({ val_set_size: -0.1 }) },
    { name: "boolean as string (Axolotl accepts)", config: make({ load_in_4bit: "true", adapter: "qlora" }) },
    { name: "bf16 bad value (Axolotl accepts)", config: make({ bf16: "yes" }) },
    { name: 'fsdp_config value "yes", a pydantic lax bool (Axolotl accepts)', config: make({ fsdp_version: 2, fsdp_config: { offload_params: "yes" } }) },
    { name: "DPO dataset type", config: make({ rl: "dpo", datasets: [{ path: "Intel/orca_dpo_pairs", type: "chatml.intel", split: "train" }] }) },
    { name: "micro_batch_size with batch_size", config: make({ gradient_accumulation_steps: undefined, batch_size: 32 }) },
    { name: "fractional num_epochs", config: make({ num_epochs: 0.5 }) },
    { name: "learning_rate as a float string", config: make({ learning_rate: "0.0002" }) },
    { name: "null means unset", config: make({ warmup_steps: null, warmup_ratio: 0.1, seed: null, fsdp_config: null }) },
    { name: "plugin key with its plugin", config: make({ plugins: ["axolotl.integrations.liger.LigerPlugin"], liger_rope: true, liger_rms_norm: true }) },
    { name: "tokenizer_default_fallback template", config: make({ chat_template: "tokenizer_default_fallback_chatml" }) },
  ];
  for (const { name, config, ctx } of cases) {
    it(name, () => {
      const issues = validate(config, ctx);
      assert.deepEqual(errors(issues), [], show(issues));
    });
  }
});

describe("operator-owned keys", () => {
  it("exports the four keys the operator sets", () => {
    assert.deepEqual([...OPERATOR_OWNED_KEYS].sort(), ["auto_resume_from_checkpoints", "dataset_prepared_path", "output_dir", "resume_from_checkpoint"]);
  });

  for (const key of OPERATOR_OWNED_KEYS) {
    it(`${key} set by the user is a warning, not an error`, () => {
      const issues = validate(make({ [key]: key === "auto_resume_from_checkpoints" ? true : "/somewhere" }));
      assert.deepEqual(errors(issues), [], show(issues));
      const hit = issues.find((i) => i.path === key);
      assert.equal(hit?.severity, "warning");
      assert.match(hit?.message ?? "", /is managed by the operator and will be overridden/);
    });
  }
});

describe("settings that need no warning either", () => {
  it("operator-owned keys left empty (`key:` as in Axolotl's examples)", () => {
    const config = make(Object.fromEntries(OPERATOR_OWNED_KEYS.map((k) => [k, null])));
    assert.deepEqual(validate(config), []);
  });

  it("DPO chat_template dataset options read by the prompt strategy", () => {
    const config = make({
      rl: "dpo",
      chat_template: "llama3",
      datasets: [
        {
          path: "fozziethebeat/alpaca_messages_2k_dpo_test",
          type: "chat_template.default",
          field_messages: "conversation",
          field_chosen: "chosen",
          field_rejected: "rejected",
          message_property_mappings: { role: "role", content: "content" },
          roles: { system: ["system"], user: ["user"], assistant: ["assistant"] },
        },
      ],
    });
    assert.deepEqual(validate(config), []);
  });
});

describe("unknown keys", () => {
  it("offers no suggestion when nothing is close", () => {
    const issues = validate(make({ zzz_completely_unrelated: 1 }));
    const hit = issues.find((i) => i.path === "zzz_completely_unrelated");
    assert.equal(hit?.severity, "warning");
    assert.doesNotMatch(hit?.message ?? "", /did you mean/);
  });

  it("does not warn about any key in the known-key list", () => {
    const config: Config = {};
    for (const key of TOP_LEVEL_KEYS) config[key] = null;
    const unknown = validate(config).filter((i) => i.message.includes("is not an Axolotl config key"));
    assert.deepEqual(unknown, []);
  });

  it("treats prototype names as ordinary unknown keys", () => {
    const config = JSON.parse('{"__proto__": 1, "constructor": 2, "toString": 3}') as Config;
    const paths = validate({ ...make({}), ...config }).map((i) => i.path);
    for (const key of ["__proto__", "constructor", "toString"]) assert.ok(paths.includes(key), key);
  });
});

describe("garbage input never throws", () => {
  const weird: unknown[] = [
    null,
    undefined,
    0,
    -1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "",
    "x",
    true,
    false,
    [],
    [null],
    [[[]]],
    {},
    { a: { b: { c: [1, { d: null }] } } },
    Symbol("s"),
    () => 1,
    10n,
    new Date(0),
    Object.create(null),
  ];

  it("non-mapping roots give one root error", () => {
    for (const root of [null, undefined, [], [1, 2], "base_model: x", 42, true, Symbol("s"), () => 1, 10n]) {
      const issues = validate(root);
      assert.equal(issues.length, 1);
      assert.equal(issues[0]?.path, "");
      assert.equal(issues[0]?.severity, "error");
    }
  });

  it("every known key set to every weird value", () => {
    for (const value of weird) {
      const config: Config = { ...BASE };
      for (const key of TOP_LEVEL_KEYS) config[key] = value;
      assert.ok(Array.isArray(validate(config)));
      assert.ok(Array.isArray(validate(config, { nodes: 1, gpusPerNode: 1 })));
    }
  });

  it("weird dataset entries and nested values", () => {
    for (const [i, value] of weird.entries()) {
      const entry = { path: value, type: value, ds_type: value, roles_to_train: value, data_files: value, [`odd_${i}`]: value };
      validate(make({ datasets: [value, entry], test_datasets: value, pretraining_dataset: [entry] }));
      validate(make({ fsdp_config: { fsdp_version: value, fsdp_x: value, auto_wrap_policy: value }, peft: value, plugins: value }));
    }
  });

  it("random configs (seeded)", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const keys = [...TOP_LEVEL_KEYS, "typo_key", "datasets", "fsdp_config"];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.5) return pick(weird);
      if (r < 0.75) return Array.from({ length: Math.floor(rand() * 3) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [pick([...keys, "path", "type"]), value(depth + 1)]));
    };
    for (let n = 0; n < 500; n++) {
      const config: Config = {};
      for (let k = 0; k < 12; k++) config[pick(keys)] = value(0);
      validate(config, pick([undefined, { nodes: 1, gpusPerNode: 1 }, { nodes: Number.NaN, gpusPerNode: 2 }]));
    }
  });

  it("hostile objects and contexts", () => {
    const throwingKeys = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("boom");
        },
      },
    );
    const issues = validateAxolotlConfig(throwingKeys);
    assert.equal(issues[0]?.severity, "error");
    const throwingGetter = Object.defineProperty({ ...BASE }, "learning_rate", {
      enumerable: true,
      get() {
        throw new Error("getter");
      },
    });
    assert.ok(Array.isArray(validateAxolotlConfig(throwingGetter)));
    assert.ok(Array.isArray(validateAxolotlConfig(make({ deepspeed: "z.json" }), null as unknown as DeploymentContext)));
    assert.ok(Array.isArray(validateAxolotlConfig(make({ deepspeed: "z.json" }), { nodes: "2" } as unknown as DeploymentContext)));
  });
});

describe("a newer trainer image (version drift)", () => {
  const shape = { nodes: 1, gpusPerNode: 1 };
  const newer = { ...shape, image: "axolotlai/axolotl:0.19.0" };
  const unknownNames = make({ chat_template: "gemma9", rl: "zpo", datasets: [{ path: "a.jsonl", type: "fancy_new_format" }] });
  const paths = ["chat_template", "rl", "datasets[0].type"];

  it("unknown names are errors for the default image, whose Axolotl is the one we check against", () => {
    const issues = validate(unknownNames, { ...shape, image: DEFAULT_TRAINER_IMAGE });
    for (const path of paths)
      assert.ok(
        errors(issues).some((i) => i.path === path),
        `${path}\n${show(issues)}`,
      );
  });

  it("are warnings naming the checked version for another image", () => {
    const issues = validate(unknownNames, newer);
    for (const path of paths) {
      const issue = issues.find((i) => i.path === path);
      assert.equal(issue?.severity, "warning", `${path}\n${show(issues)}`);
      assert.match(issue!.message, /checked against Axolotl 0\.18\.0; image axolotlai\/axolotl:0\.19\.0 may run a newer Axolotl/);
    }
  });

  it("wrong types stay errors whatever the image", () => {
    const issues = validate(make({ chat_template: 5 }), newer);
    assert.ok(
      errors(issues).some((i) => i.path === "chat_template"),
      show(issues),
    );
  });
});
