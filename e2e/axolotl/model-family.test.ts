/**
 * The decoder layer classes model-family.ts guesses must exist in the transformers the pinned Axolotl runs with:
 * a guess naming a class that does not exist would send users to a wrong fix.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { FAMILIES } from "../../src/axolotl/model-family.ts";
import { ensureAxolotlEnv } from "./env.ts";

const FIND = `
import importlib, json, re, sys
out = {}
for cls in json.loads(sys.argv[1]):
    stem = cls[: -len("DecoderLayer")]
    names = {stem.lower(), re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower(), stem.lower().replace("text", "")}
    found = None
    for name in names:
        try:
            mod = importlib.import_module(f"transformers.models.{name}.modeling_{name}")
        except ImportError:
            continue
        if hasattr(mod, cls):
            found = mod.__name__
    out[cls] = found
print(json.dumps(out))
`;

describe("model families", () => {
  it("every guessed decoder layer class exists in the pinned transformers", async () => {
    const { python } = await ensureAxolotlEnv();
    const classes = [...new Set(FAMILIES.map(([, cls]) => cls))];
    const r = spawnSync(python, ["-c", FIND, JSON.stringify(classes)], { encoding: "utf8", timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const found = JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, string | null>;
    assert.deepEqual(
      Object.entries(found)
        .filter(([, m]) => m === null)
        .map(([c]) => c),
      [],
      JSON.stringify(found),
    );
  });
});
