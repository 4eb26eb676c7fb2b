/**
 * The real Axolotl, on CPU, for the tests that judge us against it: a virtual environment with the pinned
 * `axolotl` (the default trainer image's version) and every dependency at the exact versions of
 * requirements.txt (a `pip freeze` of a clean install), built once and cached under the project's cache folder:
 *
 *   $FINETUNE_CACHE_DIR/axolotl-<version>-py<major.minor>/   (default ~/.cache/finetune-operator/...)
 *
 * A venv cannot be moved (its scripts name their interpreter by absolute path), so it is built in place and
 * marked complete last, with the hash of requirements.txt: a half-built or outdated venv is removed and built
 * again. Measured on 2 cores: about 11 minutes and 7 GB the first time, instant after.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_TRAINER_IMAGE } from "../../src/api/group.ts";
import { withLock } from "../cluster/lock.ts";
import { cacheDir } from "../cluster/paths.ts";

export const axolotlDir = dirname(fileURLToPath(import.meta.url));
const REQUIREMENTS = join(axolotlDir, "requirements.txt");
const COMPLETE_MARKER = ".finetune-complete";

/** The version the default image ships, and so the one every real-Axolotl test runs against. */
export const AXOLOTL_VERSION = DEFAULT_TRAINER_IMAGE.split(":")[1]!.split("-")[0]!;

/** Interpreters in order of preference: torch and axolotl 0.18 publish wheels for 3.11 first. */
const PYTHONS = ["python3.11", "python3.12", "python3.10"];

export interface AxolotlEnv {
  /** The venv's directory. */
  root: string;
  /** The venv's python (has axolotl, torch, transformers, peft, PyYAML...). */
  python: string;
  /** The venv's bin directory: put it first on PATH so `axolotl` and `torchrun` resolve to it. */
  binDir: string;
  version: string;
}

function pythonVersion(python: string): string | undefined {
  // ensurepip too: Debian ships venv's pip bootstrap separately (python3.X-venv), and without it `-m venv` fails.
  const r = spawnSync(python, ["-c", "import sys, ensurepip, venv; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function findPython(): { python: string; version: string } {
  const candidates = process.env.FINETUNE_AXOLOTL_PYTHON ? [process.env.FINETUNE_AXOLOTL_PYTHON] : PYTHONS;
  for (const python of candidates) {
    const version = pythonVersion(python);
    if (version) return { python, version };
  }
  throw new Error(`no Python for the Axolotl environment: tried ${candidates.join(", ")} (set FINETUNE_AXOLOTL_PYTHON)`);
}

function requirementsHash(): string {
  return createHash("sha256").update(readFileSync(REQUIREMENTS)).digest("hex");
}

function envAt(root: string): AxolotlEnv {
  return { root, python: join(root, "bin", "python"), binDir: join(root, "bin"), version: AXOLOTL_VERSION };
}

/** Where the environment lives for the interpreter this machine offers (no install). */
export function axolotlEnvPath(): string {
  return join(cacheDir(), `axolotl-${AXOLOTL_VERSION}-py${findPython().version}`);
}

/** The environment when it is already built and current, else undefined. */
export function builtAxolotlEnv(): AxolotlEnv | undefined {
  const root = axolotlEnvPath();
  const marker = join(root, COMPLETE_MARKER);
  return existsSync(marker) && readFileSync(marker, "utf8").trim() === requirementsHash() ? envAt(root) : undefined;
}

function run(cmd: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" } });
    let tail = "";
    const keep = (d: Buffer) => {
      tail = (tail + d.toString()).slice(-8000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    // pip prints a line per package; a heartbeat is enough to show it is alive.
    const beat = setInterval(() => log(`  ... ${tail.trim().split("\n").pop()?.slice(0, 160) ?? ""}`), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(beat);
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} exited ${code}:\n${tail}`));
    });
  });
}

/**
 * Builds the environment unless it is there and current. Safe to call from several processes at once (a lock
 * serialises them; the second finds it built).
 */
export async function ensureAxolotlEnv(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<AxolotlEnv> {
  // An environment made elsewhere (a GPU machine's, with CUDA builds): used as it is, never modified.
  const given = process.env.FINETUNE_AXOLOTL_VENV;
  if (given) return envAt(given);
  const ready = builtAxolotlEnv();
  if (ready) return ready;
  const { python } = findPython();
  const root = axolotlEnvPath();
  return withLock(
    `${root}.lock`,
    async () => {
      const again = builtAxolotlEnv();
      if (again) return again;
      const started = Date.now();
      log(`building the Axolotl ${AXOLOTL_VERSION} environment in ${root} (first run: about 11 minutes and 7 GB)`);
      await rm(root, { recursive: true, force: true });
      await run(python, ["-m", "venv", root], log);
      await run(join(root, "bin", "pip"), ["install", "--no-input", "--progress-bar", "off", "--no-deps", "-r", REQUIREMENTS], log);
      // --no-deps installs exactly the frozen set; `pip check` proves the set is whole.
      await run(join(root, "bin", "pip"), ["check"], log);
      await writeFile(join(root, COMPLETE_MARKER), `${requirementsHash()}\n`);
      log(`Axolotl ${AXOLOTL_VERSION} environment ready in ${Math.round((Date.now() - started) / 1000)} s`);
      return envAt(root);
    },
    { timeoutMs: 60 * 60_000, onWait: (pid) => log(`waiting for pid ${pid}, which is building the Axolotl environment`) },
  );
}

// `node e2e/axolotl/env.ts` builds it ahead of the tests (CI does, to time it on its own).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const env = await ensureAxolotlEnv();
  process.stdout.write(`${env.python}\n`);
}
