/**
 * The corpus of e2e/axolotl/validator-diff.test.ts, generated (never hand-labelled: Axolotl's own validator gives
 * every verdict):
 * - every schema key set, on a valid base config, to boundary and wrong-typed values derived from its schema, and
 *   likewise every field of the nested config models and of a dataset entry;
 * - YAML 1.1 spellings, as text (Axolotl reads them with PyYAML, we with src/axolotl/yaml.ts);
 * - the cross-field combinations Axolotl's validators check: hand-picked ones, and for every validator in Axolotl's
 *   source (found by judge.py, which reads its syntax tree) the keys it reads set one at a time, in pairs and
 *   all together;
 * - the configs in examples/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CONFIG_KEYS, definition, keySchema, type JsonSchema } from "../../src/axolotl/schema.ts";
import { parseAxolotlYamlDocuments } from "../../src/axolotl/yaml.ts";
import { HAND_PICKED } from "./yaml-corpus.ts";

export type Config = Record<string, unknown>;

export interface Case {
  name: string;
  /** The config as a value (both sides get the same JSON), or as YAML text (each side parses it its own way). */
  config?: Config;
  text?: string;
  group: "boundary" | "nested" | "yaml" | "cross-field" | "validator-keys" | "examples";
}

/** A small valid LoRA config, the base every single-key case edits. */
export const BASE: Config = {
  base_model: "meta-llama/Llama-3.1-8B-Instruct",
  learning_rate: 0.0002,
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

export function make(patch: Config): Config {
  const out: Config = { ...BASE, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete out[k];
  return out;
}

/**
 * Left out of the corpus, each with its reason: checks that need a GPU or an optional extra, and what our
 * validator checks beyond Axolotl's on purpose (README, "Validation"). Keys here get no single-key cases.
 */
export const EXCLUDED_KEYS: ReadonlyMap<string, string> = new Map([
  // Operator-owned: overridden by the operator with a warning, whatever the user wrote.
  ["output_dir", "operator-owned (overridden)"],
  ["dataset_prepared_path", "operator-owned (overridden)"],
  ["resume_from_checkpoint", "operator-owned (overridden)"],
  ["auto_resume_from_checkpoints", "operator-owned (overridden)"],
  // Dataset lists: entries are generated below with valid paths and types; we also check the type names and
  // paths Axolotl resolves only when it loads data (deliberately stricter).
  ["datasets", "dataset entries: type names and paths are checked beyond Axolotl on purpose"],
  ["test_datasets", "dataset entries: type names and paths are checked beyond Axolotl on purpose"],
  ["pretraining_dataset", "dataset entries: type names and paths are checked beyond Axolotl on purpose"],
  // Optional extras / GPU.
  ["context_parallel_size", "values > 1 need ring-flash-attn (optional extra)"],
  ["sequence_parallel_degree", "values > 1 need ring-flash-attn (optional extra)"],
  ["tokenizer_use_mistral_common", "needs mistral-common's tokenizer files (network)"],
]);

/**
 * Combinations we reject on purpose although Axolotl's validator lets them through (README, "Validation"), kept
 * out of the corpus so that the figure measures agreement, not policy:
 * - `deepspeed` with `fsdp_config`: accelerate runs one distributed backend; Axolotl only compares deepspeed with
 *   the legacy `fsdp` list.
 * - a plugin's keys with the plugin listed: Axolotl's CLI loads the plugin (prepare_plugins) and checks its keys
 *   before validate_config; the judge calls validate_config alone, with no plugin registered, so it cannot say.
 */
export const DELIBERATELY_STRICTER: readonly string[] = ["deepspeed with fsdp_config", "plugin keys with the plugin listed (wrong types)"];

/** Values that probe a schema's edges and its neighbours' types. */
function probes(s: JsonSchema, depth = 0): unknown[] {
  const r = s.$ref ? definition(s.$ref.replace("#/$defs/", "")) : s;
  if (r.anyOf)
    return [
      ...new Set(
        r.anyOf
          .filter((b) => b.type !== "null")
          .flatMap((b) => probes(b, depth))
          .map((v) => JSON.stringify(v)),
      ),
    ].map((v) => JSON.parse(v) as unknown);
  if (r.enum) return [r.enum[0], r.enum[r.enum.length - 1], "not_a_value", 3];
  switch (r.type) {
    case "integer": {
      const lo = r.minimum ?? (r.exclusiveMinimum !== undefined ? r.exclusiveMinimum + 1 : undefined);
      return [0, 1, -1, 2.5, "8", "eight", true, ...(lo !== undefined ? [lo, lo - 1] : [])];
    }
    case "number": {
      const lo = r.minimum ?? r.exclusiveMinimum;
      const hi = r.maximum ?? r.exclusiveMaximum;
      return [0, 0.5, -1, 1.5, "2e-4", "abc", true, ...(lo !== undefined ? [lo, lo - 0.5] : []), ...(hi !== undefined ? [hi, hi + 0.5] : [])];
    }
    case "boolean":
      return [true, false, "yes", "maybe", 1, 2];
    case "string":
      return ["abc", "", 5, true, ...(r.pattern ? ["zzz"] : [])];
    case "array":
      return [
        [],
        "abc",
        [5],
        ...(r.items && depth === 0
          ? probes(r.items, 1)
              .slice(0, 2)
              .map((v) => [v])
          : []),
      ];
    case "object":
      return [{}, "abc", 5];
    default:
      return ["abc", 5];
  }
}

function boundaryCases(): Case[] {
  const out: Case[] = [];
  for (const key of CONFIG_KEYS) {
    if (EXCLUDED_KEYS.has(key)) continue;
    const schema = keySchema(key)!;
    for (const value of probes(schema)) out.push({ name: `${key}=${JSON.stringify(value)}`, config: make({ [key]: value }), group: "boundary" });
  }
  return out;
}

/**
 * Fields of the nested models, each probed inside its parent: the config sections that are pydantic models, and
 * the fields of a `datasets` entry (an SFTDataset) other than those we check beyond Axolotl on purpose.
 */
const NESTED: ReadonlyArray<{ key: string; model: string; base: Config }> = [
  { key: "fsdp_config", model: "FSDPConfig", base: { fsdp_version: 2 } },
  { key: "peft", model: "PeftConfig", base: {} },
  { key: "trl", model: "TRLConfig", base: {} },
  { key: "vllm", model: "VllmConfig", base: {} },
  { key: "qat", model: "QATConfig", base: {} },
  { key: "quantization", model: "PTQConfig", base: {} },
  { key: "dynamic_checkpoint", model: "DynamicCheckpointConfig", base: {} },
  { key: "special_tokens", model: "SpecialTokensConfig", base: {} },
  { key: "selective_checkpointing", model: "SelectiveCheckpointingConfig", base: { gradient_checkpointing: true } },
];
const DATASET_FIELDS_CHECKED_BEYOND_AXOLOTL = new Set(["path", "type", "ds_type"]);

function nestedCases(): Case[] {
  const out: Case[] = [];
  for (const { key, model, base } of NESTED) {
    for (const [field, schema] of Object.entries(definition(model).properties ?? {})) {
      for (const value of probes(schema))
        out.push({ name: `${key}.${field}=${JSON.stringify(value)}`, config: make({ ...base, [key]: { [field]: value } }), group: "nested" });
    }
  }
  const entry = (BASE.datasets as Config[])[0]!;
  for (const [field, schema] of Object.entries(definition("SFTDataset").properties ?? {})) {
    if (DATASET_FIELDS_CHECKED_BEYOND_AXOLOTL.has(field)) continue;
    for (const value of probes(schema))
      out.push({ name: `datasets[0].${field}=${JSON.stringify(value)}`, config: make({ datasets: [{ ...entry, [field]: value }] }), group: "nested" });
  }
  return out;
}

/** YAML 1.1 spellings as a user writes them, each last in a BASE-like config (a repeated key: the last wins). */
function yamlCases(): Case[] {
  const base = [
    "base_model: meta-llama/Llama-3.1-8B-Instruct",
    "micro_batch_size: 2",
    "gradient_accumulation_steps: 4",
    "num_epochs: 1",
    "adapter: lora",
    "lora_r: 16",
    "lora_alpha: 32",
    "datasets:",
    "  - path: data/train.jsonl",
    "    ds_type: json",
    "    type: alpaca",
  ].join("\n");
  const lines = [
    "sequence_len: 500_000",
    "sequence_len: 0x800",
    "sequence_len: 04000",
    "sequence_len: 1:30",
    "sequence_len: 2048.0",
    "sequence_len: 2e3",
    "sequence_len: '2048'",
    "learning_rate: 2e-4",
    "learning_rate: 2.0e-4",
    "learning_rate: 2E-4",
    "learning_rate: .0002",
    "learning_rate: 2.e-4",
    "learning_rate: 1_0.5e-5",
    "learning_rate: .inf",
    "learning_rate: 2e-4x",
    "load_in_8bit: yes",
    "load_in_8bit: Yes",
    "load_in_8bit: on",
    "load_in_8bit: y",
    "load_in_8bit: n",
    "load_in_8bit: off",
    "load_in_8bit: NO",
    "load_in_8bit: 'yes'",
    "load_in_8bit: ~",
    "lora_target_linear: on",
    "lora_target_linear: off",
    "lora_target_linear: y",
    "lora_target_linear: True",
    "lora_dropout: 5e-2",
    "lora_dropout: 0.05",
    "lora_dropout: .05",
    "bf16: auto",
    "bf16: yes",
    "bf16: 'true'",
    "val_set_size: 0",
    "val_set_size: 0.0",
    "val_set_size: 5e-2",
    "seed: 0b101",
    "seed: 0x2A",
    "seed: 1_000",
    "wandb_name: 2024-01-01",
    "wandb_name: '2024-01-01'",
    "wandb_name: yes",
    "wandb_name: 1.0",
    "chat_template: chatml",
    "chat_template: on",
    "warmup_ratio: 1e-1",
    "warmup_ratio: 0.1",
    "max_steps: 1_000",
    "max_steps: 1:00",
  ];
  // Every hand-picked YAML spelling (yaml-corpus.ts) as the value of a boolean, an integer, a float and a string key.
  const plain = HAND_PICKED.filter((v) => /^[\w.+\-:~=<]+$/.test(v));
  const typed = ["lora_target_linear", "seed", "warmup_ratio", "wandb_name"].flatMap((key) => plain.map((v) => `${key}: ${v}`));
  return [...lines, ...typed].map((line) => ({ name: `yaml ${line}`, text: `${base}\nlearning_rate: 0.0002\n${line}\n`, group: "yaml" as const }));
}

/** The combinations Axolotl's cross-field validators look at, each with its neighbours. */
function crossFieldCases(): Case[] {
  const c = (name: string, patch: Config): Case => ({ name, config: make(patch), group: "cross-field" });
  const fsdp2 = { fsdp_version: 2, fsdp_config: { auto_wrap_policy: "TRANSFORMER_BASED_WRAP", transformer_layer_cls_to_wrap: "LlamaDecoderLayer" } };
  const cases: Case[] = [
    c("base", {}),
    c("no base_model", { base_model: undefined }),
    c("no learning_rate", { learning_rate: undefined }),
    c("no datasets", { datasets: undefined }),
    c("only micro_batch_size", { gradient_accumulation_steps: undefined }),
    c("micro_batch_size + batch_size", { gradient_accumulation_steps: undefined, batch_size: 16 }),
    c("gradient_accumulation_steps + batch_size", { batch_size: 16 }),
    // evaluation and saving
    c("evals_per_epoch 0", { evals_per_epoch: 0 }),
    c("evals_per_epoch with val_set_size", { evals_per_epoch: 4, val_set_size: 0.05 }),
    c("eval_steps + evals_per_epoch", { eval_steps: 10, evals_per_epoch: 2, val_set_size: 0.05 }),
    c("save_steps + saves_per_epoch", { save_steps: 10, saves_per_epoch: 2 }),
    c("save_strategy no + save_steps", { save_strategy: "no", save_steps: 10 }),
    c("save_strategy epoch + save_steps", { save_strategy: "epoch", save_steps: 10 }),
    c("eval_strategy epoch + eval_steps", { eval_strategy: "epoch", eval_steps: 10, val_set_size: 0.05 }),
    c("eval_strategy epoch + evals_per_epoch", { eval_strategy: "epoch", evals_per_epoch: 2, val_set_size: 0.05 }),
    c("save_strategy best without metric", { save_strategy: "best" }),
    c("save_strategy best with metric", { save_strategy: "best", metric_for_best_model: "eval_loss", val_set_size: 0.05 }),
    c("eval_steps with val_set_size 0", { eval_steps: 10, val_set_size: 0 }),
    c("eval_strategy steps with val_set_size 0", { eval_strategy: "steps", val_set_size: 0 }),
    c("eval_steps without val_set_size", { eval_steps: 10 }),
    c("early_stopping_patience alone", { early_stopping_patience: 3 }),
    c("early_stopping_patience + save/eval steps", { early_stopping_patience: 3, save_steps: 20, eval_steps: 10, val_set_size: 0.05 }),
    c("early_stopping_patience + uneven steps", { early_stopping_patience: 3, save_steps: 25, eval_steps: 10, val_set_size: 0.05 }),
    c("early_stopping_patience + save_steps only", { early_stopping_patience: 3, save_steps: 20 }),
    c("do_bench_eval alone", { do_bench_eval: true }),
    c("warmup_steps + warmup_ratio", { warmup_steps: 10, warmup_ratio: 0.1 }),
    c("max_memory + gpu_memory_limit", { max_memory: { "0": "20GiB" }, gpu_memory_limit: "20GiB" }),
    c("val_set_size + test_datasets", { val_set_size: 0.05, test_datasets: [{ path: "data/test.jsonl", ds_type: "json", type: "alpaca", split: "train" }] }),
    // adapters and quantization
    c("load_in_8bit without adapter", { adapter: undefined, load_in_8bit: true }),
    c("load_in_4bit without adapter", { adapter: undefined, load_in_4bit: true }),
    c("qlora without 4bit", { adapter: "qlora" }),
    c("qlora with 4bit", { adapter: "qlora", load_in_4bit: true }),
    c("qlora with 8bit", { adapter: "qlora", load_in_4bit: true, load_in_8bit: true }),
    c("qlora with gptq", { adapter: "qlora", load_in_4bit: true, gptq: true }),
    c("qlora merge_lora", { adapter: "qlora", merge_lora: true }),
    c("unknown adapter", { adapter: "dora" }),
    c("llama-adapter", { adapter: "llama-adapter" }),
    c("lora_r without adapter", { adapter: undefined }),
    c("lora_target_modules + linear", { lora_target_modules: ["q_proj"] }),
    // attention and precision
    c("attn_implementation sdpa", { attn_implementation: "sdpa" }),
    c("attn_implementation short form", { attn_implementation: "flash" }),
    c("attn_implementation unknown", { attn_implementation: "magic" }),
    c("attn_implementation hub path", { attn_implementation: "kernels-community/flash-attn3" }),
    c("flash_attention + attn_implementation", { flash_attention: true, attn_implementation: "sdpa" }),
    c("flash_attention alone", { flash_attention: true }),
    c("sdp_attention alone", { sdp_attention: true }),
    c("s2_attention", { s2_attention: true }),
    c("save_safetensors false", { save_safetensors: false }),
    c("bf16 + fp16", { bf16: true, fp16: true }),
    c("fp16 alone", { fp16: true }),
    c("tf32 alone", { tf32: true }),
    c("gemma4_hybrid_attn_impl with sdpa", { gemma4_hybrid_attn_impl: true, attn_implementation: "sdpa" }),
    c("sample_packing with eager", { sample_packing: true, attn_implementation: "eager" }),
    c("sample_packing with sdpa", { sample_packing: true, attn_implementation: "sdpa" }),
    c("sample_packing alone", { sample_packing: true }),
    // chat templates
    c("chat_template gemma4_unified", { chat_template: "gemma4_unified" }),
    c("chat_template jinja without template", { chat_template: "jinja" }),
    c("chat_template jinja with template", { chat_template: "jinja", chat_template_jinja: "{{ messages }}" }),
    c("chat_template fallback", { chat_template: "tokenizer_default_fallback_chatml" }),
    // distributed
    c("fsdp2", { ...fsdp2 }),
    c("fsdp2 + adamw_bnb_8bit", { ...fsdp2, optimizer: "adamw_bnb_8bit" }),
    c("fsdp2 + adamw_torch_8bit", { ...fsdp2, optimizer: "adamw_torch_8bit" }),
    c("fsdp1 + adamw_bnb_8bit", { fsdp_config: { auto_wrap_policy: "TRANSFORMER_BASED_WRAP" }, optimizer: "adamw_bnb_8bit" }),
    c("fsdp_config without version", { fsdp_config: { auto_wrap_policy: "TRANSFORMER_BASED_WRAP" } }),
    c("fsdp_version 1", { fsdp_version: 1, fsdp_config: { auto_wrap_policy: "TRANSFORMER_BASED_WRAP" } }),
    c("fsdp2 prefixed keys", { fsdp_version: 2, fsdp_config: { fsdp_offload_params: true, fsdp_auto_wrap_policy: "TRANSFORMER_BASED_WRAP" } }),
    c("fsdp2 size wrap without min", { fsdp_version: 2, fsdp_config: { auto_wrap_policy: "SIZE_BASED_WRAP" } }),
    c("fsdp2 + qlora", { ...fsdp2, adapter: "qlora", load_in_4bit: true }),
    c("fsdp2 + gradient_checkpointing", { ...fsdp2, gradient_checkpointing: true }),
    c("fsdp2 + activation_checkpointing + gradient_checkpointing", {
      fsdp_version: 2,
      fsdp_config: { activation_checkpointing: true },
      gradient_checkpointing: true,
    }),
    c("fp8_enable_fsdp_float8_all_gather without fsdp2", { fp8_enable_fsdp_float8_all_gather: true }),
    c("fsdp_version without fsdp_config", { fsdp_version: 2 }),
    // RL and EBFT
    c("rl dpo", { rl: "dpo", datasets: [{ path: "Intel/orca_dpo_pairs", type: "chatml.intel", split: "train" }] }),
    c("rl kto", { rl: "kto", datasets: [{ path: "x/kto", type: "chatml.intel", split: "train" }] }),
    c("rl ebft", { rl: "ebft" }),
    c("ebft strided + torch_compile + gradient_checkpointing", { rl: "ebft", ebft: { mode: "strided" }, torch_compile: true, gradient_checkpointing: true }),
    c("ebft strided + torch_compile", { rl: "ebft", ebft: { mode: "strided" }, torch_compile: true }),
    c("ebft strided + gradient_checkpointing", { rl: "ebft", ebft: { mode: "strided" }, gradient_checkpointing: true }),
    // streaming / pretraining
    c("streaming without max_steps", { streaming: true }),
    c("streaming with max_steps", { streaming: true, max_steps: 100 }),
    c("streaming + val_set_size", { streaming: true, max_steps: 100, val_set_size: 0.05 }),
    c("pretraining_dataset without max_steps", { datasets: undefined, pretraining_dataset: [{ path: "allenai/c4", name: "en", type: "pretrain" }] }),
    c("pretraining_dataset with max_steps", {
      datasets: undefined,
      pretraining_dataset: [{ path: "allenai/c4", name: "en", type: "pretrain" }],
      max_steps: 100,
    }),
    c("push_dataset_to_hub without token", { push_dataset_to_hub: "me/ds" }),
    c("push_dataset_to_hub with token", { push_dataset_to_hub: "me/ds", hf_use_auth_token: true }),
    // removed / deprecated keys
    c("max_packed_sequence_len", { max_packed_sequence_len: 2048 }),
    c("rope_scaling", { rope_scaling: { type: "linear", factor: 2 } }),
    c("noisy_embedding_alpha", { noisy_embedding_alpha: 5 }),
    c("dpo_beta", { dpo_beta: 0.1 }),
    c("evaluation_strategy", { evaluation_strategy: "steps" }),
    c("sharegpt dataset", { datasets: [{ path: "data/x.jsonl", ds_type: "json", type: "sharegpt" }] }),
    c("plugin keys without plugin", { liger_rms_norm: true }),
    c("plugin keys with plugin", { plugins: ["axolotl.integrations.liger.LigerPlugin"], liger_rms_norm: true }),
    c("unknown key", { lora_rr: 8 }),
  ];
  return cases;
}

/** A value that makes a key "on" for a validator: true, 2, 0.5, the first enum value, "abc", a one-item list. */
function typical(s: JsonSchema): unknown {
  const r = s.$ref ? definition(s.$ref.replace("#/$defs/", "")) : s;
  if (r.anyOf) return r.anyOf.some((b) => b.type === "boolean") ? true : typical(r.anyOf.find((b) => b.type !== "null") ?? {});
  if (r.enum) return r.enum[0];
  if (r.const !== undefined) return r.const;
  switch (r.type) {
    case "boolean":
      return true;
    case "integer":
      return Math.max(2, r.minimum ?? 2);
    case "number":
      return 0.5;
    case "array":
      return r.items ? [typical(r.items)] : ["abc"];
    case "object":
      return {};
    default:
      return "abc";
  }
}

/** Keys BASE needs to stay a runnable config: validators that read them are probed through their other keys. */
const BASE_KEYS = new Set(["base_model", "learning_rate", "micro_batch_size", "gradient_accumulation_steps", "datasets"]);

/**
 * Validators that open the file `deepspeed` names (a JSON file in the trainer image, which no validator outside
 * the image can read): check_deepcompile and check_tensor_parallel_size_update_ds_json. Combinations that would
 * reach that read are left out.
 */
const READS_DEEPSPEED_FILE = (patch: Config) =>
  truthy(patch.deepspeed) && (truthy(patch.deepcompile) || (typeof patch.tensor_parallel_size === "number" && patch.tensor_parallel_size > 1));

function truthy(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== "" && !(Array.isArray(v) && v.length === 0);
}

/** The other values a validator may test a key for: every enum value (up to 8), and false for a boolean. */
function variants(s: JsonSchema): unknown[] {
  const r = s.$ref ? definition(s.$ref.replace("#/$defs/", "")) : s;
  const branches = (r.anyOf ?? [r]).map((b) => (b.$ref ? definition(b.$ref.replace("#/$defs/", "")) : b));
  return [...branches.flatMap((b) => (b.enum ?? []).slice(0, 8)), ...(branches.some((b) => b.type === "boolean") ? [false] : [])];
}

/** BASE as a full fine-tune: no adapter, so the validators that look at full fine-tunes get their turn. */
const FULL: Config = { adapter: undefined, lora_r: undefined, lora_alpha: undefined, lora_dropout: undefined, lora_target_linear: undefined };

function validatorCases(validators: Record<string, string[]>): Case[] {
  const top = Object.fromEntries(Object.entries(validators).filter(([name]) => !NESTED_VALIDATORS.some((n) => name.includes(` ${n.model}.`))));
  return [...validatorCasesOn(top, {}, ""), ...validatorCasesOn(top, FULL, " (full fine-tune)"), ...nestedValidatorCases(validators)];
}

/** Validators of nested models: their keys go inside the section the model validates. */
const NESTED_VALIDATORS: ReadonlyArray<{ model: string; place: (fields: Config) => Config }> = [
  { model: "SFTDataset", place: (fields) => ({ datasets: [{ ...(BASE.datasets as Config[])[0], ...fields }] }) },
  { model: "FSDPConfig", place: (fields) => ({ fsdp_version: 2, fsdp_config: fields }) },
];

function nestedValidatorCases(validators: Record<string, string[]>): Case[] {
  const out: Case[] = [];
  for (const { model, place } of NESTED_VALIDATORS) {
    const props = definition(model).properties ?? {};
    for (const [validator, all] of Object.entries(validators).filter(([name]) => name.includes(` ${model}.`))) {
      const keys = all.filter((k) => props[k] && !DATASET_FIELDS_CHECKED_BEYOND_AXOLOTL.has(k));
      const value = (k: string, v?: unknown) => (v === undefined ? typical(props[k]!) : v);
      const subsets = [...keys.map((k) => [k]), ...keys.flatMap((a, i) => keys.slice(i + 1).map((b) => [a, b]))];
      for (const subset of subsets)
        out.push({
          name: `${validator}: ${subset.join(" + ")}`,
          config: make(place(Object.fromEntries(subset.map((k) => [k, value(k)])))),
          group: "validator-keys",
        });
      for (const key of keys) {
        for (const v of variants(props[key]!)) {
          out.push({
            name: `${validator}: ${key}=${JSON.stringify(v)} + the others`,
            config: make(place({ ...Object.fromEntries(keys.map((k) => [k, value(k)])), [key]: v })),
            group: "validator-keys",
          });
        }
      }
    }
  }
  return out;
}

function validatorCasesOn(validators: Record<string, string[]>, base: Config, label: string): Case[] {
  const out: Case[] = [];
  const add = (name: string, patch: Config) => {
    if (!READS_DEEPSPEED_FILE(patch)) out.push({ name: `${name}${label}`, config: make({ ...base, ...patch }), group: "validator-keys" });
  };
  for (const [validator, all] of Object.entries(validators)) {
    const keys = all.filter((k) => keySchema(k) && !EXCLUDED_KEYS.has(k) && !BASE_KEYS.has(k));
    const on = (subset: string[]) => Object.fromEntries(subset.map((k) => [k, typical(keySchema(k)!)]));
    const subsets = [
      ...keys.map((k) => [k]),
      ...(keys.length <= 8 ? keys.flatMap((a, i) => keys.slice(i + 1).map((b) => [a, b])) : []),
      ...(keys.length > 2 ? [keys] : []),
    ];
    for (const subset of subsets) add(`${validator}: ${subset.join(" + ")}`, on(subset));
    // Each key at each of its other values, alone and with the validator's other keys on.
    for (const key of keys) {
      for (const value of variants(keySchema(key)!)) {
        add(`${validator}: ${key}=${JSON.stringify(value)}`, { [key]: value });
        if (keys.length > 1) add(`${validator}: ${key}=${JSON.stringify(value)} + the others`, { ...on(keys), [key]: value });
      }
    }
  }
  return out;
}

const EXAMPLES = fileURLToPath(new URL("../../examples/", import.meta.url));

/** Every config in examples/: a FineTuneJob's spec.config, or a plain Axolotl config file. */
function exampleCases(): Case[] {
  const files = [
    ...readdirSync(EXAMPLES).map((f) => join(EXAMPLES, f)),
    ...readdirSync(join(EXAMPLES, "configs")).map((f) => join(EXAMPLES, "configs", f)),
  ].filter((f) => /\.ya?ml$/.test(f));
  return files.flatMap((file) =>
    parseAxolotlYamlDocuments(readFileSync(file, "utf8")).flatMap((doc, i): Case[] => {
      const d = doc as { kind?: string; spec?: { config?: Config } } | null;
      const config = d?.kind === "FineTuneJob" ? d.spec?.config : (d as Config | null);
      return config ? [{ name: `${file.slice(EXAMPLES.length)}#${i}`, config, group: "examples" }] : [];
    }),
  );
}

/** The whole corpus; `validators` (judge.py's answer) adds the validator-driven combinations. */
export function corpus(validators: Record<string, string[]> = {}): Case[] {
  const all = [...boundaryCases(), ...nestedCases(), ...yamlCases(), ...crossFieldCases(), ...validatorCases(validators), ...exampleCases()];
  // The same config reached twice (a key probed alone by two validators) is checked once.
  const seen = new Set<string>();
  return all.filter((c) => {
    const id = c.text ?? JSON.stringify(c.config);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
