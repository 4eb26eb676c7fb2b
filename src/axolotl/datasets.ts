/**
 * Checks for the dataset lists: `datasets`, `test_datasets` and `pretraining_dataset`. Field types come from
 * Axolotl's schema (validate.ts checkTypes); what is here goes beyond Axolotl's validator on purpose (README,
 * "Validation"): entry keys it would ignore (warnings), and names it resolves only when it loads the data
 * (`type`, `ds_type`, a missing `path`), which would otherwise fail after the GPUs are allocated.
 */

import { BUILTIN_DATASET_TYPES, DATASET_KEYS, DATASET_TYPE_OBJECT_KEYS, DS_TYPES, RL_DATASET_TYPES } from "./vocabulary.ts";
import { type Issues, join } from "./issues.ts";
import { describe, isMapping, own, truthy } from "./rules.ts";
import { didYouMean, suggest } from "./suggest.ts";

export interface DatasetListOptions {
  /** `rl:` is set: types then resolve in prompt_strategies/{dpo,kto,orpo}/ as well. */
  rl: boolean;
  /** `pretraining_dataset`: `type` defaults to "pretrain" there. */
  pretraining: boolean;
}

const DATASET_KEY_SET = new Set(DATASET_KEYS);
const TYPE_OBJECT_KEY_SET = new Set(DATASET_TYPE_OBJECT_KEYS);

/** Validate one dataset list; `key` is its top-level key. Absent lists are the caller's business. */
export function checkDatasetList(value: unknown, key: string, issues: Issues, opts: DatasetListOptions): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) {
    issues.error(key, `\`${key}\` must be a list of dataset entries (each a mapping with \`path\` and \`type\`), got ${describe(value)}`);
    return;
  }
  if (value.length === 0) {
    // pydantic MinLen(1) on all three lists.
    issues.error(key, `\`${key}\` must contain at least one dataset entry`);
    return;
  }
  value.forEach((entry, i) => checkEntry(entry, `${key}[${i}]`, issues, opts));
}

function checkEntry(entry: unknown, path: string, issues: Issues, opts: DatasetListOptions): void {
  if (!isMapping(entry)) {
    issues.error(path, `\`${path}\` must be a mapping with at least \`path\` and \`type\`, got ${describe(entry)}`);
    return;
  }

  for (const key of Object.keys(entry)) {
    if (DATASET_KEY_SET.has(key)) continue;
    issues.warning(join(path, key), `\`${join(path, key)}\` is not a dataset option Axolotl knows and will be ignored${didYouMean(key, DATASET_KEYS)}`);
  }

  const type = own(entry, "type");
  // SyntheticDataset (datasets.py; `type: _synthetic`, data/sft.py) generates rows itself; its `path` defaults to
  // "synthetic".
  const synthetic = type === "_synthetic" || own(entry, "path") === "synthetic";
  checkPath(own(entry, "path"), join(path, "path"), issues, synthetic);
  checkType(type, join(path, "type"), issues, opts);

  const dsType = own(entry, "ds_type");
  if (typeof dsType === "string" && !DS_TYPES.includes(dsType)) {
    // Passed to datasets.load_dataset(ds_type, ...): anything else fails at load time.
    issues.error(
      join(path, "ds_type"),
      `\`${join(path, "ds_type")}\` ${describe(dsType)} is not a Hugging Face datasets loader${didYouMean(dsType, DS_TYPES)}; use one of ${DS_TYPES.join(", ")} (JSON Lines files are \`json\`)`,
    );
  }

  if (own(entry, "chat_template") === "jinja" && !own(entry, "chat_template_jinja")) {
    issues.error(join(path, "chat_template_jinja"), `\`${join(path, "chat_template_jinja")}\` is required when \`${join(path, "chat_template")}\` is "jinja"`);
  }

  for (const legacy of ["message_field_role", "message_field_content"]) {
    if (own(entry, legacy) !== undefined) {
      issues.warning(join(path, legacy), `\`${join(path, legacy)}\` is deprecated; use \`message_property_mappings\` (e.g. {role: from, content: value})`);
    }
  }
}

function checkPath(value: unknown, path: string, issues: Issues, synthetic: boolean): void {
  if (synthetic) return;
  if (value === undefined || value === null || value === "") {
    issues.error(path, `\`${path}\` is required: a Hugging Face dataset id, a local file or directory, or an s3://, gs:// or https:// location`);
  } else if (typeof value !== "string") {
    issues.error(path, `\`${path}\` must be a string, got ${describe(value)}`);
  }
}

