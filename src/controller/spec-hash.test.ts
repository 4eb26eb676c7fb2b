import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { FineTuneJobSpec } from "../api/schema.ts";
import { deepFreeze } from "../runtime/store.ts";
import { specHash } from "./spec-hash.ts";

const spec = (lr: number) => ({ image: "img", nodes: 1, gpusPerNode: 1, config: { base_model: "m", learning_rate: lr } }) as unknown as FineTuneJobSpec;

describe("specHash", () => {
  it("depends on the config, not on key order", () => {
    const a = spec(0.1);
    const b = { gpusPerNode: 1, nodes: 1, image: "img", config: { learning_rate: 0.1, base_model: "m" } } as unknown as FineTuneJobSpec;
    assert.equal(specHash(a), specHash(b));
    assert.notEqual(specHash(a), specHash(spec(0.2)));
  });

  it("a spec edited in place is hashed again; a frozen one is the same object with the same hash", () => {
    const open = spec(0.1);
    const before = specHash(open);
    (open.config as Record<string, unknown>)["learning_rate"] = 0.2;
    assert.notEqual(specHash(open), before, "an unfrozen spec is never answered from memory");
    const frozen = deepFreeze(spec(0.1));
    assert.equal(specHash(frozen), before);
    assert.equal(specHash(frozen), before);
  });
});
