/**
 * Validates an Axolotl training config before the operator schedules anything.
 *
 * Axolotl validates its config with pydantic only once the trainer pod is up, and silently
 * drops keys it does not know. Checking here turns a wasted GPU allocation (or a typo that
 * trains with the wrong settings) into a message on the FineTuneJob. Types, enums and bounds
 * come from Axolotl's own schema (schema.ts); each cross-field rule names the Axolotl
 * validator it mirrors (file and function in axolotl 0.18.0); where we go further, the
 * comment says why, and errors never go further: e2e/axolotl/validator-diff.test.ts holds
 * our valid/invalid verdict to Axolotl's own.
 */

import { checkCrossField } from "./cross-field.ts";
import { checkDatasetList, withLegacyMessageFields } from "./datasets.ts";
import { decoderLayerFromConfig, decoderLayerFromName, type ModelInfo } from "./model-family.ts";
import { Issues, join, type ValidationIssue } from "./issues.ts";
import { OPERATOR_OWNED_KEYS } from "./owned-keys.ts";
import { DEPRECATED_KEYS, EXCLUSIVE_PAIRS, REMOVED_KEYS, describe, isMapping, own, truthy } from "./rules.ts";
import { DEFAULT_TRAINER_IMAGE } from "../api/group.ts";
import { check, definition, enumStrings, keySchema, mismatchMessage, SCHEMA_AXOLOTL_VERSION, VOCABULARY, type JsonSchema } from "./schema.ts";
import {
  ATTN_SHORT_FORMS,
  BUILTIN_ADAPTERS,
  CANONICAL_ATTN_IMPLS,
  FSDP_CONFIG_KEYS,
  LEGACY_ATTN_FLAGS,
  PLUGIN_KEY_OWNER,
  RENAMED_KEYS,
  TOP_LEVEL_KEYS,
} from "./vocabulary.ts";
import { didYouMean } from "./suggest.ts";

export type { Severity, ValidationIssue } from "./issues.ts";

/** Where the job will run; used by rules that depend on the number of GPUs, and on the image's Axolotl. */
export interface DeploymentContext {
  nodes: number;
  gpusPerNode: number;
  /** The trainer image; when it is not the default, it may run an Axolotl newer than the schema we check with. */
  image?: string;
  /** The base model's config.json, when the caller could read it (a local path or the local Hugging Face cache). */
  model?: ModelInfo;
}

export { OPERATOR_OWNED_KEYS };

type Config = Record<string, unknown>;

const KNOWN_KEYS = new Set(TOP_LEVEL_KEYS);

/**
 * All problems found in `config`, errors and warnings, in a stable order. Never throws:
 * a config that is not a mapping yields a single error at path "".
 */
export function validateAxolotlConfig(config: unknown, ctx?: DeploymentContext): ValidationIssue[] {
  const issues = new Issues();
  try {
    if (!isMapping(config)) {
      issues.error("", `the Axolotl config (root) must be a mapping of config keys to values, got ${describe(config)}`);
      return issues.list;
    }
    for (const rule of RULES) rule(config, issues, ctx);
    if (ctx?.image !== undefined && ctx.image !== DEFAULT_TRAINER_IMAGE) return allowNewerNames(issues.list, config, ctx.image);
  } catch (err) {
    // The rules are written not to throw; this only guards against exotic inputs (proxies,
    // throwing getters) so a bad config can never crash the reconcile loop.
    issues.error("", `the config could not be fully validated: ${err instanceof Error ? err.message : String(err)}`);
  }
  return issues.list;
}

type Rule = (c: Config, issues: Issues, ctx: DeploymentContext | undefined) => void;

/**
 * Names that newer Axolotl versions add to (chat templates, RL trainers, attention backends, dataset types and
 * loaders): an unknown one is an error for the default image, whose Axolotl is the one we check against, but only
 * a warning for another image, which may know it.
 */
const VERSION_SENSITIVE = /^(?:chat_template|rl|attn_implementation|(?:datasets|test_datasets|pretraining_dataset)\[\d+\]\.(?:type|ds_type|chat_template))$/;

function valueAt(config: Config, path: string): unknown {
  let v: unknown = config;
  for (const part of path.split(/[.[\]]+/).filter(Boolean)) v = Array.isArray(v) ? v[Number(part)] : isMapping(v) ? own(v, part) : undefined;
  return v;
}

