/**
 * The data behind src/axolotl/schema/axolotl-<version>.json: Axolotl's own pydantic model of its config
 * (AxolotlInputConfig.model_json_schema(), and the bundled plugins' argument models), asked of the pinned version
 * in the real-Axolotl environment. `npm run generate:axolotl-schema` writes it; e2e/axolotl/schema.test.ts fails
 * when the committed file differs from what the pinned version answers.
 */
import { fileURLToPath } from "node:url";
import type { Judge } from "./judge.ts";

export function schemaFile(version: string): string {
  return fileURLToPath(new URL(`../../src/axolotl/schema/axolotl-${version}.json`, import.meta.url));
}

/** The file's text: stable (keys sorted by judge.py), one space of indent so a version bump diffs key by key. */
export async function schemaText(judge: Judge): Promise<string> {
  const answer = await judge.schema();
  const data = {
    $comment: "Generated from the pinned Axolotl's pydantic models by `npm run generate:axolotl-schema`. Do not edit.",
    axolotl: answer.axolotl,
    pydantic: answer.pydantic,
    schema: answer.schema,
    plugins: answer.plugins,
    vocabulary: answer.vocabulary,
  };
  return `${JSON.stringify(data, null, 1)}\n`;
}
