/**
 * Cross-field rules of Axolotl 0.18.0 that its JSON schema cannot express, each mirroring one validator, named
 * as file + Class.function under axolotl/utils/schemas/. Two kinds, as in pydantic:
 * - "before" validators see the raw YAML values with Python truthiness (`data.get(key)`): use `raw`/`truthy`;
 * - "after" validators see coerced values and defaults (`self.key`): use `effective`.
 * Every rule is exercised against Axolotl's own verdicts by e2e/axolotl/validator-diff.test.ts.
 */
import type { Issues } from "./issues.ts";
import { describe, isMapping, own, truthy } from "./rules.ts";
import { effective, VOCABULARY } from "./schema.ts";
import { LEGACY_ATTN_FLAGS } from "./vocabulary.ts";

type Config = Record<string, unknown>;

/** Python truthiness of the value an "after" validator sees. */
const on = (c: Config, key: string) => truthy(effective(c, key));

/** attn_implementation after normalize_attn_implementation folded the legacy boolean flags into it. */
function attnImplementation(c: Config): unknown {
  const impl = own(c, "attn_implementation");
  if (impl !== undefined && impl !== null) return impl;
  for (const [flag, canonical] of Object.entries(LEGACY_ATTN_FLAGS)) if (truthy(own(c, flag))) return canonical;
  return null;
}

/**
 * The FSDP version once validation.py OptimizationValidationMixin.check_fsdp_version_in_fsdp_config (a "before"
 * validator, run before the ones defined above it) has copied `fsdp_config.version`/`fsdp_version` to the top
 * level and pinned 1 for an unversioned fsdp_config; _resolve_fsdp_version reads the same.
 */
function fsdpVersion(c: Config): unknown {
  const top = own(c, "fsdp_version");
  if (truthy(top)) return top;
  const cfg = own(c, "fsdp_config");
  if (!isMapping(cfg) || !truthy(cfg)) return top ?? 1;
  return truthy(own(cfg, "version")) ? own(cfg, "version") : truthy(own(cfg, "fsdp_version")) ? own(cfg, "fsdp_version") : 1;
}

/** Python's float() on a string: what convert_learning_rate accepts. */
function pythonFloat(s: string): boolean {
  const t = s
    .trim()
    .toLowerCase()
    .replaceAll(/(?<=\d)_(?=\d)/g, "");
  return /^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$/.test(t);
}

