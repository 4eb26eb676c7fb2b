/**
 * Both directions of src/axolotl/yaml.ts against real PyYAML (the one in the real-Axolotl environment, which is
 * what axolotl's load_cfg calls):
 * - reading: every spelling, written plain in a config, must give what yaml.safe_load gives (or fail where it fails);
 * - writing: every value, written by stringifyAxolotlYaml (as the operator writes config.yaml for the pods), must
 *   be read back by yaml.safe_load as exactly that value.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseAxolotlYaml, stringifyAxolotlYaml, YamlTimestamp } from "../../src/axolotl/yaml.ts";
import { renderAxolotlConfig } from "../../src/render/axolotl-config.ts";
import { corpus } from "./validator-corpus.ts";
import { ensureAxolotlEnv } from "./env.ts";
import { Judge, type Tagged } from "./judge.ts";
import { readFileSync } from "node:fs";
import { buildFixture, FIXTURE } from "./pyyaml-fixture.ts";
import { HAND_PICKED, randomSpellings } from "./yaml-corpus.ts";

/** Our value in judge.py's tagged JSON (timestamps compare by kind: Python prints them in its own format). */
function tagged(v: unknown): Tagged {
  if (typeof v === "number") return Number.isNaN(v) ? { $float: "nan" } : v === Infinity ? { $float: "inf" } : v === -Infinity ? { $float: "-inf" } : v;
  if (v instanceof YamlTimestamp) return { $timestamp: "*" };
  if (Array.isArray(v)) return v.map(tagged);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tagged(x)]));
  return v as Tagged;
}

function theirs(v: Tagged | undefined): Tagged | undefined {
  if (Array.isArray(v)) return v.map((x) => theirs(x)!);
  if (v !== null && typeof v === "object")
    return "$timestamp" in v ? { $timestamp: "*" } : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, theirs(x)!]));
  return v;
}

