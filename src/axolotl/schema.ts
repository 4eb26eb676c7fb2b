/**
 * Axolotl's own config schema, for the version the default trainer image pins: key names, types, enums, bounds
 * and descriptions come from its pydantic models (schema/axolotl-<version>.json, written by
 * `npm run generate:axolotl-schema`; e2e/axolotl/schema.test.ts fails when it is stale). Nothing here is typed
 * by hand: cross-field rules live in validate.ts, each naming the Axolotl validator it mirrors.
 *
 * Values are checked the way pydantic checks them in its default (lax) mode, because that is what Axolotl runs:
 * "8" is an int, "2e-4" a float, "yes" and 1 booleans, 2.0 an int. e2e/axolotl/validator-diff.test.ts holds us to
 * Axolotl's verdicts on a generated corpus.
 */
import data from "./schema/axolotl-0.18.0.json" with { type: "json" };
import { describe as describeValue } from "./rules.ts";

/** The subset of JSON Schema that pydantic's model_json_schema() emits. */
export interface JsonSchema {
  type?: "string" | "integer" | "number" | "boolean" | "array" | "object" | "null";
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  description?: string;
  deprecated?: boolean;
  default?: unknown;
  title?: string;
}

/** Names Axolotl checks in code rather than in its types, read from the same installed package (judge.py). */
export interface Vocabulary {
  attn_implementations: string[];
  attn_supporting_packing: string[];
  eval_causal_lm_metrics: string[];
  attn_legacy_flags: Record<string, string>;
  attn_short_forms: Record<string, string>;
  dataset_handlers: string[];
  prompt_strategies: string[];
  rl_prompt_strategies: Record<string, string[]>;
  ds_types: string[];
  field_names_of_aliases: Record<string, string>;
}

interface SchemaFile {
  axolotl: string;
  pydantic: string;
  schema: JsonSchema & { $defs: Record<string, JsonSchema> };
  plugins: Record<string, { args?: string; schema?: JsonSchema; error?: string }>;
  vocabulary: Vocabulary;
}

const FILE = data as unknown as SchemaFile;
const ROOT = FILE.schema;

export const VOCABULARY: Vocabulary = FILE.vocabulary;

/** The Axolotl version the schema was generated from. */
export const SCHEMA_AXOLOTL_VERSION: string = FILE.axolotl;

/** Top-level keys of AxolotlInputConfig (YAML spellings: pydantic aliases such as `model_config`). */
export const CONFIG_KEYS: readonly string[] = Object.keys(ROOT.properties ?? {});

/** Keys the bundled plugins add when listed in `plugins`, with the plugin that adds each. */
export const PLUGIN_KEYS: ReadonlyMap<string, string> = new Map(
  Object.entries(FILE.plugins).flatMap(([plugin, p]) => Object.keys(p.schema?.properties ?? {}).map((key) => [key, plugin] as const)),
);

/** The schema of a top-level key, or of a key a bundled plugin adds. */
export function keySchema(key: string): JsonSchema | undefined {
  if (Object.hasOwn(ROOT.properties ?? {}, key)) return ROOT.properties![key];
  const plugin = PLUGIN_KEYS.get(key);
  return plugin === undefined ? undefined : FILE.plugins[plugin]?.schema?.properties?.[key];
}

/** A named model or enum (`$defs`), e.g. "SFTDataset", "FSDPConfig", "ChatTemplate". */
export function definition(name: string): JsonSchema {
  const def = ROOT.$defs[name];
  if (!def) throw new Error(`Axolotl ${SCHEMA_AXOLOTL_VERSION} schema has no definition ${name}`);
  return def;
}

/** The keys of a model definition, e.g. modelKeys("FSDPConfig"). */
export function modelKeys(name: string): readonly string[] {
  return Object.keys(definition(name).properties ?? {});
}

function deref(s: JsonSchema): JsonSchema {
  if (!s.$ref) return s;
  const name = s.$ref.replace("#/$defs/", "");
  return definition(name);
}

/** The string values of every enum in `schema` (through unions and references): the candidates for did-you-mean. */
export function enumStrings(schema: JsonSchema): string[] {
  const s = deref(schema);
  if (s.anyOf) return s.anyOf.flatMap(enumStrings);
  return [...(s.enum ?? []), ...(s.const !== undefined ? [s.const] : [])].filter((v): v is string => typeof v === "string");
}