function allowNewerNames(list: ValidationIssue[], config: Config, image: string): ValidationIssue[] {
  return list.map((issue) =>
    issue.severity === "error" && VERSION_SENSITIVE.test(issue.path) && typeof valueAt(config, issue.path) === "string"
      ? {
          ...issue,
          severity: "warning",
          message: `${issue.message} (checked against Axolotl ${SCHEMA_AXOLOTL_VERSION}; image ${image} may run a newer Axolotl that knows it)`,
        }
      : issue,
  );
}

/** Set in the YAML: present and not null (`key:` with no value is null, i.e. unset, in Axolotl). */
function isSet(c: Config, key: string): boolean {
  const v = own(c, key);
  return v !== undefined && v !== null;
}

function checkRequired(c: Config, issues: Issues): void {
  // base_model and learning_rate are required fields of AxolotlInputConfig (the schema's `required`).
  if (!isSet(c, "base_model")) {
    issues.error("base_model", "`base_model` is required: the Hugging Face model id or local path of the model to fine-tune");
  }
  if (!isSet(c, "learning_rate")) {
    issues.error("learning_rate", "`learning_rate` is required (e.g. 2e-4 for LoRA, 2e-5 for a full fine-tune)");
  }
  // validation.py DatasetValidationMixin.check_dataset_or_pretraining_dataset
  if (!isSet(c, "datasets") && !isSet(c, "pretraining_dataset")) {
    issues.error("datasets", "either `datasets` or `pretraining_dataset` is required");
  }
  // validation.py TrainingValidationMixin.check_batch_size_fields: Axolotl derives the third from the other two.
  const fields = ["micro_batch_size", "gradient_accumulation_steps", "batch_size"];
  const set = fields.filter((k) => truthy(own(c, k)));
  if (set.length < 2) {
    const missing = fields.find((k) => !set.includes(k)) ?? "micro_batch_size";
    issues.error(
      missing,
      "at least two of `micro_batch_size`, `gradient_accumulation_steps`, `batch_size` must be set (usually micro_batch_size and gradient_accumulation_steps)",
    );
  }
}

/** The schema names aliased keys by their alias; the python field name (populate_by_name) is read the same way. */
const ALIAS_OF_FIELD: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(VOCABULARY.field_names_of_aliases).map(([alias, field]) => [field, alias]),
);

/**
 * config.py validate_config: before the model runs, each `datasets` entry becomes a DPODataset (rl dpo/ipo/simpo),
 * a KTODataset (rl kto), a SyntheticDataset (type _synthetic) or an SFTDataset, so an entry is checked against that
 * one model rather than the union the schema lists.
 */
function datasetModel(c: Config, entry: unknown): JsonSchema {
  const rl = own(c, "rl");
  if (rl === "dpo" || rl === "ipo" || rl === "simpo") return definition("DPODataset");
  if (rl === "kto") return definition("KTODataset");
  if (isMapping(entry) && own(entry, "type") === "_synthetic") return definition("SyntheticDataset");
  return definition("SFTDataset");
}

