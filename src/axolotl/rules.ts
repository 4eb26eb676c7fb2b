/**
 * Value checks and the per-key rule tables the validator walks. Each table entry mirrors a
 * field or validator in Axolotl's pydantic schema (see known-keys.ts for the files).
 *
 * Type policy: Axolotl's pydantic models run in lax mode (`"true"` becomes a bool, `"8"` an
 * int). We are strict on purpose: the operator reads some of these values itself (batch
 * sizes, adapter, deepspeed), and a quoted number in a YAML file is almost always a mistake.
 * The one exception is `learning_rate`, which Axolotl declares `str | float` because PyYAML
 * reads `2e-5` (no dot) as a string.
 */

/** A predicate with the phrase that completes "`key` must be ...". */
export interface Check {
  test(value: unknown): boolean;
  expects: string;
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Own-property read: a config key named `constructor` or `__proto__` must not reach Object.prototype. */
export function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/**
 * Python truthiness, because Axolotl's cross-field validators test `data.get(key)`:
 * 0, "", [], {}, false and null all count as "not set".
 */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (typeof v === "number" && Number.isNaN(v)) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMapping(v)) return Object.keys(v).length > 0;
  return true;
}

/** Short rendering of a value for messages; never throws, never dumps a whole mapping. */
export function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return typeof v;
}

const FLOAT_STRING = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

export const bool: Check = { test: (v) => typeof v === "boolean", expects: "a boolean (true/false)" };
export const str: Check = { test: (v) => typeof v === "string", expects: "a string" };
export const nonEmptyStr: Check = {
  test: (v) => typeof v === "string" && v.trim().length > 0,
  expects: "a non-empty string",
};
export const mapping: Check = { test: isMapping, expects: "a mapping" };

export function int(min?: number): Check {
  const expects =
    min === undefined ? "an integer" : min === 1 ? "a positive integer" : min === 0 ? "a non-negative integer" : `an integer >= ${min}`;
  return {
    test: (v) => typeof v === "number" && Number.isInteger(v) && (min === undefined || v >= min),
    expects,
  };
}

interface Range {
  gt?: number;
  ge?: number;
  lt?: number;
  le?: number;
}

function rangeText(r: Range): string {
  const lo = r.gt !== undefined ? `> ${r.gt}` : r.ge !== undefined ? `>= ${r.ge}` : "";
  const hi = r.lt !== undefined ? `< ${r.lt}` : r.le !== undefined ? `<= ${r.le}` : "";
  if (r.ge !== undefined && r.lt !== undefined) return ` in [${r.ge}, ${r.lt})`;
  if (r.ge !== undefined && r.le !== undefined) return ` in [${r.ge}, ${r.le}]`;
  return [lo, hi].filter(Boolean).map((s) => ` ${s}`).join(" and");
}

function inRange(n: number, r: Range): boolean {
  return (
    Number.isFinite(n) &&
    (r.gt === undefined || n > r.gt) &&
    (r.ge === undefined || n >= r.ge) &&
    (r.lt === undefined || n < r.lt) &&
    (r.le === undefined || n <= r.le)
  );
}

export function num(r: Range = {}): Check {
  return { test: (v) => typeof v === "number" && inRange(v, r), expects: `a number${rangeText(r)}` };
}

export function literal(...values: readonly (string | number | boolean)[]): Check {
  return {
    test: (v) => values.some((x) => x === v),
    expects: `one of ${values.map((x) => (typeof x === "string" ? JSON.stringify(x) : String(x))).join(", ")}`,
  };
}

export function anyOf(...checks: Check[]): Check {
  return { test: (v) => checks.some((c) => c.test(v)), expects: checks.map((c) => c.expects).join(" or ") };
}

export function listOf(item: Check, expects: string): Check {
  return { test: (v) => Array.isArray(v) && v.every((x) => item.test(x)), expects };
}

export const strList = listOf(str, "a list of strings");
export const intList = listOf(int(), "a list of integers");
export const strOrStrList = anyOf(str, strList);
const boolOrAuto = anyOf(bool, literal("auto"));

/** `learning_rate: str | float` with a float() conversion; we also require it to be > 0. */
export const learningRate: Check = {
  test: (v) => {
    if (typeof v === "number") return inRange(v, { gt: 0 });
    return typeof v === "string" && FLOAT_STRING.test(v) && inRange(Number(v), { gt: 0 });
  },
  expects: "a number > 0 (or a numeric string such as \"2e-5\")",
};

/**
 * `val_set_size`: Axolotl uses `int(v) if v > 1 else float(v)` for the split, and Hugging
 * Face accepts a float only in (0, 1) and an int only as a row count; 0 means no eval split.
 */
