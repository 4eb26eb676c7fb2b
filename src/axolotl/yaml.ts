/**
 * Axolotl config YAML, read and written as Axolotl itself reads it.
 *
 * Axolotl loads its config with PyYAML `yaml.safe_load` (axolotl/cli/config.py `load_cfg`), which implements
 * YAML 1.1: `yes`/`on` are booleans, `500_000` is an integer and `2e-4` (no dot) is a STRING that pydantic coerces
 * later. The `yaml` package's own `yaml-1.1` schema is close but not the same (it reads `y`/`n` as booleans, `2e-4`,
 * `1e5`, `-.5` and `09` as numbers, `0:30` as sexagesimal), so this module parses the syntax with `yaml` in its
 * failsafe schema (every scalar a string, nothing resolved) and resolves plain scalars itself with PyYAML's own
 * regular expressions and constructors (yaml/resolver.py `Resolver`, yaml/constructor.py `SafeConstructor`,
 * PyYAML 6.0). Both directions are checked against real PyYAML by e2e/axolotl/yaml-roundtrip.test.ts.
 *
 * What JavaScript cannot hold the way Python does, and what we do instead:
 * - a timestamp (`2024-01-01`) is a `YamlTimestamp` (its text), written back as the same plain text;
 * - a non-string mapping key (`1:`, `yes:`) becomes the key json.dumps would print (`"1"`, `"true"`);
 * - integers beyond 2^53 lose precision, and 1.0 and 1 are the same number;
 * - `!!binary`, `!!set`, `!!omap`, `!!pairs`, explicit `!!timestamp` and local tags are refused with an error
 *   (PyYAML refuses local tags too; the others have no place in an Axolotl config).
 */
import { Document, isAlias, isMap, isPair, isScalar, isSeq, parseAllDocuments, visit, type Node, type ParsedNode, type Scalar, type ScalarTag } from "yaml";

/** A YAML 1.1 timestamp, which PyYAML turns into a `datetime.date`/`datetime`: not a string to pydantic. */
export class YamlTimestamp {
  readonly text: string;
  /** Python's str() of the date or datetime: how it is named when it is a mapping key. */
  readonly pythonStr: string;
  constructor(text: string, pythonStr = text) {
    this.text = text;
    this.pythonStr = pythonStr;
  }
  toJSON(): string {
    return this.text;
  }
  toString(): string {
    return this.text;
  }
}

/** A YAML syntax error or a value PyYAML would refuse, with the 1-based position when known. */
export class AxolotlYamlError extends Error {
  readonly line: number | undefined;
  readonly col: number | undefined;
  constructor(message: string, pos?: { line: number; col: number }) {
    super(message);
    this.line = pos?.line;
    this.col = pos?.col;
  }
}

// PyYAML 6.0 yaml/resolver.py, Resolver.add_implicit_resolver, verbatim (these are YAML 1.1's implicit types).
const BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;
const FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const MERGE = /^(?:<<)$/;
const NULL = /^(?:~|null|Null|NULL|)$/;
const TIMESTAMP =
  /^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$/;
/** `=` resolves to tag:yaml.org,2002:value, for which SafeConstructor has no constructor: safe_load fails. */
const VALUE = /^(?:=)$/;

// PyYAML resolves implicitly only when the first character is one it registered for that type.
const FIRST = { bool: "yYnNtTfFoO", float: "-+0123456789.", int: "-+0123456789", null: "~nN", timestamp: "0123456789" };

const TAG = "tag:yaml.org,2002:";

/** SafeConstructor.construct_yaml_bool. */
function constructBool(text: string): boolean | undefined {
  const v = text.toLowerCase();
  return v === "yes" || v === "true" || v === "on" ? true : v === "no" || v === "false" || v === "off" ? false : undefined;
}