/** One value that does not fit, at `path` below the checked value ("" for the value itself). */
export interface SchemaMismatch {
  path: string[];
  expects: string;
  got: unknown;
}

const BOOL_STRINGS = new Map([
  ["0", false],
  ["off", false],
  ["f", false],
  ["false", false],
  ["n", false],
  ["no", false],
  ["1", true],
  ["on", true],
  ["t", true],
  ["true", true],
  ["y", true],
  ["yes", true],
]);

/** pydantic's lax bool: true/false, 0/1, and the strings above in any case. */
function laxBool(v: unknown): boolean {
  if (typeof v === "boolean") return true;
  if (typeof v === "number") return v === 0 || v === 1;
  return typeof v === "string" && BOOL_STRINGS.has(v.trim().toLowerCase());
}

/** pydantic's lax int: whole numbers (2.0 too), numeric strings of a whole number, booleans. */
function laxInt(v: unknown): number | undefined {
  if (typeof v === "boolean") return Number(v);
  // pydantic-core converts a float to an int only within i64 ("exceeded maximum size" beyond).
  if (typeof v === "number") return Number.isInteger(v) && Math.abs(v) < 2 ** 63 ? v : undefined;
  if (typeof v === "string") {
    const t = v.trim();
    if (/^[+-]?\d+$/.test(t)) return Number(t);
    if (/^[+-]?\d+\.0*$/.test(t)) return Number(t);
  }
  return undefined;
}

/** pydantic's lax float: numbers, numeric strings ("2e-4", "inf", "nan"), booleans. */
function laxFloat(v: unknown): number | undefined {
  if (typeof v === "boolean") return Number(v);
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const t = v.trim().toLowerCase();
    if (/^[+-]?(inf|infinity)$/.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(t)) return Number.NaN;
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return Number(t);
  }
  return undefined;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

function bounds(s: JsonSchema, n: number): boolean {
  if (s.minimum !== undefined && !(n >= s.minimum)) return false;
  if (s.maximum !== undefined && !(n <= s.maximum)) return false;
  if (s.exclusiveMinimum !== undefined && !(n > s.exclusiveMinimum)) return false;
  if (s.exclusiveMaximum !== undefined && !(n < s.exclusiveMaximum)) return false;
  return true;
}

function boundsText(s: JsonSchema): string {
  const parts = [
    s.minimum !== undefined ? `>= ${s.minimum}` : "",
    s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : "",
    s.maximum !== undefined ? `<= ${s.maximum}` : "",
    s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : "",
  ].filter(Boolean);
  return parts.length ? ` ${parts.join(" and ")}` : "";
}

/** The phrase that completes "`key` must be ...". */
export function expects(schema: JsonSchema): string {
  const s = deref(schema);
  if (s.anyOf) {
    const branches = s.anyOf.filter((b) => b.type !== "null").map(expects);
    return [...new Set(branches)].join(", or ") || "null";
  }
  if (s.enum) return `one of ${s.enum.map((e) => (typeof e === "string" ? e : JSON.stringify(e))).join(", ")}`;
  if (s.const !== undefined) return JSON.stringify(s.const);
  switch (s.type) {
    case "string":
      return s.pattern ? `a string matching ${s.pattern}` : s.minLength ? "a non-empty string" : "a string";
    case "integer":
      return `an integer${boundsText(s)}`;
    case "number":
      return `a number${boundsText(s)}`;
    case "boolean":
      return "a boolean (true/false)";
    case "array":
      return s.items ? `a list (of ${expects(s.items)})` : "a list";
    case "object":
      return s.title && s.properties ? `a mapping (${s.title})` : "a mapping";
    case "null":
      return "null";
    default:
      return "any value";
  }
}

/**
 * Where `value` does not fit `schema`, as pydantic (lax mode) would see it; [] when it fits. For a union the
 * mismatches of the branch that got furthest are reported.
 */