export const valSetSize: Check = {
  test: (v) => typeof v === "number" && Number.isFinite(v) && ((v >= 0 && v < 1) || (v > 1 && Number.isInteger(v))),
  expects: "a fraction in [0, 1) or a whole number of rows greater than 1",
};

/** eval_steps / save_steps: `int | float`, a step count or a fraction of total steps (HF rule). */
export const stepsOrFraction: Check = {
  test: (v) => typeof v === "number" && Number.isFinite(v) && v > 0 && (v < 1 || Number.isInteger(v)),
  expects: "a positive integer (steps) or a fraction in (0, 1) of the total steps",
};

/**
 * Types of non-boolean top-level keys. Not every schema key is listed: keys typed `Any`, nested models
 * (trl, vllm, qat, ...) and rarely used ones are left to Axolotl. Keys with dedicated rules in
 * validate.ts (adapter, attn_implementation, chat_template, datasets, fsdp_config, ...) are
 * also handled there.
 */
const TYPED_KEYS: Readonly<Record<string, Check>> = {
  base_model: nonEmptyStr,
  base_model_config: str,
  tokenizer_config: str,
  tokenizer_type: str,
  processor_type: str,
  model_type: str,
  model_revision: str,
  model_config: mapping,
  model_kwargs: mapping,
  hub_model_id: str,
  hub_strategy: str,
  output_dir: str,
  dataset_prepared_path: str,
  resume_from_checkpoint: str,
  lora_model_dir: str,

  learning_rate: learningRate,
  micro_batch_size: int(1),
  gradient_accumulation_steps: int(1),
  batch_size: int(1),
  eval_batch_size: int(1),
  num_epochs: num({ gt: 0 }), // `float` in the schema: fractional epochs are allowed
  max_steps: int(1),
  sequence_len: int(1),
  eval_sequence_len: int(1),
  min_sample_len: int(0),
  max_prompt_len: int(1),
  pad_to_multiple_of: int(1),
  warmup_steps: int(0),
  warmup_ratio: num({ ge: 0, le: 1 }),
  weight_decay: num({ ge: 0 }),
  max_grad_norm: num({ ge: 0 }),
  adam_beta1: num({ ge: 0, lt: 1 }),
  adam_beta2: num({ ge: 0, lt: 1 }),
  adam_epsilon: num({ gt: 0 }),
  cosine_min_lr_ratio: num({ ge: 0, le: 1 }),
  cosine_constant_lr_ratio: num({ ge: 0, le: 1 }),
  optimizer: nonEmptyStr,
  lr_scheduler: nonEmptyStr,
  lr_scheduler_kwargs: mapping,
  optim_args: anyOf(str, mapping),
  seed: int(),
  logging_steps: int(1),
  save_total_limit: int(0),
  evals_per_epoch: int(1),
  saves_per_epoch: int(1),
  eval_steps: stepsOrFraction,
  save_steps: stepsOrFraction,
  eval_strategy: literal("no", "steps", "epoch"),
  save_strategy: literal("no", "steps", "epoch", "best"),
  early_stopping_patience: int(1),
  val_set_size: valSetSize,
  dataset_num_proc: int(1),
  dataset_processes: int(1),
  dataloader_num_workers: int(0),
  dataloader_prefetch_factor: int(1),
  ddp_timeout: int(1),
  neftune_noise_alpha: num({ gt: 0 }), // validate_neftune_noise_alpha: "must be > 0.0"

  lora_r: int(1),
  lora_alpha: int(1),
  lora_dropout: num({ ge: 0, lt: 1 }),
  lora_target_modules: strOrStrList,
  lora_target_parameters: strOrStrList,
  lora_modules_to_save: strList,
  peft_layers_to_transform: intList,
  merge_method: literal("legacy", "memory_efficient"),
  loraplus_lr_ratio: num({ gt: 0 }),

  bf16: boolOrAuto,
  tf32: boolOrAuto,
  torch_compile: boolOrAuto,
  batch_flattening: boolOrAuto,
  gradient_checkpointing: anyOf(bool, literal("offload", "offload_disk")),
  gradient_checkpointing_kwargs: mapping,
  activation_offloading: anyOf(bool, literal("legacy", "disk")),
  torch_compile_mode: literal("default", "reduce-overhead", "max-autotune"),
  excess_length_strategy: literal("drop", "truncate", "raise"),
  fsdp_final_state_dict_type: literal("FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT"),

  deepspeed: anyOf(nonEmptyStr, mapping),
  fsdp: strList,
  fsdp_config: mapping,
  fsdp_version: literal(1, 2),
  context_parallel_size: int(1),
  sequence_parallel_degree: int(1),
  tensor_parallel_size: int(1),
  dp_shard_size: int(1),
  dp_replicate_size: int(1),
  max_memory: mapping,
  gpu_memory_limit: anyOf(int(1), nonEmptyStr),

  chat_template_jinja: str,
  chat_template_kwargs: mapping,
  default_system_message: str,
  special_tokens: mapping,
  tokens: strList,
  eot_tokens: strList,
  plugins: strList,
  unfrozen_parameters: strList,
  fix_untrained_tokens: anyOf(int(0), intList),
  accelerator_config: mapping,

  wandb_project: str,
  wandb_entity: str,
  wandb_name: str,
  wandb_mode: str,
  wandb_log_model: str,
  mlflow_tracking_uri: str,
  mlflow_experiment_name: str,
};

