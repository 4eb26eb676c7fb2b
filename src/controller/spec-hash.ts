import { createHash } from "node:crypto";
import type { FineTuneJobSpec } from "../api/schema.ts";

/** Hash of the spec parts a started run is bound to; a change after start is reported as SpecChangeRejected. */
export function specHash(spec: FineTuneJobSpec): string {
  if (!Object.isFrozen(spec) || !Object.isFrozen(spec.config ?? {})) return computeSpecHash(spec);
  let hash = hashes.get(spec);
  if (hash === undefined) hashes.set(spec, (hash = computeSpecHash(spec)));
  return hash;
}

/**
 * The reconciler validates a spec once per generation and hands every later pass the same frozen object, so the
 * hash of a frozen spec is kept per object (a new generation is a new object); one that can still change is hashed
 * every time.
 */
const hashes = new WeakMap<FineTuneJobSpec, string>();

function computeSpecHash(spec: FineTuneJobSpec): string {
  const bound = { config: spec.config ?? null, configFrom: spec.configFrom ?? null, image: spec.image, nodes: spec.nodes, gpusPerNode: spec.gpusPerNode };
  return createHash("sha256").update(canonical(bound)).digest("hex").slice(0, 16);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value);
}