function ours(text: string): { value?: Tagged; error?: string } {
  try {
    return { value: tagged(parseAxolotlYaml(text)) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * YAML SYNTAX corners where the `yaml` package (which tokenizes for us) and PyYAML's scanner disagree. They are
 * about the grammar, not about what a scalar means, and none is a way to write an Axolotl config; listed so that the
 * test stays exact about everything else (README, "Validation").
 */
const SYNTAX_DIFFERENCES = new Map<string, string>([
  ["%x: 1\n", "a line starting with % is a directive to PyYAML"],
  ["&x: 1\n", "an anchor on an empty key"],
  ["v: [-]\n", "a lone - inside a flow list"],
  [`v: ${JSON.stringify("\u0085")}\n`, "a raw NEL inside quotes is a line break to PyYAML 1.1"],
]);

/** In a flow list PyYAML refuses a plain scalar that starts with ":" (YAML 1.2, and the yaml package, allow it). */
const flowSafe = (spelling: string) => !spelling.startsWith(":");

/** Documents that use each spelling the ways a config can: a value, in a flow list, as a key, explicitly tagged. */
function documents(spelling: string): string[] {
  if (/[\n\t]|^\s|\s$|^$|[\u0085\u2028\u00a0]/.test(spelling)) return [`v: ${JSON.stringify(spelling)}\n`];
  return [
    `v: ${spelling}\n`,
    ...(flowSafe(spelling) ? [`v: [${spelling}]\n`] : []),
    `${spelling}: 1\n`,
    `v: !!int "${spelling}"\n`,
    `v: !!float '${spelling}'\n`,
    `v: !!bool ${spelling}\n`,
  ];
}

/** Tags PyYAML accepts that we refuse on purpose (bytes and sets have no place in an Axolotl config). */
const REFUSED = ["x: !!binary aGk=\n", "x: !!set {a, b}\n", "x: !!omap [a: 1]\n", "x: !!pairs [a: 1]\n"];

/** Structures: merge keys, anchors, repeated keys, block scalars, several documents, a YAML bomb's little cousin. */
const STRUCTURES = [
  "a: &x {b: 1, c: 2}\nd:\n  <<: *x\n  c: 3\n",
  "a: &x {b: 1}\ny: &y {b: 2, c: 2}\nd:\n  <<: [*x, *y]\n",
  "d:\n  <<: {b: 1}\n  <<: {b: 2}\n",
  "d:\n  c: 3\n  <<: {c: 4}\n",
  "d: {<<: 5}\n",
  "a: 1\na: 2\n",
  "x: |\n  a\n  b\n",
  "x: >-\n  a\n  b\n",
  "x: |+\n  a\n\n",
  "a: 1\n---\nb: 2\n",
  "",
  "---\n",
  "# only a comment\n",
  "x: !!str 500_000\n",
  "x: !!null ''\n",
  "x: !foo bar\n",
  "a: &a [1, 2]\nb: [*a, *a, *a]\n",
  "'a': 1\n\"b\": yes\n",
  "on: 1\nyes: 2\n1: 3\n~: 4\n1.5: 5\n",
  "k: [yes, no, on, off, 500_000, 2e-4, 1:30, 0755, .inf, 2024-01-01, ~]\n",
];

/** Values the operator might write: every spelling as a string (must stay a string), and numbers JS prints oddly. */
function valuesToWrite(spellings: string[]): unknown[] {
  return [
    ...spellings.map((s) => ({ v: s, [s]: "key", list: [s] })),
    { learning_rate: 2e-4, tiny: 1e-7, huge: 1e21, big: 9007199254740991, neg: -0.5, zero: 0, inf: Infinity, ninf: -Infinity, nan: NaN, half: 0.5 },
    { nested: { a: [1, "2", true, "true", null, "null", { yes: "no" }] }, multi: "line one\nline two\n", trailing: "x\n\n" },
    { ts: new YamlTimestamp("2024-01-01"), tss: "2024-01-01" },
  ];
}

describe("YAML as Axolotl reads it (real PyYAML)", () => {
  let judge: Judge;
  const spellings = [...HAND_PICKED, ...randomSpellings(1500)];

  before(async () => {
    judge = Judge.start((await ensureAxolotlEnv()).python);
  });
  after(() => judge.close());

  it("reads every spelling as yaml.safe_load does", async () => {
    const texts = [...spellings.flatMap(documents), ...STRUCTURES].filter((t) => !SYNTAX_DIFFERENCES.has(t));
    const expected = await judge.load(texts);
    const diffs: string[] = [];
    for (const [i, text] of texts.entries()) {
      const want = expected[i]!;
      const got = ours(text);
      if (want.error !== undefined || got.error !== undefined) {
        if ((want.error === undefined) !== (got.error === undefined))
          diffs.push(
            `${JSON.stringify(text)}: PyYAML ${want.error ? `fails (${want.error.split("\n")[0]})` : JSON.stringify(want.value)}, we ${got.error ? `fail (${got.error})` : JSON.stringify(got.value)}`,
          );
        continue;
      }
      try {
        assert.deepStrictEqual(got.value, theirs(want.value));
      } catch {
        diffs.push(`${JSON.stringify(text)}: PyYAML ${JSON.stringify(want.value)}, we ${JSON.stringify(got.value)}`);
      }
    }
    process.stdout.write(`# read: ${texts.length - diffs.length}/${texts.length} documents read as PyYAML reads them\n`);
    assert.deepEqual(diffs, []);
  });

  it("the unit tests' PyYAML fixture is what PyYAML answers today (else: node e2e/axolotl/pyyaml-fixture.ts)", async () => {
    assert.equal(readFileSync(FIXTURE, "utf8"), await buildFixture(judge));
  });

  it("refuses, with an error, the tags it does not support although PyYAML reads them", async () => {
    const read = await judge.load(REFUSED);
    for (const [i, text] of REFUSED.entries()) {
      assert.equal(read[i]!.error, undefined, `PyYAML reads ${text}`);
      assert.ok(ours(text).error, `we refuse ${text}`);
    }
  });

  it("still differs only in the listed YAML syntax corners (remove an entry once it agrees)", async () => {
    const texts = [...SYNTAX_DIFFERENCES.keys()];
    const read = await judge.load(texts);
    for (const [i, text] of texts.entries())
      assert.notDeepStrictEqual(ours(text), { value: theirs(read[i]!.value) }, `${JSON.stringify(text)} now agrees: ${SYNTAX_DIFFERENCES.get(text)}`);
  });

  it("renders every YAML 1.1 config to a config.yaml that Axolotl reads as it would have read the original", async () => {
    // What the pods get: the user's text read by us, the operator's keys set (renderAxolotlConfig), written by
    // stringifyAxolotlYaml (renderConfigMap). PyYAML must read the same values as from the user's own file.
    const texts = [
      ...corpus()
        .filter((c) => c.text !== undefined)
        .map((c) => c.text!),
      ...spellings.filter((s) => !/[\n\t\u0085\u2028\u00a0]|^\s|\s$|^$/.test(s)).map((s) => `v: ${s}\nw: [${flowSafe(s) ? s : "x"}]\n`),
    ].filter((t) => !SYNTAX_DIFFERENCES.has(t));
    const originals = await judge.load(texts);
    const rendered: string[] = [];
    const kept: number[] = [];
    for (const [i, text] of texts.entries()) {
      if (originals[i]!.error !== undefined) continue; // PyYAML refuses it: nothing to render (we refuse it too, above)
      rendered.push(stringifyAxolotlYaml(renderAxolotlConfig(parseAxolotlYaml(text) as Record<string, unknown>).config));
      kept.push(i);
    }
    const back = await judge.load(rendered);
    const owned = new Set(["output_dir", "dataset_prepared_path", "auto_resume_from_checkpoints", "resume_from_checkpoint"]);
    const strip = (v: Tagged | undefined) => Object.fromEntries(Object.entries((v ?? {}) as Record<string, Tagged>).filter(([k]) => !owned.has(k)));
    const diffs: string[] = [];
    for (const [j, i] of kept.entries()) {
      try {
        assert.equal(back[j]!.error, undefined);
        assert.deepStrictEqual(strip(back[j]!.value), strip(originals[i]!.value));
      } catch {
        diffs.push(
          `${JSON.stringify(texts[i])} rendered as ${JSON.stringify(rendered[j])}: PyYAML reads ${back[j]!.error ?? JSON.stringify(back[j]!.value)}, not ${JSON.stringify(originals[i]!.value)}`,
        );
      }
    }
    process.stdout.write(`# render: ${kept.length - diffs.length}/${kept.length} configs rendered to exactly what Axolotl reads from the original\n`);
    assert.ok(kept.length > 1000, `${kept.length} configs`);
    assert.deepEqual(diffs, []);
  });

  it("writes config.yaml so that yaml.safe_load reads back exactly the value", async () => {
    const values = valuesToWrite(spellings);
    const texts = values.map(stringifyAxolotlYaml);
    const read = await judge.load(texts);
    const diffs: string[] = [];
    for (const [i, value] of values.entries()) {
      const back = read[i]!;
      try {
        assert.equal(back.error, undefined);
        assert.deepStrictEqual(theirs(back.value), tagged(value));
        // And our own reader agrees (the reconciler reads config.yaml back).
        assert.deepStrictEqual(tagged(parseAxolotlYaml(texts[i]!)), tagged(value));
      } catch {
        diffs.push(`${JSON.stringify(value)} written as ${JSON.stringify(texts[i])}: PyYAML reads ${back.error ?? JSON.stringify(back.value)}`);
      }
    }
    process.stdout.write(`# write: ${values.length - diffs.length}/${values.length} values read back unchanged by PyYAML\n`);
    assert.deepEqual(diffs, []);
  });
});
