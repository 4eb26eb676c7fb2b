/**
 * Axolotl's config vocabulary for the pinned version: every list here is read from the generated schema
 * (schema/axolotl-<version>.json, see schema.ts), except the few that Axolotl writes as literals inside a validator,
 * which say which one. Replaces the hand-transcribed known-keys.ts.
 */
import { CONFIG_KEYS, modelKeys, PLUGIN_KEYS, VOCABULARY } from "./schema.ts";

/**
 * Keys of the bundled llm_compressor plugin (integrations/llm_compressor/args.py), whose schema cannot be
 * generated without its optional extra (llmcompressor). The only hand-kept key list.
 */
const UNGENERATED_PLUGIN_KEYS: ReadonlyMap<string, string> = new Map([["llmcompressor", "axolotl.integrations.llm_compressor.LLMCompressorPlugin"]]);

/** Plugin-provided key -> the plugin class that must be in `plugins:` for Axolotl to read it. */
export const PLUGIN_KEY_OWNER: ReadonlyMap<string, string> = new Map([...PLUGIN_KEYS, ...UNGENERATED_PLUGIN_KEYS]);

/** Every top-level key Axolotl knows: its schema's keys (aliases and field names) and its bundled plugins' keys. */
export const TOP_LEVEL_KEYS: readonly string[] = [
  ...new Set([...CONFIG_KEYS, ...Object.values(VOCABULARY.field_names_of_aliases), ...PLUGIN_KEY_OWNER.keys()]),
];

/** Keys of `fsdp_config` (fsdp.py FSDPConfig). */
export const FSDP_CONFIG_KEYS: readonly string[] = modelKeys("FSDPConfig");

/** The dataset entry models Axolotl picks from (config.py validate_config, datasets.py). */
const DATASET_MODELS = ["SFTDataset", "DPODataset", "KTODataset", "StepwiseSupervisedDataset", "SyntheticDataset", "PretrainingDataset"];

/** Keys of any dataset entry model: Axolotl picks the class per entry, so any of them may appear. */
export const DATASET_KEYS: readonly string[] = [...new Set(DATASET_MODELS.flatMap(modelKeys))];

/** Keys of a mapping-valued dataset `type` (UserDefinedPrompterType / UserDefinedDPOType / UserDefinedKTOType). */
export const DATASET_TYPE_OBJECT_KEYS: readonly string[] = [
  ...new Set(["UserDefinedPrompterType", "UserDefinedDPOType", "UserDefinedKTOType"].flatMap(modelKeys)),
];

/**
 * Dataset `type` names that need no module path: DATASET_HANDLERS (utils/data/wrappers.py, which also accept a
 * `base:style` form such as `alpaca:chat`) and the modules of axolotl.prompt_strategies, loaded by name.
 */
export const BUILTIN_DATASET_TYPES: readonly string[] = [...new Set([...VOCABULARY.dataset_handlers, ...VOCABULARY.prompt_strategies])];

/** With `rl:` set, `type` also resolves inside prompt_strategies/{dpo,kto,orpo}/. */
export const RL_DATASET_TYPES: readonly string[] = [...new Set(Object.values(VOCABULARY.rl_prompt_strategies).flat())];

/** `ds_type` goes to Hugging Face `datasets.load_dataset(ds_type, ...)`: one of its packaged builders. */
export const DS_TYPES: readonly string[] = VOCABULARY.ds_types;

/** enums.py CANONICAL_ATTN_IMPLS; a hub-kernel path containing "/" is accepted too. */
export const CANONICAL_ATTN_IMPLS: readonly string[] = VOCABULARY.attn_implementations;

/** enums.py SHORT_FORM_ALIAS_TO_CANONICAL: rejected by Axolotl with a pointer to the real name. */
export const ATTN_SHORT_FORMS: Readonly<Record<string, string>> = VOCABULARY.attn_short_forms;

/** enums.py LEGACY_ATTN_FLAG_TO_IMPL: deprecated boolean flags and what they map to. */
export const LEGACY_ATTN_FLAGS: Readonly<Record<string, string>> = VOCABULARY.attn_legacy_flags;

/** peft.py LoraConfig.validate_adapter: a literal tuple there; anything else must be registered by a plugin. */
export const BUILTIN_ADAPTERS: readonly string[] = ["lora", "qlora", "llama-adapter"];

/**
 * Keys that are not in the schema but that users carry over from older Axolotl versions or examples, mapped to
 * what replaced them: the did-you-mean when edit distance would not find it (typo help, ours, not Axolotl's).
 */
export const RENAMED_KEYS: Readonly<Record<string, string>> = {
  attention: "attn_implementation",
  relora_steps: "jagged_restart_steps",
  relora_warmup_steps: "jagged_restart_warmup_steps",
  relora_anneal_steps: "jagged_restart_anneal_steps",
  unsloth_lora_mlp: "lora_mlp_kernel",
  unsloth_lora_qkv: "lora_qkv_kernel",
  unsloth_lora_o: "lora_o_kernel",
};