/** SafeConstructor.construct_yaml_int: underscores dropped, then 0b / 0x / leading 0 (octal) / a:b (base 60). */
function constructInt(text: string): number | undefined {
  let value = text.replaceAll("_", "");
  let sign = 1;
  if (value[0] === "-") sign = -1;
  if (value[0] === "-" || value[0] === "+") value = value.slice(1);
  let n: number;
  if (value === "0") n = 0;
  else if (value.startsWith("0b")) n = parseIntStrict(value.slice(2), 2);
  else if (value.startsWith("0x")) n = parseIntStrict(value.slice(2), 16);
  else if (value.startsWith("0"))
    n = parseIntStrict(value.replace(/^0[oO]/, ""), 8); // Python's int(v, 8) takes 0o17 too
  else if (value.includes(":")) n = sexagesimal(value, (d) => parseIntStrict(d, 10));
  else n = parseIntStrict(value, 10);
  return Number.isNaN(n) ? undefined : n === 0 ? 0 : sign * n; // Python has no integer -0
}

function parseIntStrict(digits: string, radix: number): number {
  const valid = radix === 2 ? /^[01]+$/ : radix === 8 ? /^[0-7]+$/ : radix === 16 ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/;
  return valid.test(digits) ? Number.parseInt(digits, radix) : Number.NaN;
}

function sexagesimal(value: string, last: (digits: string) => number): number {
  const parts = value.split(":");
  let n = 0;
  let base = 1;
  for (let i = parts.length - 1; i >= 0; i--) {
    n += (i === parts.length - 1 ? last(parts[i]!) : parseIntStrict(parts[i]!, 10)) * base;
    base *= 60;
  }
  return n;
}

/** SafeConstructor.construct_yaml_float: underscores dropped, lower-cased, `.inf`/`.nan`, a:b.c (base 60). */
function constructFloat(text: string): number | undefined {
  let value = text.replaceAll("_", "").toLowerCase();
  let sign = 1;
  if (value[0] === "-") sign = -1;
  if (value[0] === "-" || value[0] === "+") value = value.slice(1);
  if (value === ".inf") return sign * Number.POSITIVE_INFINITY;
  if (value === ".nan" || value === "nan") return Number.NaN;
  const n = value.includes(":") ? sexagesimal(value, pyFloat) : pyFloat(value);
  return Number.isNaN(n) ? undefined : sign * n;
}

/** Python's float() on what remains (lower-cased): `1.`, `.5`, `1e5`, and, after an explicit !!float, inf and nan. */
function pyFloat(digits: string): number {
  if (digits === "inf" || digits === "infinity") return Number.POSITIVE_INFINITY;
  if (digits === "nan") return Number.NaN;
  return /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?$/.test(digits) ? Number(digits) : Number.NaN;
}

/** SafeConstructor.construct_yaml_timestamp would build a date or datetime: refuse what Python's datetime refuses. */
function constructTimestamp(text: string): YamlTimestamp {
  const m =
    /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?)?$/.exec(
      text,
    );
  const [year, month, day, hour = 0, minute = 0, second = 0] = (m?.slice(1, 7) ?? []).map((x) => (x === undefined ? undefined : Number(x))) as number[];
  const [fraction, tz, tzSign, tzHour = 0, tzMinute = 0] = [m?.[7], m?.[8], m?.[9], Number(m?.[10] ?? 0), Number(m?.[11] ?? 0)];
  const daysInMonth = month !== undefined && year !== undefined ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (year === undefined || year < 1) fail(`year ${year} is out of range (${text})`);
  if (month === undefined || month < 1 || month > 12) fail(`month must be in 1..12 (${text})`);
  if (day === undefined || day < 1 || day > daysInMonth) fail(`day is out of range for month (${text})`);
  if (hour > 23 || minute > 59 || second > 59) fail(`time out of range (${text})`);
  if (tzHour * 60 + tzMinute >= 24 * 60) fail(`offset must be a timedelta strictly between -timedelta(hours=24) and timedelta(hours=24) (${text})`);
  const p2 = (n: number) => String(n).padStart(2, "0");
  const date = `${String(year).padStart(4, "0")}-${p2(month)}-${p2(day)}`;
  if (m?.[4] === undefined) return new YamlTimestamp(text, date);
  const micro = Number((fraction ?? "").slice(0, 6).padEnd(6, "0"));
  const offset = tz === undefined ? "" : tzSign ? `${tzSign}${p2(tzHour)}:${p2(tzMinute)}` : "+00:00";
  return new YamlTimestamp(text, `${date} ${p2(hour)}:${p2(minute)}:${p2(second)}${micro ? `.${String(micro).padStart(6, "0")}` : ""}${offset}`);
}

