/**
 * The base model's config.json, when this machine has it: `base_model` is a local folder, or the model is in the
 * local Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). No network: the
 * plugin must work offline, and a guess from the model's name (model-family.ts) is the fallback.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ModelInfo } from "../axolotl/model-family.ts";

function read(file: string): ModelInfo | undefined {
  try {
    const json = JSON.parse(readFileSync(file, "utf8")) as { architectures?: unknown; model_type?: unknown };
    return {
      source: file,
      ...(Array.isArray(json.architectures) ? { architectures: json.architectures.filter((a): a is string => typeof a === "string") } : {}),
      ...(typeof json.model_type === "string" ? { model_type: json.model_type } : {}),
    };
  } catch {
    return undefined; // unreadable or not JSON: fall back to the name
  }
}

export function localModelInfo(baseModel: unknown, env: NodeJS.ProcessEnv = process.env): ModelInfo | undefined {
  if (typeof baseModel !== "string" || baseModel === "") return undefined;
  const local = join(baseModel, "config.json");
  if (existsSync(local)) return read(local);
  const hub = env.HF_HUB_CACHE ?? join(env.HF_HOME ?? join(homedir(), ".cache", "huggingface"), "hub");
  const snapshots = join(hub, `models--${baseModel.replaceAll("/", "--")}`, "snapshots");
  if (!existsSync(snapshots)) return undefined;
  for (const snapshot of readdirSync(snapshots).sort().reverse()) {
    const file = join(snapshots, snapshot, "config.json");
    if (existsSync(file)) return read(file);
  }
  return undefined;
}