/** Every set key against Axolotl's schema (types, enums, bounds), as pydantic's lax mode reads values. */
function checkTypes(c: Config, issues: Issues): void {
  const plugins = own(c, "plugins");
  const pluginNames = Array.isArray(plugins) ? plugins.filter((p): p is string => typeof p === "string") : [];
  for (const key of Object.keys(c)) {
    const value = own(c, key);
    if (value === undefined || value === null) continue;
    const owner = PLUGIN_KEY_OWNER.get(key);
    // A plugin's keys join the schema only when the plugin is loaded (config.py merge_input_args).
    if (owner !== undefined && !pluginNames.includes(owner)) continue;
    // config.py normalize_attn_implementation (mode=before) folds the legacy flags into attn_implementation by
    // truthiness and removes them, so their own types are never checked.
    if (Object.hasOwn(LEGACY_ATTN_FLAGS, key)) continue;
    const schema = keySchema(ALIAS_OF_FIELD[key] ?? key);
    if (schema === undefined) continue;
    if (key === "datasets" && Array.isArray(value)) {
      const listOnly: JsonSchema = { anyOf: [{ type: "array", minItems: 1 }, { type: "null" }] };
      for (const m of check(listOnly, value)) issues.error(key, mismatchMessage(key, m));
      value.forEach((entry, i) => {
        const model = datasetModel(c, entry);
        // SFTDataset first moves the legacy message fields into message_property_mappings (datasets.ts).
        const legacy = model === definition("SFTDataset") && isMapping(entry) ? withLegacyMessageFields(entry) : { entry, conflicts: [] };
        for (const conflict of legacy.conflicts) issues.error(`${key}[${i}].message_property_mappings`, `\`${key}[${i}]\`: ${conflict}`);
        for (const m of check(model, legacy.entry, [String(i)])) {
          const moved =
            m.path[1] === "message_property_mappings" && isMapping(entry) && !Object.hasOwn(entry, "message_property_mappings")
              ? " (from the deprecated `message_field_role`/`message_field_content`)"
              : "";
          issues.error(mismatchPath(key, m.path), `${mismatchMessage(key, m)}${moved}`);
        }
      });
      continue;
    }
    // A deprecated key Axolotl renames before validating is reported under both names.
    const renamed = /use `([a-z0-9_]+)`/.exec(DEPRECATED_KEYS[key] ?? "")?.[1];
    for (const m of check(schema, value)) {
      const hint = m.path.length === 0 && typeof value === "string" ? didYouMean(value, enumStrings(schema)) : "";
      issues.error(mismatchPath(key, m.path), `${mismatchMessage(key, m)}${hint}${renamed ? ` (Axolotl reads it as \`${renamed}\`)` : ""}`);
    }
  }
}

function mismatchPath(key: string, path: string[]): string {
  return path.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : join(acc, p)), key);
}

function checkKeys(c: Config, issues: Issues): void {
  const plugins = own(c, "plugins");
  const pluginNames = Array.isArray(plugins) ? plugins.filter((p): p is string => typeof p === "string") : [];
  for (const key of Object.keys(c)) {
    const value = own(c, key);
    if (OPERATOR_OWNED_KEYS.includes(key)) {
      // `key:` with no value (as in Axolotl's examples) sets nothing, so there is nothing to override.
      if (value !== undefined && value !== null) {
        issues.warning(key, `\`${key}\` is managed by the operator and will be overridden`);
      }
      continue;
    }
    if (!KNOWN_KEYS.has(key)) {
      const renamed = Object.hasOwn(RENAMED_KEYS, key) ? RENAMED_KEYS[key] : undefined;
      const hint = renamed !== undefined ? ` (did you mean \`${renamed}\`?)` : didYouMean(key, TOP_LEVEL_KEYS);
      issues.warning(key, `\`${key}\` is not an Axolotl config key; Axolotl ignores unknown keys${hint}`);
      continue;
    }
    if (value === undefined || value === null) continue;
    const removed = REMOVED_KEYS[key];
    if (removed !== undefined && (removed.when === "set" || truthy(value))) {
      issues.error(key, `\`${key}\` ${removed.message}`);
    }
    const deprecated = DEPRECATED_KEYS[key];
    if (deprecated !== undefined) issues.warning(key, `\`${key}\` ${deprecated}`);
    // Plugin args are merged into Axolotl's schema only when the plugin is loaded (config.py merge_input_args).
    const owner = PLUGIN_KEY_OWNER.get(key);
    if (owner !== undefined && !pluginNames.includes(owner)) {
      issues.warning(key, `\`${key}\` is read by a plugin that is not in \`plugins\`; add \`${owner}\` or the key is ignored`);
    }
  }
}

function checkExclusive(c: Config, issues: Issues): void {
  for (const { a, b, when, message } of EXCLUSIVE_PAIRS) {
    const both = when === "truthy" ? truthy(own(c, a)) && truthy(own(c, b)) : isSet(c, a) && isSet(c, b);
    if (both) issues.error(b, message);
  }
}