export function checkCrossField(c: Config, issues: Issues): void {
  // training.py HyperparametersConfig.convert_learning_rate: float(learning_rate) for a string.
  const lr = own(c, "learning_rate");
  if (typeof lr === "string" && lr !== "" && !pythonFloat(lr))
    issues.error("learning_rate", `\`learning_rate\` must be a number, got ${describe(lr)} (Axolotl converts it with float())`);

  // config.py AxolotlInputConfig.validate_large_head_attention (mode=before, str(value).lower()).
  const lha = own(c, "large_head_attention");
  if (
    lha !== undefined &&
    lha !== null &&
    !["auto", "sdpa", "triton_flash"].includes(String(lha === true ? "True" : lha === false ? "False" : lha).toLowerCase())
  ) {
    issues.error("large_head_attention", `\`large_head_attention\` must be one of auto, sdpa, triton_flash, got ${describe(lha)}`);
  }

  // validation.py OptimizationValidationMixin.check_tensor_parallel_size_update_ds_json compares the raw value
  // with 1 before pydantic converts it: a string fails there.
  const tp = own(c, "tensor_parallel_size");
  if (tp !== undefined && tp !== null && typeof tp !== "number" && typeof tp !== "boolean") {
    issues.error("tensor_parallel_size", `\`tensor_parallel_size\` must be a number, got ${describe(tp)} (Axolotl compares it with 1 before converting it)`);
  }

  // validation.py ComplexValidationMixin.check_neftune (before) moves noisy_embedding_alpha to neftune_noise_alpha;
  // ComplexValidationMixin.validate_neftune_noise_alpha then wants it > 0.
  if (truthy(own(c, "noisy_embedding_alpha")) && truthy(own(c, "neftune_noise_alpha"))) {
    issues.error("noisy_embedding_alpha", "`noisy_embedding_alpha` is deprecated and `neftune_noise_alpha` is set too: remove `noisy_embedding_alpha`");
  }
  const neftuneKey = truthy(own(c, "noisy_embedding_alpha")) && !truthy(own(c, "neftune_noise_alpha")) ? "noisy_embedding_alpha" : "neftune_noise_alpha";
  const neftune = effective(c, neftuneKey);
  if (typeof neftune === "number" && neftune <= 0)
    issues.error(neftuneKey, `\`${neftuneKey}\` must be > 0 (read as \`neftune_noise_alpha\`), got ${describe(own(c, neftuneKey))}`);

  // validation.py ComplexValidationMixin.check_early_stopping (after).
  if (on(c, "early_stopping_patience")) {
    const save = effective(c, "save_steps");
    const evalSteps = effective(c, "eval_steps");
    if (!truthy(save) || !truthy(evalSteps)) {
      issues.error(
        "early_stopping_patience",
        "`early_stopping_patience` requires `save_steps` and `eval_steps` to be set, with eval_steps evenly dividing save_steps",
      );
    } else if (typeof save === "number" && typeof evalSteps === "number" && save % evalSteps !== 0) {
      issues.error("early_stopping_patience", "`early_stopping_patience` requires that `eval_steps` evenly divides `save_steps`");
    }
  }

  // validation.py ModelCompatibilityValidationMixin.check_activation_offloading_wo_gc (after).
  if (on(c, "activation_offloading") && !on(c, "gradient_checkpointing")) {
    issues.error("activation_offloading", "`activation_offloading` requires `gradient_checkpointing`");
  }

  // validation.py ModelCompatibilityValidationMixin.check_selective_checkpointing (after). A mapping, even {}, is
  // a SelectiveCheckpointingConfig by then, and a model instance is truthy.
  if (on(c, "selective_checkpointing") || isMapping(own(c, "selective_checkpointing"))) {
    const kwargs = own(c, "gradient_checkpointing_kwargs");
    const offload = effective(c, "activation_offloading");
    if (!on(c, "gradient_checkpointing")) issues.error("selective_checkpointing", "`selective_checkpointing` requires `gradient_checkpointing`");
    else if (isMapping(kwargs) && truthy(own(kwargs, "use_reentrant")))
      issues.error(
        "selective_checkpointing",
        "`selective_checkpointing` requires non-reentrant checkpointing (`gradient_checkpointing_kwargs.use_reentrant: false`)",
      );
    else if (truthy(offload) && offload !== "hidden_states")
      issues.error("selective_checkpointing", "`selective_checkpointing` works only with `activation_offloading: hidden_states` (or false)");
    else if (truthy(own(c, "adapter"))) {
      const sc = own(c, "selective_checkpointing");
      const save = isMapping(sc) && Array.isArray(own(sc, "save")) ? (own(sc, "save") as unknown[]) : ["attention"];
      const bad = save.filter(
        (spec) => typeof spec === "string" && spec !== "attention" && ["aten::mm", "aten::addmm", "aten::matmul", "aten::bmm"].some((op) => op.includes(spec)),
      );
      if (bad.length)
        issues.error(
          "selective_checkpointing",
          `\`selective_checkpointing.save\` entries ${bad.join(", ")} match matmul ops, which cannot be saved with a LoRA/QLoRA adapter; use save: [attention]`,
        );
    }
  }

  // validation.py OptimizationValidationMixin.check_batch_flattening_fa (after).
  const flatten = effective(c, "batch_flattening");
  if (truthy(flatten) && flatten !== "auto") {
    const impl = attnImplementation(c);
    if (!VOCABULARY.attn_supporting_packing.includes(String(impl)))
      issues.error("batch_flattening", "`batch_flattening` requires a varlen-capable attention backend (e.g. `attn_implementation: flash_attention_2`)");
    else if (on(c, "sample_packing")) issues.error("batch_flattening", "`batch_flattening` is not compatible with `sample_packing`");
  }

  // validation.py OptimizationValidationMixin.check_deepcompile (before; it then reads the DeepSpeed JSON file,
  // which we cannot see from here).
  if (truthy(own(c, "deepcompile")) && !truthy(own(c, "deepspeed"))) issues.error("deepcompile", "`deepcompile` is only supported with `deepspeed`");

  // validation.py RLValidationMixin.check_dpo (before).
  const dpoType = own(c, "dpo_loss_type") ?? null;
  const dpoWeights = own(c, "dpo_loss_weights") ?? null;
  if (own(c, "rl") === "dpo") {
    if (dpoWeights !== null && dpoType === null) issues.error("dpo_loss_weights", "`dpo_loss_weights` requires `dpo_loss_type` to be set");
    else if (Array.isArray(dpoType) && Array.isArray(dpoWeights) && dpoType.length !== dpoWeights.length)
      issues.error("dpo_loss_weights", "`dpo_loss_type` and `dpo_loss_weights` must be the same length");
  } else if (dpoType !== null || dpoWeights !== null) {
    issues.error(dpoType !== null ? "dpo_loss_type" : "dpo_loss_weights", "`dpo_loss_type` and `dpo_loss_weights` are for `rl: dpo` only");
  }

  // validation.py RLValidationMixin.check_kto_config (before).
  if (own(c, "rl") === "kto") {
    if (truthy(own(c, "sample_packing")) || truthy(own(c, "eval_sample_packing")))
      issues.error("sample_packing", "`sample_packing` is not supported with `rl: kto`");
    else if (own(c, "remove_unused_columns") !== false) issues.error("remove_unused_columns", "set `remove_unused_columns: false` when using `rl: kto`");
  }

  // validation.py TrainingValidationMixin.check_causal_lm_evals (before).
  if (truthy(own(c, "do_causal_lm_eval")) && truthy(own(c, "eval_sample_packing")))
    issues.error("eval_sample_packing", "`do_causal_lm_eval` needs `eval_sample_packing: false`");
  const metrics = own(c, "eval_causal_lm_metrics");
  if (truthy(metrics)) {
    if (!Array.isArray(metrics)) issues.error("eval_causal_lm_metrics", "`eval_causal_lm_metrics` must be a list");
    else if (metrics.some((m) => !VOCABULARY.eval_causal_lm_metrics.includes(m as string)))
      issues.error("eval_causal_lm_metrics", `\`eval_causal_lm_metrics\` entries must be among ${VOCABULARY.eval_causal_lm_metrics.join(", ")}`);
  }

  // validation.py DatasetValidationMixin.check_eval_packing (before).
  if (truthy(own(c, "sample_packing")) && truthy(own(c, "eval_table_size")) && own(c, "eval_sample_packing") !== false) {
    issues.error(
      "eval_sample_packing",
      "`eval_table_size` and `eval_sample_packing` are not supported together with `sample_packing`: set `eval_sample_packing: false`",
    );
  }

  // validation.py TrainingValidationMixin.check_multipack_buffer_size (before).
  if (truthy(own(c, "pretrain_multipack_buffer_size")) && truthy(own(c, "streaming_multipack_buffer_size"))) {
    issues.error(
      "pretrain_multipack_buffer_size",
      "`pretrain_multipack_buffer_size` is deprecated and `streaming_multipack_buffer_size` is set too: remove `pretrain_multipack_buffer_size`",
    );
  }

  // validation.py RLValidationMixin.check_sample_packing_w_rl (before).
  if (truthy(own(c, "sample_packing")) && truthy(own(c, "rl"))) issues.error("sample_packing", "`sample_packing: true` does not work with RL training (`rl`)");

  // validation.py OptimizationValidationMixin.check_fsdp2_base_model_quant_rl (before; the raw
  // fsdp_version must equal the integer 2).
  if (
    own(c, "fsdp_version") === 2 &&
    ["dpo", "kto", "orpo", "ipo"].includes(own(c, "rl") as string) &&
    (truthy(own(c, "load_in_8bit")) || truthy(own(c, "load_in_4bit")))
  ) {
    issues.error("fsdp_version", "FSDP2 does not support `load_in_8bit`/`load_in_4bit` with `rl` dpo, kto, orpo or ipo: use DeepSpeed or `fsdp_version: 1`");
  }

  // validation.py OptimizationValidationMixin.check_cross_entropy_conflicts (before).
  const crossEntropy = ["cut_cross_entropy", "chunked_cross_entropy", "liger_cross_entropy", "liger_fused_linear_cross_entropy"].filter((k) =>
    truthy(own(c, k)),
  );
  if (crossEntropy.length > 1)
    issues.error(crossEntropy[1]!, `only one cross entropy optimization can be enabled at a time; found ${crossEntropy.map((k) => `\`${k}\``).join(", ")}`);

  // validation.py SystemValidationMixin.check_model_quantization_config_vs_bnb (before).
  if (truthy(own(c, "model_quantization_config")) && (truthy(own(c, "load_in_8bit")) || truthy(own(c, "load_in_4bit")))) {
    issues.error("model_quantization_config", "`model_quantization_config` cannot be used together with `load_in_8bit` or `load_in_4bit`");
  }

  const adapter = own(c, "adapter");
  const lora = adapter === "lora" || adapter === "qlora";
  // validation.py LoRAValidationMixin.check_frozen (before).
  if (truthy(adapter) && truthy(own(c, "peft_layers_to_transform")) && truthy(own(c, "unfrozen_parameters"))) {
    issues.error("unfrozen_parameters", "`unfrozen_parameters` with `peft_layers_to_transform` is refused by Axolotl (unexpected behavior)");
  }
  // validation.py LoRAValidationMixin.check_lora_kernels_8bit / check_lora_kernels_trust_remote_code (before).
  const kernel = ["lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"].find((k) => truthy(own(c, k)));
  if (kernel && adapter === "lora" && truthy(own(c, "load_in_8bit")))
    issues.error(kernel, `\`${kernel}\` (the LoRA kernels) is not compatible with 8-bit LoRA (\`load_in_8bit\`)`);
  if (kernel && truthy(own(c, "trust_remote_code"))) issues.error(kernel, `\`${kernel}\` (the LoRA kernels) is not compatible with \`trust_remote_code\``);
  // validation.py LoRAValidationMixin.check_fused_lora / check_onebitllms_lora (after).
  if (lora && on(c, "flash_attn_fuse_mlp")) issues.error("flash_attn_fuse_mlp", "`flash_attn_fuse_mlp` (fused modules) is not supported with LoRA/QLoRA");
  if (lora && on(c, "use_onebitllms")) issues.error("use_onebitllms", "`use_onebitllms` is not supported with LoRA/QLoRA");
  // validation.py LoRAValidationMixin.check_peft_layers_pattern (before).
  if (truthy(own(c, "peft_layers_pattern")) && !truthy(own(c, "peft_layers_to_transform")))
    issues.error("peft_layers_pattern", "`peft_layers_pattern` requires `peft_layers_to_transform`");
  // peft.py LoraConfig.validate_lora_target_parameters_dropout (after).
  if (on(c, "lora_target_parameters") && on(c, "lora_dropout"))
    issues.error("lora_dropout", "`lora_dropout` must be 0 when `lora_target_parameters` is set (PEFT's ParamWrapper does not support dropout)");

  // validation.py ModelCompatibilityValidationMixin.check_better_transformers (after).
  if (effective(c, "flash_optimum") === true && (on(c, "fp16") || on(c, "bf16")))
    issues.error("flash_optimum", "`flash_optimum` (BetterTransformer) does not support AMP: set `bf16` and `fp16` to false");

  // validation.py ComplexValidationMixin.check_relora (after).
  if (on(c, "relora")) {
    const why = !on(c, "jagged_restart_steps")
      ? "`jagged_restart_steps` must be set to use ReLoRA"
      : !lora
        ? "ReLoRA needs an `adapter` that supports it (lora or qlora)"
        : truthy(own(c, "fsdp")) || truthy(own(c, "fsdp_config"))
          ? "FSDP is not supported with ReLoRA"
          : truthy(own(c, "deepspeed"))
            ? "`deepspeed` is not supported with ReLoRA"
            : effective(c, "lr_scheduler") === "one_cycle"
              ? "ReLoRA is not compatible with `lr_scheduler: one_cycle`"
              : on(c, "flash_attn_fuse_mlp")
                ? "fused modules are not supported with ReLoRA"
                : undefined;
    if (why) issues.error("relora", `\`relora\`: ${why}`);
  }

  // validation.py AttentionValidationMixin.check_scaling_softmax_requires_flex (after).
  if (on(c, "scaling_softmax") && attnImplementation(c) !== "flex_attention")
    issues.error("scaling_softmax", "`scaling_softmax` requires `attn_implementation: flex_attention`");

  // config.py AxolotlInputConfig.check_torch_compile_options_requires_compile (after).
  if (own(c, "torch_compile_options") !== undefined && own(c, "torch_compile_options") !== null && !on(c, "torch_compile")) {
    issues.error("torch_compile_options", "`torch_compile_options` is set but `torch_compile` is not enabled (true or auto)");
  }

  // config.py AxolotlInputConfig.check_fp32_norms (after).
  if (on(c, "fp32_norms")) {
    if (own(c, "fsdp_config") === undefined || own(c, "fsdp_config") === null)
      issues.error("fp32_norms", "`fp32_norms` requires FSDP (an `fsdp_config` block)");
    else if (String(fsdpVersion(c)) !== "2") issues.error("fp32_norms", "`fp32_norms` requires `fsdp_version: 2`");
  }

  // validation.py OptimizationValidationMixin.check_fsdp2_cpu_offload_pin_memory (before).
  const fsdpCfgRaw = own(c, "fsdp_config");
  if (isMapping(fsdpCfgRaw) && own(fsdpCfgRaw, "cpu_offload_pin_memory") === false) {
    if (String(fsdpVersion(c)) !== "2")
      issues.error("fsdp_config.cpu_offload_pin_memory", "`fsdp_config.cpu_offload_pin_memory: false` needs FSDP2 (top-level `fsdp_version: 2`)");
    else if (!truthy(own(fsdpCfgRaw, "offload_params")))
      issues.error("fsdp_config.cpu_offload_pin_memory", "`fsdp_config.cpu_offload_pin_memory: false` requires `fsdp_config.offload_params: true`");
  }

  // validation.py OptimizationValidationMixin.check_fsdp2_w_8bit_optimizer (after).
  const optimizer = effective(c, "optimizer");
  if (truthy(own(c, "fsdp_config")) && (optimizer === "adamw_8bit" || optimizer === "adamw_bnb_8bit") && String(fsdpVersion(c)) === "2") {
    issues.error("optimizer", `FSDP2 is not compatible with \`optimizer: ${optimizer}\`; use \`adamw_torch_8bit\``);
  }

  // validation.py OptimizationValidationMixin.check_muon_deepspeed_fsdp / check_flashoptim_deepspeed_fsdp (before).
  const rawOptimizer = String(own(c, "optimizer") ?? "");
  if (rawOptimizer === "muon" || rawOptimizer.startsWith("flash_")) {
    const usesFsdp = truthy(own(c, "fsdp")) || truthy(own(c, "fsdp_config"));
    if (truthy(own(c, "deepspeed"))) issues.error("optimizer", `\`optimizer: ${rawOptimizer}\` is incompatible with DeepSpeed`);
    else if (usesFsdp && String(fsdpVersion(c)) !== "2")
      issues.error("optimizer", `\`optimizer: ${rawOptimizer}\` works with FSDP only as FSDP2 (\`fsdp_version: 2\`)`);
  }

  // validation.py ComplexValidationMixin.check_simpo_warmup (after).
  if (own(c, "rl") === "simpo" && on(c, "warmup_ratio")) issues.error("warmup_ratio", "`warmup_ratio` is not supported with `rl: simpo`; use `warmup_steps`");

  // validation.py OptimizationValidationMixin.check_qgalore (before).
  if (own(c, "optimizer") === "q_galore_adamw8bit") {
    const fsdpCfg = own(c, "fsdp_config");
    const why = truthy(adapter)
      ? `is incompatible with \`adapter: ${String(adapter)}\` (it trains full-precision parameters)`
      : truthy(own(c, "deepspeed"))
        ? "is not validated with DeepSpeed"
        : (truthy(own(c, "fsdp")) || truthy(fsdpCfg)) && String(fsdpVersion(c)) !== "2"
          ? "requires FSDP2 (`fsdp_version: 2`)"
          : (truthy(own(c, "fsdp")) || truthy(fsdpCfg)) && !(isMapping(fsdpCfg) && own(fsdpCfg, "use_orig_params") === true)
            ? "requires `fsdp_config.use_orig_params: true`"
            : undefined;
    if (why) issues.error("optimizer", `\`optimizer: q_galore_adamw8bit\` ${why}`);
  }

  // validation.py EBFTValidationMixin.check_ebft_config_required (before) and check_ebft_torch_compile (before).
  if (own(c, "rl") === "ebft") {
    const ebft = own(c, "ebft");
    if (!truthy(ebft)) issues.error("ebft", "`rl: ebft` requires an `ebft:` section with at least `mode: structured` or `mode: strided`");
    else if (own(c, "torch_compile") === true && isMapping(ebft) && own(ebft, "mode") === "strided" && truthy(own(c, "gradient_checkpointing"))) {
      issues.error(
        "torch_compile",
        "EBFT strided mode: `torch_compile: true` with `gradient_checkpointing: true` causes a CheckpointError; remove `torch_compile` (flex_attention compiles itself)",
      );
    } else {
      // validation.py EBFTValidationMixin.check_ebft_gradient_checkpointing_reentrant (after) calls .get() on the
      // EBFTConfig model, so Axolotl 0.18.0's validator fails on every `rl: ebft` config that gets that far.
      issues.error(
        "ebft",
        "Axolotl 0.18.0 cannot validate `rl: ebft` configs (its check_ebft_gradient_checkpointing_reentrant fails with \"'EBFTConfig' object has no attribute 'get'\"); use an image with a fixed Axolotl",
      );
    }
  }
}
