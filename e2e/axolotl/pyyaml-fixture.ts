/**
 * The fixture of src/axolotl/yaml.test.ts (a fast unit test with no Python): the hand-picked spellings, written
 * plain in a config, and what real PyYAML's safe_load makes of each. Regenerate with
 * `node e2e/axolotl/pyyaml-fixture.ts`; e2e/axolotl/yaml-roundtrip.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ensureAxolotlEnv } from "./env.ts";
import { Judge, type LoadResult } from "./judge.ts";
import { HAND_PICKED } from "./yaml-corpus.ts";

export const FIXTURE = fileURLToPath(new URL("../../src/axolotl/testdata/pyyaml-scalars.json", import.meta.url));

export interface FixtureEntry {
  text: string;
  pyyaml: LoadResult;
}

/** `v: <spelling>` for every spelling that can be written plain; PyYAML's error text is cut to its first line. */
export async function buildFixture(judge: Judge): Promise<string> {
  const texts = HAND_PICKED.filter((s) => !/[\n\t\u0085\u2028\u00a0]|^\s|\s$|^$/.test(s)).map((s) => `v: ${s}\n`);
  const results = await judge.load(texts);
  const entries: FixtureEntry[] = texts.map((text, i) => ({
    text,
    pyyaml: results[i]!.error !== undefined ? { error: results[i]!.error.split("\n")[0]! } : results[i]!,
  }));
  return `[\n${entries.map((e) => JSON.stringify(e)).join(",\n")}\n]\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const judge = Judge.start((await ensureAxolotlEnv()).python);
  writeFileSync(FIXTURE, await buildFixture(judge));
  await judge.close();
  process.stdout.write(`wrote ${FIXTURE}\n`);
}