function checkAdapter(c: Config, issues: Issues): void {
  const adapter = own(c, "adapter");
  const plugins = own(c, "plugins");
  if (adapter !== undefined && adapter !== null) {
    if (typeof adapter !== "string") {
      issues.error("adapter", `\`adapter\` must be a string (lora, qlora or llama-adapter), got ${describe(adapter)}`);
    } else if (adapter !== "" && !BUILTIN_ADAPTERS.includes(adapter)) {
      // peft.py LoraConfig.validate_adapter: anything else must be registered by a plugin.
      if (truthy(plugins)) {
        issues.warning(
          "adapter",
          `\`adapter\` ${describe(adapter)} is not built in (${BUILTIN_ADAPTERS.join(", ")}); it must be registered by one of your \`plugins\`${didYouMean(adapter, BUILTIN_ADAPTERS)}`,
        );
      } else {
        issues.error(
          "adapter",
          `\`adapter\` ${describe(adapter)} is not built in and no plugin can register it; use ${BUILTIN_ADAPTERS.join(", ")}, or leave it unset for a full fine-tune${didYouMean(adapter, BUILTIN_ADAPTERS)}`,
        );
      }
    }
  }

  // peft.py LoraConfig.validate_adapter: 4/8-bit loading needs an adapter.
  const hasAdapter = truthy(adapter);
  for (const key of ["load_in_4bit", "load_in_8bit"]) {
    if (truthy(own(c, key)) && !hasAdapter) {
      issues.error(
        key,
        `\`${key}\` needs an \`adapter\` (lora or qlora): Axolotl does not load quantized weights for a full fine-tune; set \`adapter\` or turn \`${key}\` off`,
      );
    }
  }

  const peft = own(c, "peft");
  const peftBackend = isMapping(peft) ? own(peft, "backend") : undefined;
  if (adapter === "qlora" && !truthy(own(c, "merge_lora")) && peftBackend !== "torchao") {
    // peft.py LoraConfig.validate_qlora (bnb path). `peft: {backend: bnb, weight_dtype: nf4}` turns
    // load_in_4bit on by default (auto_detect_qlora).
    const impliedBy4bitPeft = isMapping(peft) && peftBackend === "bnb" && own(peft, "weight_dtype") === "nf4";
    if (truthy(own(c, "load_in_8bit"))) {
      issues.error("load_in_8bit", "`adapter: qlora` cannot be loaded in 8-bit: remove `load_in_8bit` and set `load_in_4bit: true`");
    }
    if (truthy(own(c, "gptq"))) {
      issues.error("gptq", "`adapter: qlora` cannot be used with `gptq`");
    }
    const fourBit = own(c, "load_in_4bit");
    if (!truthy(fourBit) && !(impliedBy4bitPeft && (fourBit === undefined || fourBit === null))) {
      issues.error("load_in_4bit", "`adapter: qlora` requires `load_in_4bit: true`");
    }
  }

  // LoRA hyperparameters without an adapter are silently unused by a full fine-tune.
  if (!hasAdapter) {
    for (const key of ["lora_r", "lora_alpha", "lora_target_linear", "lora_target_modules"]) {
      if (truthy(own(c, key))) {
        issues.warning(key, `\`${key}\` has no effect without an \`adapter\` (this config is a full fine-tune)`);
      }
    }
  }
}

function checkSaveAndEval(c: Config, issues: Issues): void {
  const evalStrategy = own(c, "eval_strategy");
  const saveStrategy = own(c, "save_strategy");
  // validation.py TrainingValidationMixin.check_saves / check_evals, config.py
  // AxolotlInputConfig.check_save_strategy_best_requires_metric
  if (truthy(saveStrategy) && truthy(own(c, "save_steps")) && saveStrategy !== "steps") {
    issues.error("save_strategy", "`save_strategy` and `save_steps` mismatch: set `save_strategy: steps` or remove `save_steps`");
  }
  if (truthy(evalStrategy) && truthy(own(c, "eval_steps")) && evalStrategy !== "steps") {
    issues.error("eval_strategy", "`eval_strategy` and `eval_steps` mismatch: set `eval_strategy: steps` or remove `eval_steps`");
  }
  if (truthy(own(c, "evals_per_epoch")) && truthy(evalStrategy) && evalStrategy !== "steps") {
    issues.error("eval_strategy", "`eval_strategy` must be empty or set to `steps` when used with `evals_per_epoch`");
  }
  if (saveStrategy === "best" && !truthy(own(c, "metric_for_best_model"))) {
    issues.error("metric_for_best_model", "`save_strategy: best` requires `metric_for_best_model` (e.g. eval_loss)");
  }
  if (truthy(own(c, "do_bench_eval")) && !truthy(own(c, "evals_per_epoch")) && !truthy(own(c, "eval_steps"))) {
    issues.error("do_bench_eval", "`do_bench_eval` requires `evals_per_epoch` or `eval_steps` to be set");
  }

  const hasEvalData = truthy(own(c, "val_set_size")) || truthy(own(c, "test_datasets"));
  const evalKey = ["eval_steps", "eval_strategy"].find((k) => truthy(own(c, k)));
  if (hasEvalData || evalStrategy === "no") return;
  if (own(c, "val_set_size") === 0 && evalKey !== undefined) {
    // Axolotl rejects this only when val_set_size is written as 0.
    issues.error(
      evalKey,
      "`eval_steps` and `eval_strategy` are not supported with `val_set_size: 0` (no evaluation split): set `val_set_size`, add `test_datasets`, or remove them",
    );
    return;
  }
  // Unset val_set_size defaults to 0: the eval settings then evaluate nothing.
  const idle = evalKey ?? (truthy(own(c, "evals_per_epoch")) ? "evals_per_epoch" : undefined);
  if (idle !== undefined) {
    issues.warning(idle, `\`${idle}\` has no effect: there is no evaluation data (\`val_set_size\` is 0 or unset and no \`test_datasets\`)`);
  }
}

