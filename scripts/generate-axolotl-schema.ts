/**
 * `npm run generate:axolotl-schema`: writes src/axolotl/schema/axolotl-<pinned version>.json from the pinned
 * Axolotl's own pydantic models (the real-Axolotl environment is built on first use, about 11 minutes).
 */
import { writeFileSync } from "node:fs";
import { ensureAxolotlEnv } from "../e2e/axolotl/env.ts";
import { Judge } from "../e2e/axolotl/judge.ts";
import { schemaFile, schemaText } from "../e2e/axolotl/schema-data.ts";

const env = await ensureAxolotlEnv();
const judge = Judge.start(env.python);
try {
  const file = schemaFile(env.version);
  writeFileSync(file, await schemaText(judge));
  process.stdout.write(`wrote ${file}\n`);
} finally {
  await judge.close();
}
