import { readFileSync } from "node:fs";

/** The trainer-side launcher (Python, stdlib only) that the config ConfigMap ships to every pod. */
export function launcherSource(): string {
  return readFileSync(new URL("./launcher.py", import.meta.url), "utf8");
}