function checkAttention(c: Config, issues: Issues): void {
  const impl = own(c, "attn_implementation");
  if (impl !== undefined && impl !== null) {
    // config.py AxolotlInputConfig.validate_attn_implementation
    if (typeof impl !== "string") {
      issues.error("attn_implementation", `\`attn_implementation\` must be a string, got ${describe(impl)}`);
    } else if (!CANONICAL_ATTN_IMPLS.includes(impl) && !impl.includes("/")) {
      const canonical = ATTN_SHORT_FORMS[impl];
      issues.error(
        "attn_implementation",
        canonical !== undefined
          ? `\`attn_implementation\` ${describe(impl)} is not accepted; use the canonical name \`${canonical}\``
          : `\`attn_implementation\` ${describe(impl)} is not a recognized backend${didYouMean(impl, CANONICAL_ATTN_IMPLS)}; expected one of ${CANONICAL_ATTN_IMPLS.join(", ")}, or a hub-kernel path containing "/"`,
      );
    }
  }

  // config.py AxolotlInputConfig.normalize_attn_implementation: legacy booleans map onto attn_implementation and may
  // not be combined with it.
  for (const [flag, canonical] of Object.entries(LEGACY_ATTN_FLAGS)) {
    if (!truthy(own(c, flag))) continue;
    if (truthy(impl)) {
      issues.error(
        flag,
        `\`${flag}\` cannot be combined with \`attn_implementation\`: the legacy attention flags are deprecated, set only \`attn_implementation\``,
      );
    } else if (flag !== "s2_attention") {
      // s2_attention is rejected outright (REMOVED_KEYS), no need to suggest a rename.
      issues.warning(flag, `\`${flag}: true\` is deprecated; use \`attn_implementation: ${canonical}\``);
    }
  }

  // config.py AxolotlInputConfig.normalize_attn_implementation
  if (truthy(own(c, "gemma4_hybrid_attn_impl")) && typeof impl === "string" && impl !== "" && impl !== "flash_attention_2") {
    issues.error("gemma4_hybrid_attn_impl", "`gemma4_hybrid_attn_impl` requires `attn_implementation: flash_attention_2`");
  }

  if (impl === "fp8") {
    issues.warning(
      "attn_implementation",
      "`attn_implementation: fp8` requires GPUs with compute capability sm_90 or newer (Hopper/Blackwell) and PyTorch >= 2.11",
    );
  }
}

function checkPrecision(c: Config, issues: Issues): void {
  if (own(c, "save_safetensors") === false) {
    // model.py ModelOutputConfig.validate_save_safetensors
    issues.error("save_safetensors", "`save_safetensors: false` is not supported: Transformers v5 always saves safetensors; remove the key");
  }
  if (truthy(own(c, "fp8"))) {
    // AxolotlConfigWCapabilities.check_fp8 rejects it at startup on older GPUs.
    issues.warning(
      "fp8",
      "`fp8: true` needs GPUs with compute capability sm_90 or newer (Hopper: H100/H200, or Blackwell); Axolotl refuses it on older GPUs, and without `torch_compile: true` it is rarely faster than bf16",
    );
  }
}

const FSDP1_ONLY: Readonly<Record<string, string>> = {
  sharding_strategy: "use `reshard_after_forward` instead",
  sync_module_states: "FSDP2 does not use it",
  use_orig_params: "FSDP2 does not use it",
  limit_all_gathers: "FSDP2 does not use it",
  backward_prefetch: "FSDP2 does not use it",
  forward_prefetch: "FSDP2 does not use it",
};