/** What PyYAML's safe_load makes of an untagged plain scalar. */
function resolvePlainScalar(text: string): unknown {
  const first = text[0] ?? "";
  if (text === "" || (FIRST.null.includes(first) && NULL.test(text))) return null;
  if (FIRST.bool.includes(first) && BOOL.test(text)) return constructBool(text);
  if (FIRST.int.includes(first) && INT.test(text)) return constructInt(text);
  if (FIRST.float.includes(first) && FLOAT.test(text)) return constructFloat(text);
  if (FIRST.timestamp.includes(first) && TIMESTAMP.test(text)) return constructTimestamp(text);
  if (MERGE.test(text)) throw new AxolotlYamlError(`could not determine a constructor for the tag '${TAG}merge' ("<<" outside a mapping key)`);
  if (VALUE.test(text)) throw new AxolotlYamlError(`could not determine a constructor for the tag '${TAG}value' ("=")`);
  return text;
}

/** True when PyYAML reads `text`, written as a plain scalar, back as that same string. */
export function plainReadsAsString(text: string): boolean {
  try {
    return resolvePlainScalar(text) === text;
  } catch {
    return false;
  }
}

/**
 * Bounds what aliases can expand to (a "billion laughs" document), like the yaml package's maxAliasCount. PyYAML
 * shares aliased objects, but our config becomes JSON (the FineTuneJob, the rendered config.yaml), which copies them.
 */
const MAX_ALIASED_VALUES = 1000;

interface Ctx {
  doc: Document.Parsed;
  /** Values constructed so far (also makes each NaN key distinct, as in Python). */
  nodes: number;
  /** Values constructed through aliases so far. */
  aliased: number;
  /** > 0 while constructing an alias's target. */
  inAlias: number;
}

function fail(message: string): never {
  throw new AxolotlYamlError(message);
}

function construct(node: ParsedNode | Node | null, ctx: Ctx): unknown {
  ctx.nodes++;
  if (ctx.inAlias > 0 && ++ctx.aliased > MAX_ALIASED_VALUES) fail(`excessive alias count: aliases expand to more than ${MAX_ALIASED_VALUES} values`);
  if (node === null) return null;
  if (isAlias(node)) {
    const target = node.resolve(ctx.doc);
    if (!target) fail(`unknown alias *${node.source}`);
    ctx.inAlias++;
    try {
      return construct(target as Node, ctx);
    } finally {
      ctx.inAlias--;
    }
  }
  if (isScalar(node)) return constructScalar(node);
  if (isSeq(node)) {
    if (node.tag && node.tag !== `${TAG}seq`) fail(`the tag ${node.tag} is not supported in an Axolotl config`);
    return node.items.map((item) => construct(item as Node, ctx));
  }
  if (isMap(node)) {
    if (node.tag && node.tag !== `${TAG}map`) fail(`the tag ${node.tag} is not supported in an Axolotl config`);
    return constructMap(node.items, ctx);
  }
  return fail("unexpected YAML node");
}

function constructScalar(node: Scalar): unknown {
  const text = String(node.value ?? "");
  const tag = node.tag;
  if (!tag) return node.type === "PLAIN" ? resolvePlainScalar(text) : text;
  // Explicit tags go to the same constructors, whatever the quoting (`!!int "0x1F"` is 31).
  switch (tag) {
    case "!":
    case `${TAG}str`:
      return text;
    case `${TAG}int`:
      return constructInt(text) ?? fail(`invalid literal for !!int: ${JSON.stringify(text)}`);
    case `${TAG}float`:
      return constructFloat(text) ?? fail(`could not convert string to !!float: ${JSON.stringify(text)}`);
    case `${TAG}bool`:
      return constructBool(text) ?? fail(`invalid !!bool: ${JSON.stringify(text)}`);
    case `${TAG}null`:
      return null;
    default:
      return fail(`the tag ${tag} is not supported in an Axolotl config`);
  }
}