export function check(schema: JsonSchema, value: unknown, path: string[] = []): SchemaMismatch[] {
  const s = deref(schema);
  if (s.anyOf) {
    let best: SchemaMismatch[] | undefined;
    for (const branch of s.anyOf) {
      const m = check(branch, value, path);
      if (m.length === 0) return [];
      // Prefer the branch of the right shape (a mapping for a model): its nested message says more.
      if (best === undefined || (m.every((x) => x.path.length > path.length) && !best.every((x) => x.path.length > path.length))) best = m;
    }
    const deeper = best?.every((x) => x.path.length > path.length);
    return deeper ? best! : [{ path, expects: expects(s), got: value }];
  }
  const miss = (): SchemaMismatch[] => [{ path, expects: expects(s), got: value }];
  if (s.enum) return s.enum.some((e) => e === value || (typeof e === "number" && laxInt(value) === e)) ? [] : miss();
  if (s.const !== undefined) return s.const === value ? [] : miss();
  switch (s.type) {
    case "null":
      return value === null ? [] : miss();
    case "boolean":
      return laxBool(value) ? [] : miss();
    case "string": {
      if (typeof value !== "string") return miss();
      if (s.minLength !== undefined && [...value].length < s.minLength) return miss();
      if (s.maxLength !== undefined && [...value].length > s.maxLength) return miss();
      if (s.pattern !== undefined && !new RegExp(s.pattern, "u").test(value)) return miss();
      return [];
    }
    case "integer": {
      const n = laxInt(value);
      return n !== undefined && bounds(s, n) ? [] : miss();
    }
    case "number": {
      const n = laxFloat(value);
      return n !== undefined && bounds(s, n) ? [] : miss();
    }
    case "array": {
      if (!Array.isArray(value)) return miss();
      if (s.minItems !== undefined && value.length < s.minItems) return miss();
      if (s.maxItems !== undefined && value.length > s.maxItems) return miss();
      if (s.prefixItems) return s.prefixItems.flatMap((item, i) => (i < value.length ? check(item, value[i], [...path, String(i)]) : []));
      return s.items ? value.flatMap((item, i) => check(s.items!, item, [...path, String(i)])) : [];
    }
    case "object": {
      if (!isMapping(value)) return miss();
      const out: SchemaMismatch[] = [];
      for (const key of s.required ?? []) {
        if (!Object.hasOwn(value, key)) out.push({ path: [...path, key], expects: `set (${expects(s.properties?.[key] ?? {})})`, got: undefined });
      }
      for (const [key, v] of Object.entries(value)) {
        const prop = s.properties?.[key];
        if (prop) out.push(...check(prop, v, [...path, key]));
        else if (typeof s.additionalProperties === "object") out.push(...check(s.additionalProperties, v, [...path, key]));
      }
      return out;
    }
    default:
      return []; // Any
  }
}

/** "`datasets[0].path` must be a string, got 5": the message for a mismatch below `root`. */
export function mismatchMessage(root: string, m: SchemaMismatch): string {
  const where = pathText(root, m.path);
  return m.got === undefined
    ? `\`${where}\` is required: ${m.expects.replace(/^set \(|\)$/g, "")}`
    : `\`${where}\` must be ${m.expects}, got ${describeValue(m.got)}`;
}

function pathText(root: string, path: string[]): string {
  return path.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), root);
}

/**
 * The value pydantic (smart-mode unions, lax mode) makes of `value` for `schema`: a string stays a string when a
 * string branch takes it as is, else "yes" becomes true and "8" becomes 8. Unfit values come back unchanged.
 */
function coerce(schema: JsonSchema, value: unknown): unknown {
  const s = deref(schema);
  const branches = (s.anyOf ?? [s]).map(deref);
  // Smart mode: a branch of the value's own type that takes it as is wins.
  const exact = (b: JsonSchema) =>
    check(b, value).length === 0 &&
    ((typeof value === "string" && (b.type === "string" || b.enum !== undefined || b.const !== undefined)) ||
      (typeof value === "boolean" && b.type === "boolean") ||
      (typeof value === "number" && (b.type === "number" || (b.type === "integer" && Number.isInteger(value)))) ||
      (typeof value === "object" && (b.type === "object" || b.type === "array")));
  if (branches.some(exact)) return value;
  for (const b of branches) {
    if (b.type === "boolean" && laxBool(value)) return typeof value === "number" ? value === 1 : BOOL_STRINGS.get(String(value).trim().toLowerCase());
    if (b.type === "integer" && laxInt(value) !== undefined) return laxInt(value);
    if (b.type === "number" && laxFloat(value) !== undefined) return laxFloat(value);
  }
  return value;
}

/** The value Axolotl's "after" validators see for `key`: the coerced value, or the schema's default when unset. */
export function effective(config: Record<string, unknown>, key: string): unknown {
  const schema = keySchema(key);
  if (!Object.hasOwn(config, key)) return schema?.default ?? null;
  const value = config[key];
  return schema ? coerce(schema, value) : value;
}