function checkDistributed(c: Config, issues: Issues, ctx: DeploymentContext | undefined): void {
  const fsdpConfig = own(c, "fsdp_config");
  const nestedVersion = isMapping(fsdpConfig) ? (own(fsdpConfig, "fsdp_version") ?? own(fsdpConfig, "version")) : undefined;
  const version = own(c, "fsdp_version") ?? nestedVersion;

  if (truthy(own(c, "deepspeed")) && isMapping(ctx) && typeof ctx.nodes === "number" && typeof ctx.gpusPerNode === "number") {
    const world = ctx.nodes * ctx.gpusPerNode;
    if (Number.isFinite(world) && world < 2) {
      // DeepSpeed on one process fails at startup (Axolotl FAQ: mpi4py import); it only
      // makes sense with several ranks to shard across.
      issues.error(
        "deepspeed",
        `\`deepspeed\` needs at least 2 GPUs in total, but this job has ${ctx.nodes} node(s) x ${ctx.gpusPerNode} GPU(s); remove \`deepspeed\` or add GPUs`,
      );
    }
  }

  // validation.py TrainingValidationMixin.check_fp8_config
  if (truthy(own(c, "fp8_enable_fsdp_float8_all_gather")) && version !== 2) {
    issues.error("fp8_enable_fsdp_float8_all_gather", "`fp8_enable_fsdp_float8_all_gather` requires FSDP2 (`fsdp_version: 2`)");
  }

  if (isSet(c, "fsdp_version") && !truthy(fsdpConfig) && !truthy(own(c, "fsdp"))) {
    issues.warning("fsdp_version", "`fsdp_version` has no effect without `fsdp_config`");
  }
  if (!isMapping(fsdpConfig)) return; // type error already reported by checkTypes

  for (const key of ["fsdp_version", "version"]) {
    if (own(fsdpConfig, key) === undefined) continue;
    const path = join("fsdp_config", key);
    // validation.py OptimizationValidationMixin.check_fsdp_version_in_fsdp_config moves it to the top level.
    issues.warning(path, `\`${path}\` is deprecated here; set \`fsdp_version\` as a top-level key`);
  }

  if (version === undefined || version === null) {
    // validation.py OptimizationValidationMixin.check_fsdp_version: FSDP1 is on its way out.
    issues.warning(
      "fsdp_config",
      "`fsdp_config` without `fsdp_version` runs FSDP1, which Axolotl is deprecating; set `fsdp_version: 2` (with un-prefixed `fsdp_config` keys)",
    );
  }

  for (const rawKey of Object.keys(fsdpConfig)) {
    if (rawKey === "fsdp_version" || rawKey === "version") continue;
    const path = join("fsdp_config", rawKey);
    // validation.py OptimizationValidationMixin.check_fsdp_config_kwargs_prefix strips `fsdp_` (with a warning) before the
    // keys reach FSDPConfig.
    const key = rawKey.startsWith("fsdp_") ? rawKey.slice("fsdp_".length) : rawKey;
    if (key !== rawKey) {
      issues.warning(path, `\`${path}\`: the \`fsdp_\` prefix inside \`fsdp_config\` is deprecated; write \`${key}\``);
    }
    if (!FSDP_CONFIG_KEYS.includes(key)) {
      issues.warning(path, `\`${path}\` is not an FSDP option Axolotl knows and will be ignored${didYouMean(key, FSDP_CONFIG_KEYS)}`);
      continue;
    }
    const value = own(fsdpConfig, rawKey);
    // Un-prefixed keys were checked against FSDPConfig with the rest of the schema; a prefixed one is checked
    // under the name it gets once Axolotl strips the prefix.
    const fieldSchema = definition("FSDPConfig").properties?.[key];
    if (key !== rawKey && fieldSchema !== undefined && value !== undefined && value !== null) {
      for (const m of check(fieldSchema, value)) issues.error(path, mismatchMessage(path, m));
    }
    const fsdp1Hint = FSDP1_ONLY[key];
    if (version === 2 && fsdp1Hint !== undefined) {
      issues.warning(path, `\`${path}\` is an FSDP1 option and \`fsdp_version\` is 2: ${fsdp1Hint}`);
    }
  }

  checkLayerClass(c, fsdpConfig, issues, ctx);

  const policy = own(fsdpConfig, "auto_wrap_policy") ?? own(fsdpConfig, "fsdp_auto_wrap_policy");
  const minParams = own(fsdpConfig, "min_num_params") ?? own(fsdpConfig, "fsdp_min_num_params");
  // fsdp.py FSDPConfig.validate_size_based_wrap
  if (policy === "SIZE_BASED_WRAP" && (minParams === undefined || minParams === null)) {
    issues.error("fsdp_config.min_num_params", "`fsdp_config.min_num_params` is required when `fsdp_config.auto_wrap_policy` is SIZE_BASED_WRAP");
  }
}

