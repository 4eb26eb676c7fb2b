/**
 * src/axolotl/yaml.ts without Python: the expectations are real PyYAML's answers, recorded in
 * testdata/pyyaml-scalars.json by e2e/axolotl/pyyaml-fixture.ts (e2e/axolotl/yaml-roundtrip.test.ts asks PyYAML
 * live, on thousands more spellings, and fails when this file is stale).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseAxolotlYaml, plainReadsAsString, stringifyAxolotlYaml, YamlTimestamp } from "./yaml.ts";

interface Entry {
  text: string;
  pyyaml: { value?: unknown; error?: string };
}

const FIXTURE = JSON.parse(readFileSync(new URL("testdata/pyyaml-scalars.json", import.meta.url), "utf8")) as Entry[];

/** Our value in the fixture's tagged JSON (timestamps compare by kind). */
function tagged(v: unknown): unknown {
  if (typeof v === "number") return Number.isNaN(v) ? { $float: "nan" } : v === Infinity ? { $float: "inf" } : v === -Infinity ? { $float: "-inf" } : v;
  if (v instanceof YamlTimestamp) return { $timestamp: "*" };
  if (Array.isArray(v)) return v.map(tagged);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tagged(x)]));
  return v;
}

function theirs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(theirs);
  if (v !== null && typeof v === "object")
    return "$timestamp" in v ? { $timestamp: "*" } : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, theirs(x)]));
  return v;
}

describe("Axolotl YAML (PyYAML safe_load semantics)", () => {
  it("has a fixture worth the name", () => assert.ok(FIXTURE.length > 100, `${FIXTURE.length} entries`));

  for (const { text, pyyaml } of FIXTURE) {
    it(`reads ${JSON.stringify(text.slice(3, -1))} as PyYAML does`, () => {
      if (pyyaml.error !== undefined) {
        assert.throws(() => parseAxolotlYaml(text), Error, `PyYAML: ${pyyaml.error}`);
        return;
      }
      assert.deepStrictEqual(tagged(parseAxolotlYaml(text)), theirs(pyyaml.value));
    });
  }

  it("writes every fixture spelling, as a string, so that it reads back as that string", () => {
    for (const { text } of FIXTURE) {
      const s = text.slice(3, -1);
      const back = parseAxolotlYaml(stringifyAxolotlYaml({ [s]: s })) as Record<string, unknown>;
      assert.deepStrictEqual(back, { [s]: s }, `written as ${JSON.stringify(stringifyAxolotlYaml({ [s]: s }))}`);
    }
  });

  it("quotes a string whenever PyYAML would read its plain spelling as something else", () => {
    // Spellings made of scalar characters only: the rest (`- a`, `#x`) are about YAML syntax, which the yaml
    // package quotes for on its own (the round-trip test checks that too).
    for (const { text, pyyaml } of FIXTURE.filter(
      (e) => /^[\w.+\-:~=<]+$/.test(e.text.slice(3, -1)) && !/^(?:Scanner|Parser)Error/.test(e.pyyaml.error ?? ""),
    )) {
      const s = text.slice(3, -1);
      const readsAsString = pyyaml.error === undefined && (pyyaml.value as { v?: unknown }).v === s;
      assert.equal(plainReadsAsString(s), readsAsString, `${JSON.stringify(s)}: PyYAML ${JSON.stringify(pyyaml)}`);
      if (!readsAsString) assert.notEqual(stringifyAxolotlYaml({ v: s }), text, `${JSON.stringify(s)} must be quoted`);
    }
  });

  it("keeps the last of repeated keys and merges << as PyYAML does", () => {
    assert.deepStrictEqual(parseAxolotlYaml("a: 1\na: 2\n"), { a: 2 });
    assert.deepStrictEqual(parseAxolotlYaml("x: &x {b: 1, c: 2}\ny:\n  <<: *x\n  c: 3\n"), { x: { b: 1, c: 2 }, y: { b: 1, c: 3 } });
  });

  it("refuses alias bombs, several documents and local tags", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    ].join("\n");
    assert.throws(() => parseAxolotlYaml(bomb), /alias/);
    assert.throws(() => parseAxolotlYaml("a: 1\n---\nb: 2\n"), /single document/);
    assert.throws(() => parseAxolotlYaml("a: !foo 1\n"), /not supported/);
  });
});
