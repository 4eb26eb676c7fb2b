/**
 * Our validator against Axolotl's own (axolotl.utils.config.validate_config on a DictDefault, in the pinned
 * version's real environment), on a generated corpus (validator-corpus.ts). For each config the verdicts must
 * match: valid (no error; warnings are ours alone and do not count) or invalid, and when invalid, at least one key
 * we name must be one Axolotl names (a pydantic error location, or a config key its message mentions).
 *
 * Excluded (listed in validator-corpus.ts EXCLUDED_KEYS and in the README): checks that need a GPU or an optional
 * extra (context_parallel_size > 1 needs ring-flash-attn), the operator-owned keys, and dataset entries with
 * unknown type names or no path, which we reject on purpose before any GPU is allocated. No shape (nodes x GPUs) is
 * given to our validator: Axolotl's validator knows none.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { validateAxolotlConfig } from "../../src/axolotl/validate.ts";
import { CONFIG_KEYS } from "../../src/axolotl/schema.ts";
import { DATASET_KEYS } from "../../src/axolotl/vocabulary.ts";
import { parseAxolotlYaml } from "../../src/axolotl/yaml.ts";
import { ensureAxolotlEnv } from "./env.ts";
import { Judge, type Tagged, type Verdict } from "./judge.ts";
import { corpus, DELIBERATELY_STRICTER, EXCLUDED_KEYS, type Case } from "./validator-corpus.ts";

const KNOWN = new Set([...CONFIG_KEYS, ...DATASET_KEYS]);

interface Ours {
  valid: boolean;
  keys: Set<string>;
  errors: string[];
}

function ours(c: Case): Ours {
  let config: unknown;
  try {
    config = c.text !== undefined ? parseAxolotlYaml(c.text) : c.config;
  } catch (err) {
    return { valid: false, keys: new Set(), errors: [`YAML: ${String(err)}`] };
  }
  const errors = validateAxolotlConfig(config).filter((i) => i.severity === "error");
  // Every identifier in the paths we report: `datasets[0].roles_to_train` names datasets and roles_to_train.
  // Every identifier in the paths we report (`datasets[0].roles_to_train` names datasets and roles_to_train), and
  // the config keys our messages name (a deprecated key's error names the key Axolotl reads it as).
  const keys = new Set([
    ...errors.flatMap((e) => e.path.split(/[.[\]]+/).filter((p) => p && !/^\d+$/.test(p))),
    ...errors.flatMap(
      (e) =>
        e.message
          .match(/`([A-Za-z_][A-Za-z0-9_]*)/g)
          ?.map((w) => w.slice(1))
          .filter((w) => KNOWN.has(w)) ?? [],
    ),
  ]);
  return { valid: errors.length === 0, keys, errors: errors.map((e) => `${e.path}: ${e.message}`) };
}

/** The keys Axolotl names: pydantic's error locations, else the config keys its message mentions. */
function theirKeys(v: Verdict): Set<string> {
  const fromLocs = (v.locs ?? []).flat().filter((p) => KNOWN.has(p));
  // pydantic appends "[type=..., input_value={...the whole config...}]": not what the message names.
  const text = (v.message ?? "").replace(/\[type=[^\n]*/g, "").replace(/For further information[^\n]*/g, "");
  const fromText = text.match(/[A-Za-z_][A-Za-z0-9_]*/g)?.filter((w) => KNOWN.has(w)) ?? [];
  return new Set([...fromLocs, ...fromText]);
}

function agrees(o: Ours, t: Verdict): boolean {
  if (o.valid !== t.valid) return false;
  if (o.valid) return true;
  // Only pydantic's ValidationError names keys; a crash inside a validator (TypeError, AttributeError) does not.
  const theirs = t.type === "ValidationError" ? theirKeys(t) : new Set<string>();
  // Axolotl's validator sometimes crashes instead of reporting (a before-validator calling .lower() on an int):
  // then it names no key, and only the verdict can be compared.
  if (theirs.size === 0) return true;
  return [...o.keys].some((k) => theirs.has(k));
}

describe("our validator agrees with Axolotl's own", () => {
  let judge: Judge;
  let cases: Case[] = [];

  before(async () => {
    judge = Judge.start((await ensureAxolotlEnv()).python);
    cases = corpus(await judge.validators());
  });
  after(() => judge.close());

  it(`gives Axolotl's verdict on every generated config`, { timeout: 20 * 60_000 }, async () => {
    assert.ok(cases.length > 3000, `${cases.length} cases`);
    const verdicts: Verdict[] = [];
    for (let i = 0; i < cases.length; i += 250) {
      const chunk = cases.slice(i, i + 250);
      verdicts.push(...(await judge.validate(chunk.map((c) => (c.text !== undefined ? { text: c.text } : { config: c.config as Tagged })))));
    }
    const disagreements: string[] = [];
    const byGroup = new Map<string, { n: number; ok: number }>();
    for (const [i, c] of cases.entries()) {
      const t = verdicts[i]!;
      const o = ours(c);
      const g = byGroup.get(c.group) ?? { n: 0, ok: 0 };
      g.n++;
      if (agrees(o, t)) g.ok++;
      else
        disagreements.push(
          `${c.name}: Axolotl ${t.valid ? "valid" : `INVALID (${[...theirKeys(t)].join(",") || "?"}: ${(t.message ?? "").replace(/\s+/g, " ").slice(0, 220)})`}; we ${o.valid ? "valid" : `INVALID (${o.errors.join(" | ").slice(0, 220)})`}`,
        );
      byGroup.set(c.group, g);
    }
    const ok = cases.length - disagreements.length;
    for (const d of disagreements) process.stdout.write(`# DISAGREE ${d}\n`);
    for (const [group, g] of byGroup) process.stdout.write(`# ${group}: ${g.ok}/${g.n}\n`);
    process.stdout.write(`# agreement with Axolotl's validator: ${ok}/${cases.length} = ${((100 * ok) / cases.length).toFixed(2)}% \n`);
    process.stdout.write(
      `# excluded keys: ${[...EXCLUDED_KEYS].map(([k, why]) => `${k} (${why})`).join("; ")}\n# deliberately stricter, not in the corpus: ${DELIBERATELY_STRICTER.join("; ")}\n`,
    );
    assert.equal(disagreements.length, 0, `${disagreements.length} disagreement(s), listed above`);
  });
});
