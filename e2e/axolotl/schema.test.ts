/**
 * src/axolotl/schema/axolotl-<version>.json must be what the pinned Axolotl answers today: regenerate with
 * `npm run generate:axolotl-schema` when this fails (after a version bump, or when judge.py learns more).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ensureAxolotlEnv } from "./env.ts";
import { Judge } from "./judge.ts";
import { schemaFile, schemaText } from "./schema-data.ts";

describe("the committed Axolotl schema", () => {
  let judge: Judge;
  let version: string;

  before(async () => {
    const env = await ensureAxolotlEnv();
    version = env.version;
    judge = Judge.start(env.python);
  });
  after(() => judge.close());

  it("is what the pinned Axolotl's pydantic models say (else: npm run generate:axolotl-schema)", async () => {
    const fresh = await schemaText(judge);
    const committed = readFileSync(schemaFile(version), "utf8");
    assert.ok(committed === fresh, `src/axolotl/schema/axolotl-${version}.json is stale: run npm run generate:axolotl-schema`);
  });
});