/**
 * A mapping key. PyYAML keeps `1:` as an int key and `yes:` as True; we name it as json.dumps would ("1", "true",
 * "1.5"), and `identity` says which keys Python's dict treats as one (True == 1 == 1.0, False == 0).
 */
function constructKey(node: Node | null, ctx: Ctx): { name: string; identity: string } {
  // flatten_mapping turns a `=` key (tag:yaml.org,2002:value) into the string "=".
  if (isScalar(node) && !node.tag && node.type === "PLAIN" && VALUE.test(String(node.value))) return { name: "=", identity: "s:=" };
  const key = construct(node, ctx);
  if (typeof key === "string") return { name: key, identity: `s:${key}` };
  if (key === null) return { name: "null", identity: "null" };
  if (typeof key === "boolean") return { name: String(key), identity: `n:${Number(key)}` };
  if (typeof key === "number") {
    const int = isScalar(node) && Number.isInteger(key) && !isFloatText(node);
    return { name: int ? exactInt(node as Scalar, key) : pyFloatRepr(key), identity: Number.isNaN(key) ? `nan:${ctx.nodes}` : `n:${key}` };
  }
  if (key instanceof YamlTimestamp) return { name: key.pythonStr, identity: `t:${key.pythonStr}` };
  return fail("a mapping or sequence as a mapping key is not supported in an Axolotl config");
}

function isFloatText(node: Scalar): boolean {
  const text = String(node.value);
  return node.tag === `${TAG}float` || (!node.tag && !INT.test(text));
}

/** An int key's exact decimal digits (keys are names, so they need not fit in a double). */
function exactInt(node: Scalar, approx: number): string {
  if (Number.isSafeInteger(approx)) return String(approx);
  const text = String(node.value).replaceAll("_", "");
  return /^[-+]?[1-9][0-9]*$/.test(text) ? BigInt(text).toString() : String(approx);
}