function checkType(value: unknown, path: string, issues: Issues, opts: DatasetListOptions): void {
  if (value === undefined || value === null || value === "") {
    if (opts.pretraining) return; // PretrainingDataset.type defaults to "pretrain"
    // Axolotl only skips prompt formatting for data that already has the model inputs.
    issues.warning(
      path,
      `\`${path}\` is not set: Axolotl then expects an already tokenized dataset (input_ids, attention_mask, labels); set \`type\` (e.g. alpaca, chat_template, completion) for raw data`,
    );
    return;
  }
  if (isMapping(value)) {
    // A custom prompt format (UserDefinedPrompterType and its DPO/KTO siblings).
    for (const key of Object.keys(value)) {
      if (TYPE_OBJECT_KEY_SET.has(key)) continue;
      issues.warning(
        join(path, key),
        `\`${join(path, key)}\` is not a custom prompt format option Axolotl knows and will be ignored${didYouMean(key, DATASET_TYPE_OBJECT_KEYS)}`,
      );
    }
    return;
  }
  if (typeof value !== "string") {
    issues.error(
      path,
      `\`${path}\` must be a dataset type name (e.g. chat_template), \`module.function\`, or a mapping for a custom prompt format, got ${describe(value)}`,
    );
    return;
  }

  if (value === "_synthetic") return; // SyntheticDataset: data/sft.py handles it before any prompt strategy

  if (value.startsWith("sharegpt")) {
    // validation.py DatasetValidationMixin.deprecate_sharegpt_datasets raises for every sharegpt* type.
    issues.error(path, `\`${path}\`: \`type: sharegpt.*\` is deprecated. Please use \`type: chat_template\` instead`);
    return;
  }

  const known = opts.rl ? [...BUILTIN_DATASET_TYPES, ...RL_DATASET_TYPES] : BUILTIN_DATASET_TYPES;
  // `alpaca:chat` selects a prompt style of a built-in handler; the part before ":" is the type.
  const base = value.split(":")[0] ?? value;
  if (base.includes(".")) {
    // module.function (`alpaca_w_system.load_open_orca`) or a user's importable module. We cannot
    // see user modules, so only a near miss of a built-in module name is worth a warning.
    const module = base.split(".")[0] ?? base;
    const near = known.includes(module) ? undefined : suggest(module, known);
    if (near !== undefined) {
      issues.warning(
        path,
        `\`${path}\` ${describe(value)}: \`${module}\` is not a built-in prompt strategy module (did you mean \`${near}\`?); ignore this if it is your own importable module`,
      );
    }
    return;
  }
  if (!known.includes(base)) {
    issues.error(
      path,
      `\`${path}\` ${describe(value)} is not a dataset type Axolotl knows${didYouMean(base, known)}; use a built-in type (alpaca, chat_template, completion, input_output, pretrain, ...), a mapping for a custom prompt format, or \`module.function\` for your own strategy`,
    );
  }
}

/**
 * utils.py handle_legacy_message_fields_logic (SFTDataset.handle_legacy_message_fields, mode=before): the deprecated
 * `message_field_role`/`message_field_content` move into `message_property_mappings` (role/content, defaulting to
 * "role"/"content" when falsy), and a different value already there is a conflict. Returns the entry as the model
 * then sees it, and the conflicts.
 */
export function withLegacyMessageFields(entry: Record<string, unknown>): { entry: Record<string, unknown>; conflicts: string[] } {
  const out: Record<string, unknown> = { ...entry };
  const current = own(out, "message_property_mappings");
  if (current !== undefined && current !== null && !isMapping(current)) return { entry: out, conflicts: [] }; // a type error, reported by the schema check
  const mappings: Record<string, unknown> = { ...(current ?? {}) };
  const conflicts: string[] = [];
  for (const [legacy, field] of [
    ["message_field_role", "role"],
    ["message_field_content", "content"],
  ] as const) {
    if (Object.hasOwn(out, legacy)) {
      const value = out[legacy];
      if (Object.hasOwn(mappings, field) && mappings[field] !== value)
        conflicts.push(`\`${legacy}\` ${describe(value)} conflicts with \`message_property_mappings.${field}\` ${describe(mappings[field])}`);
      mappings[field] = truthy(value) ? value : field;
      delete out[legacy];
    } else if (!Object.hasOwn(mappings, field)) {
      mappings[field] = field;
    }
  }
  out.message_property_mappings = mappings;
  return { entry: out, conflicts };
}
