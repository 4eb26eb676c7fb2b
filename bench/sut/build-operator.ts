/**
 * The operator as its image runs it: `tsc -p tsconfig.build.json` into dist/ and the launcher's Python beside it,
 * as the Dockerfile's build stage does. Measured this way, memory is the compiled program's (running src/*.ts
 * also loads Node's TypeScript stripper, about 20 MiB per thread, which no deployment carries).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Builds dist/ afresh (the source may have changed since the last build) and returns the entry, dist/main.js. */
export function buildOperator(log: (msg: string) => void = () => {}): string {
  const started = Date.now();
  execFileSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: ROOT, stdio: "inherit" });
  const from = join(ROOT, "src/trainer/launcher");
  const to = join(ROOT, "dist/trainer/launcher");
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(from)) if (f.endsWith(".py")) copyFileSync(join(from, f), join(to, f));
  log(`built dist/ (tsc -p tsconfig.build.json, as the image) in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return join(ROOT, "dist/main.js");
}