/** Python's repr(float): shortest digits, a ".0" on whole numbers, exponent form below 1e-4 and from 1e16. */
function pyFloatRepr(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (!Number.isFinite(n)) return n > 0 ? "Infinity" : "-Infinity";
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const [mantissa, exp] = Math.abs(n).toExponential().split("e") as [string, string];
  const digits = mantissa.replace(".", "");
  const x = Number(exp);
  const sign = n < 0 ? "-" : "";
  if (x < -4 || x >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${x < 0 ? "-" : "+"}${String(Math.abs(x)).padStart(2, "0")}`;
  }
  if (x < 0) return `${sign}0.${"0".repeat(-x - 1)}${digits}`;
  const whole = digits.slice(0, x + 1).padEnd(x + 1, "0");
  const frac = digits.slice(x + 1);
  return `${sign}${whole}.${frac || "0"}`;
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && !key.tag && key.type === "PLAIN" && MERGE.test(String(key.value));
}

/**
 * SafeConstructor.construct_mapping after flatten_mapping: `<<` merges a mapping or a list of mappings (earlier
 * ones win), keys written in the mapping itself win over merged ones, and a repeated key keeps the last value.
 */
function constructMap(items: unknown[], ctx: Ctx): Record<string, unknown> {
  const merged: Array<[string, unknown, string?]> = [];
  const own: Array<[string, unknown, string?]> = [];
  for (const pair of items) {
    if (!isPair(pair)) continue;
    if (isMergeKey(pair.key)) {
      const value = construct(pair.value as Node | null, ctx);
      const sources = Array.isArray(value) && isSeq(derefNode(pair.value as Node | null, ctx)) ? value : [value];
      for (const source of sources) if (!isPlainObject(source)) fail("expected a mapping or list of mappings for merging (<<)");
      for (const source of [...sources].reverse()) merged.push(...Object.entries(source as Record<string, unknown>));
      continue;
    }
    const key = constructKey(pair.key as Node | null, ctx);
    own.push([key.name, construct(pair.value as Node | null, ctx), key.identity]);
  }
  const out: Record<string, unknown> = {};
  // Python keeps the first spelling of equal keys (True, 1, 1.0) and the last value.
  const names = new Map<string, string>();
  for (const [k, v, identity = `s:${k}`] of [...merged, ...own]) {
    const name = names.get(identity) ?? k;
    names.set(identity, name);
    // defineProperty: a key named __proto__ is data, as in Python.
    Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function derefNode(node: Node | null, ctx: Ctx): Node | null {
  return node !== null && isAlias(node) ? ((node.resolve(ctx.doc) as Node | undefined) ?? null) : node;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof YamlTimestamp);
}

/** Every document in `text`, each as PyYAML safe_load would read it; empty documents are null. */
export function parseAxolotlYamlDocuments(text: string): unknown[] {
  const docs = parseAllDocuments(text, { schema: "failsafe", uniqueKeys: false, prettyErrors: true });
  if (!Array.isArray(docs)) return [];
  return docs.map((doc) => {
    const error = doc.errors[0];
    if (error) throw new AxolotlYamlError(error.message.split("\n")[0]!, error.linePos?.[0]);
    return construct(doc.contents as Node | null, { doc, nodes: 0, aliased: 0, inAlias: 0 });
  });
}

/** One document, as `yaml.safe_load(text)`: an empty text is null, several documents are an error. */
export function parseAxolotlYaml(text: string): unknown {
  const docs = parseAxolotlYamlDocuments(text);
  if (docs.length > 1) throw new AxolotlYamlError("expected a single document in the stream, but found another document");
  return docs[0] ?? null;
}

/** A number as PyYAML writes and reads it: a float needs a dot (`1e-07` alone is a string to PyYAML). */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return ".nan";
  if (!Number.isFinite(n)) return n < 0 ? "-.inf" : ".inf";
  const s = Object.is(n, -0) ? "-0.0" : String(n);
  // Same fix as PyYAML's SafeRepresenter.represent_float for repr(1e17) == '1e+17'.
  return s.includes("e") && !s.includes(".") ? s.replace("e", ".0e") : s;
}

// Writing only: `test` never matches (nothing is parsed with these), but the yaml package prefers tags that have
// one when several identify a value, which puts these ahead of the core schema's number tags.
const NEVER = /(?!)/;
const NUMBER_OUT: ScalarTag = {
  identify: (v) => typeof v === "number",
  default: true,
  tag: `${TAG}float`,
  test: NEVER,
  resolve: (s) => s,
  stringify: (item) => pyNumber(Number(item.value)),
};
const TIMESTAMP_OUT: ScalarTag = {
  identify: (v) => v instanceof YamlTimestamp,
  default: true,
  tag: `${TAG}timestamp`,
  test: NEVER,
  resolve: (s) => s,
  stringify: (item) => (item.value as YamlTimestamp).text,
};

/**
 * YAML text that PyYAML safe_load reads back as exactly `value`: strings that PyYAML would resolve to something
 * else when plain (`yes`, `2e-4`, `500_000`, `1:30`, `2024-01-01`, `~`, `=`) are double-quoted, floats carry a dot.
 */
export function stringifyAxolotlYaml(value: unknown): string {
  const doc = new Document(value, {
    customTags: (tags) => [NUMBER_OUT, TIMESTAMP_OUT, ...tags],
  });
  visit(doc, {
    Scalar(_key, node) {
      // Characters PyYAML 1.1 treats as line breaks or cannot print plain are safest double-quoted (escaped).
      if (
        typeof node.value === "string" &&
        (!plainReadsAsString(node.value) || /[\t\u0085\u2028\u2029]|[^\t\n\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u.test(node.value))
      )
        node.type = "QUOTE_DOUBLE";
    },
  });
  // PyYAML reads NEL, LS and PS as line breaks even inside double quotes; the yaml package leaves them raw there.
  // They can only occur inside the double-quoted scalars forced above, so escaping them in the text is safe.
  return doc.toString({ lineWidth: 0 }).replaceAll("\u0085", "\\N").replaceAll("\u2028", "\\L").replaceAll("\u2029", "\\P");
}
