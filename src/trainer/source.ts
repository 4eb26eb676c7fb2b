import { readFileSync, readdirSync } from "node:fs";
import { LAUNCHER_ENTRY, type LauncherSource } from "../render/names.ts";

const LAUNCHER_DIR = new URL("./launcher/", import.meta.url);
/** Only the modules: not __pycache__ (tests run them here) nor anything else a ConfigMap key could not carry. */
const MODULE_FILE = /^[A-Za-z0-9_]+\.py$/;

/**
 * The trainer-side launcher (Python, stdlib only) that the launcher ConfigMap ships to every pod: every module of
 * src/trainer/launcher/ (dist/trainer/launcher/ in the image), by file name.
 */
export function launcherSource(): LauncherSource {
  const names = readdirSync(LAUNCHER_DIR)
    .filter((name) => MODULE_FILE.test(name))
    .sort();
  if (!names.includes(LAUNCHER_ENTRY)) throw new Error(`${LAUNCHER_ENTRY} is missing from ${LAUNCHER_DIR.pathname}`);
  return Object.fromEntries(names.map((name) => [name, readFileSync(new URL(name, LAUNCHER_DIR), "utf8")]));
}