/** `bool | None` keys of the schema that users commonly set. */
const BOOLEAN_KEYS = [
  "load_in_8bit",
  "load_in_4bit",
  "lora_target_linear",
  "lora_fan_in_fan_out",
  "lora_on_cpu",
  "peft_use_dora",
  "peft_use_rslora",
  "merge_lora",
  "gptq",
  "qlora_sharded_model_loading",
  "trust_remote_code",
  "tokenizer_use_fast",
  "tokenizer_legacy",
  "strict",
  "auto_resume_from_checkpoints",
  "save_safetensors",
  "save_only_model",
  "save_first_step",
  "load_best_model_at_end",
  "train_on_inputs",
  "group_by_length",
  "auto_find_batch_size",
  "fp16",
  "fp8",
  "bfloat16",
  "float16",
  "float32",
  "sample_packing",
  "eval_sample_packing",
  "pad_to_sequence_len",
  "sample_packing_sequentially",
  "curriculum_sampling",
  "flash_attention",
  "sdp_attention",
  "xformers_attention",
  "flex_attention",
  "sage_attention",
  "eager_attention",
  "s2_attention",
  "flash_attn_cross_entropy",
  "flash_attn_fuse_mlp",
  "flash_optimum",
  "lora_mlp_kernel",
  "lora_qkv_kernel",
  "lora_o_kernel",
  "lora_embedding_kernel",
  "chunked_cross_entropy",
  "tiled_mlp",
  "deepcompile",
  "fp8_enable_fsdp_float8_all_gather",
  "use_wandb",
  "use_mlflow",
  "use_tensorboard",
  "use_otel_metrics",
  "shuffle_merged_datasets",
  "shuffle_before_merging_datasets",
  "skip_prepare_dataset",
  "dataset_exact_deduplication",
  "dataset_keep_in_memory",
  "streaming",
  "dataloader_pin_memory",
  "dataloader_drop_last",
  "remove_unused_columns",
  "hf_use_auth_token",
  "ddp_find_unused_parameters",
  "low_cpu_mem_usage",
  "include_tokens_per_second",
  "reward_model",
  "process_reward_model",
  "resize_token_embeddings_to_32x",
  "shrink_embeddings",
  "gemma4_hybrid_attn_impl",
  "quantize_moe_experts",
  "liger_rope",
  "liger_rms_norm",
  "liger_layer_norm",
  "liger_glu_activation",
  "liger_cross_entropy",
  "liger_fused_linear_cross_entropy",
  "cut_cross_entropy",
] as const;

/** Every top-level key with a type check: the typed keys above plus the plain booleans. */
export const TOP_LEVEL_TYPES: Readonly<Record<string, Check>> = {
  ...Object.fromEntries(BOOLEAN_KEYS.map((key) => [key, bool])),
  ...TYPED_KEYS,
};

/** Types of dataset-entry keys (schemas/datasets.py). `type` and `path` have their own rules. */
export const DATASET_FIELD_TYPES: Readonly<Record<string, Check>> = {
  split: str,
  name: str,
  revision: str,
  ds_type: str,
  data_files: strOrStrList,
  chat_template: str,
  chat_template_jinja: str,
  conversation: str,
  input_format: str,
  input_transform: str,
  field: str,
  field_human: str,
  field_model: str,
  field_messages: str,
  field_tools: str,
  field_thinking: str,
  template_thinking_key: str,
  message_field_role: str,
  message_field_content: str,
  message_field_training: str,
  message_field_training_detail: str,
  logprobs_field: str,
  text_column: str,
  step_separator: str,
  message_property_mappings: {
    test: (v) => isMapping(v) && Object.values(v).every((x) => typeof x === "string"),
    expects: "a mapping of strings (e.g. {role: from, content: value})",
  },
  roles_to_train: strList,
  roles: {
    test: (v) => isMapping(v) && Object.values(v).every((x) => strList.test(x)),
    expects: "a mapping of role -> list of source role names",
  },
  train_on_eos: literal("all", "turn", "last"),
  drop_system_message: bool,
  trust_remote_code: bool,
  split_thinking: bool,
  train_on_last_step_only: bool,
  shards: int(1),
  shards_idx: int(0),
  preprocess_shards: int(1),
  skip: int(0),
  temperature: num({ gt: 0 }),
  max_completion_length: int(1),
  length: int(1),
  sequence_length: int(1),
  min_input_id: int(0),
  max_input_id: int(0),
  seed: int(),
};