/**
 * `fsdp_config.transformer_layer_cls_to_wrap` must name the model's decoder layer class (model-family.ts). Ours,
 * not Axolotl's: an error when config.json says which class it is, a warning when the model name only suggests it.
 */
function checkLayerClass(c: Config, fsdpConfig: Config, issues: Issues, ctx: DeploymentContext | undefined): void {
  const key = own(fsdpConfig, "transformer_layer_cls_to_wrap") !== undefined ? "transformer_layer_cls_to_wrap" : "fsdp_transformer_layer_cls_to_wrap";
  const wrap = own(fsdpConfig, key);
  const base = own(c, "base_model");
  if (typeof wrap !== "string" || wrap === "" || typeof base !== "string") return;
  const classes = wrap.split(",").map((x) => x.trim());
  const path = `fsdp_config.${key}`;
  const known = ctx?.model ? decoderLayerFromConfig(ctx.model) : undefined;
  if (known !== undefined) {
    if (!classes.includes(known))
      issues.error(
        path,
        `\`${path}\` is ${describe(wrap)}, but ${base} is built of \`${known}\` (its config.json, ${ctx!.model!.source}): FSDP would find no layer to wrap`,
      );
    return;
  }
  const guessed = decoderLayerFromName(base);
  if (guessed !== undefined && !classes.includes(guessed)) {
    issues.warning(
      path,
      `\`${path}\` is ${describe(wrap)}, but ${base} looks like a model built of \`${guessed}\` (guessed from its name; could not read its config.json): FSDP finds no layer to wrap when the class is wrong`,
    );
  }
}

function checkDatasets(c: Config, issues: Issues): void {
  const rl = truthy(own(c, "rl"));
  checkDatasetList(own(c, "datasets"), "datasets", issues, { rl, pretraining: false });
  checkDatasetList(own(c, "test_datasets"), "test_datasets", issues, { rl, pretraining: false });
  checkDatasetList(own(c, "pretraining_dataset"), "pretraining_dataset", issues, { rl, pretraining: true });

  // Iterable (streamed) datasets have no length for the trainer to plan with: validation.py
  // PretrainingValidationMixin.check_pretraining_w_max_steps / check_streaming_w_max_steps /
  // check_pretraining_w_val_set_size / check_streaming_w_val_set_size.
  for (const key of ["pretraining_dataset", "streaming"]) {
    if (!truthy(own(c, key))) continue;
    if (!truthy(own(c, "max_steps"))) {
      issues.error("max_steps", `\`max_steps\` must be set when using \`${key}\`: the trainer cannot infer the length of a streamed dataset`);
    }
    if (truthy(own(c, "val_set_size"))) {
      issues.error("val_set_size", `\`val_set_size\` is not supported with \`${key}\`; use \`test_datasets\` for evaluation`);
    }
  }

  // validation.py DatasetValidationMixin.check_push_ds_auth
  if (truthy(own(c, "push_dataset_to_hub")) && own(c, "hf_use_auth_token") !== true) {
    issues.error("hf_use_auth_token", "`push_dataset_to_hub` requires `hf_use_auth_token: true`");
  }
}

function checkEnums(c: Config, issues: Issues): void {
  // The chat_template and rl names themselves are schema enums (checkTypes); this is validation.py
  // ChatTemplateValidationMixin.check_chat_template_config.
  if (own(c, "chat_template") === "jinja" && !truthy(own(c, "chat_template_jinja"))) {
    issues.error("chat_template_jinja", "`chat_template_jinja` is required when `chat_template` is jinja");
  }
}

/** Rule order is the order issues are reported in. */
const RULES: readonly Rule[] = [
  checkRequired,
  checkTypes,
  checkKeys,
  checkExclusive,
  checkAdapter,
  checkSaveAndEval,
  checkAttention,
  checkPrecision,
  checkDistributed,
  checkDatasets,
  checkEnums,
  checkCrossField,
];
