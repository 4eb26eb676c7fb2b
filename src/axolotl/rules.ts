/**
 * Value helpers and the hand-written tables of cross-field and deprecation rules the validator walks. Types,
 * enums and bounds are not here: they come from Axolotl's own schema (schema.ts). Each table names the Axolotl
 * validator it mirrors (file and function in axolotl 0.18.0).
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

/** Top-level keys Axolotl rejects outright: deprecated.py DeprecatedParameters.validate_<key> (field validators). */
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

/**
 * Top-level keys Axolotl still accepts but logs as deprecated, with the replacement (deprecated.py
 * DeprecatedParameters.validate_<key>, validation.py ComplexValidationMixin.check_neftune and
 * TrainingValidationMixin.check_multipack_buffer_size move some to their new name).
 */
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
 * "notNull" = `is not None`) and wording, and the validator (`mirrors`, under axolotl/utils/schemas/). The error is
 * reported at the second key.
 */
export const EXCLUSIVE_PAIRS: readonly { a: string; b: string; when: "truthy" | "notNull"; message: string; mirrors: string }[] = [
  {
    a: "save_steps",
    b: "saves_per_epoch",
    mirrors: "validation.py TrainingValidationMixin.check_saves",
    when: "truthy",
    message: "`save_steps` and `saves_per_epoch` are mutually exclusive and cannot be used together",
  },
  {
    a: "eval_steps",
    b: "evals_per_epoch",
    mirrors: "validation.py TrainingValidationMixin.check_evals",
    when: "truthy",
    message: "`eval_steps` and `evals_per_epoch` are mutually exclusive and cannot be used together",
  },
  {
    a: "warmup_steps",
    b: "warmup_ratio",
    mirrors: "validation.py TrainingValidationMixin.check_warmup",
    when: "truthy",
    message: "`warmup_steps` and `warmup_ratio` are mutually exclusive",
  },
  {
    a: "max_memory",
    b: "gpu_memory_limit",
    mirrors: "validation.py SystemValidationMixin.check_mem_mismatch",
    when: "notNull",
    message: "`max_memory` and `gpu_memory_limit` are mutually exclusive and cannot be used together",
  },
  {
    a: "gradient_accumulation_steps",
    b: "batch_size",
    mirrors: "validation.py TrainingValidationMixin.check_gas_bsz",
    when: "truthy",
    message: "please set only one of `gradient_accumulation_steps` or `batch_size` (batch_size is derived from the other two)",
  },
  {
    a: "deepspeed",
    b: "fsdp",
    mirrors: "validation.py SystemValidationMixin.check_fsdp_deepspeed",
    when: "truthy",
    message: "`deepspeed` and `fsdp` cannot be used together",
  },
  {
    // Axolotl's schema only compares deepspeed with the legacy `fsdp` list, but both would be
    // handed to accelerate, which supports one distributed backend per run.
    a: "deepspeed",
    b: "fsdp_config",
    mirrors: "none: ours, deliberately stricter (README, Validation against Axolotl)",
    when: "truthy",
    message: "`deepspeed` and `fsdp_config` cannot be used together: pick DeepSpeed or FSDP",
  },
  {
    a: "val_set_size",
    b: "test_datasets",
    mirrors: "validation.py DatasetValidationMixin.check_val_w_test_datasets",
    when: "truthy",
    message: "non-zero `val_set_size` should not be used with `test_datasets`: use one source of evaluation data",
  },
];