/** Top-level keys Axolotl rejects outright (schemas/deprecated.py raises DeprecationWarning). */
export const REMOVED_KEYS: Readonly<Record<string, { when: "truthy" | "set"; message: string }>> = {
  max_packed_sequence_len: { when: "truthy", message: "is no longer supported; use `sample_packing: true`" },
  rope_scaling: { when: "truthy", message: "is no longer supported; put it under `model_config` (e.g. model_config: {rope_scaling: ...})" },
  dpo_use_logits_to_keep: { when: "set", message: "is no longer supported (removed in TRL >= 0.29.0)" },
  dpo_generate_during_eval: { when: "set", message: "is no longer supported (removed in TRL >= 0.29.0)" },
  dpo_norm_loss: { when: "set", message: "is no longer supported (breaking changes in TRL >= 0.29.0)" },
  rpo_alpha: { when: "set", message: "is deprecated in TRL >= 0.29.0 and not supported by Axolotl" },
  s2_attention: { when: "truthy", message: "(shifted-sparse attention) is no longer supported" },
  flash_attn_rms_norm: { when: "truthy", message: "is no longer supported" },
};

/** Top-level keys Axolotl still accepts but logs as deprecated, with the replacement. */
export const DEPRECATED_KEYS: Readonly<Record<string, string>> = {
  noisy_embedding_alpha: "is deprecated; use `neftune_noise_alpha`",
  dpo_beta: "is deprecated; use `rl_beta`",
  evaluation_strategy: "is deprecated; use `eval_strategy`",
  eval_table_size: "is deprecated; use `generate_samples: true` with `num_generation_samples`",
  eval_max_new_tokens: "is deprecated; use `generation_max_new_tokens`",
  dataset_processes: "is deprecated; use `dataset_num_proc`",
  pretrain_multipack_buffer_size: "is deprecated; use `streaming_multipack_buffer_size`",
  sequence_parallel_degree: "is deprecated; use `context_parallel_size`",
  fsdp: "(a list) is deprecated; configure FSDP with `fsdp_config` and `fsdp_version`",
  fsdp_final_state_dict_type: "is deprecated; use `fsdp_config.final_state_dict_type`",
};

/**
 * Pairs Axolotl refuses together, with its own test ("truthy" = `data.get(a) and data.get(b)`,
 * "notNull" = `is not None`) and wording. The error is reported at the second key.
 */
export const EXCLUSIVE_PAIRS: readonly { a: string; b: string; when: "truthy" | "notNull"; message: string }[] = [
  {
    a: "save_steps",
    b: "saves_per_epoch",
    when: "truthy",
    message: "`save_steps` and `saves_per_epoch` are mutually exclusive and cannot be used together",
  },
  {
    a: "eval_steps",
    b: "evals_per_epoch",
    when: "truthy",
    message: "`eval_steps` and `evals_per_epoch` are mutually exclusive and cannot be used together",
  },
  {
    a: "warmup_steps",
    b: "warmup_ratio",
    when: "truthy",
    message: "`warmup_steps` and `warmup_ratio` are mutually exclusive",
  },
  {
    a: "max_memory",
    b: "gpu_memory_limit",
    when: "notNull",
    message: "`max_memory` and `gpu_memory_limit` are mutually exclusive and cannot be used together",
  },
  {
    a: "gradient_accumulation_steps",
    b: "batch_size",
    when: "truthy",
    message: "please set only one of `gradient_accumulation_steps` or `batch_size` (batch_size is derived from the other two)",
  },
  {
    a: "deepspeed",
    b: "fsdp",
    when: "truthy",
    message: "`deepspeed` and `fsdp` cannot be used together",
  },
  {
    // Axolotl's schema only compares deepspeed with the legacy `fsdp` list, but both would be
    // handed to accelerate, which supports one distributed backend per run.
    a: "deepspeed",
    b: "fsdp_config",
    when: "truthy",
    message: "`deepspeed` and `fsdp_config` cannot be used together: pick DeepSpeed or FSDP",
  },
  {
    a: "val_set_size",
    b: "test_datasets",
    when: "truthy",
    message: "non-zero `val_set_size` should not be used with `test_datasets`: use one source of evaluation data",
  },
];
