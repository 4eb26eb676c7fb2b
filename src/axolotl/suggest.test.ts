import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { TOP_LEVEL_KEYS } from "./vocabulary.ts";
import { didYouMean, editDistance, maxDistanceFor, suggest } from "./suggest.ts";

describe("editDistance", () => {
  const cases: [string, string, number][] = [
    ["", "", 0],
    ["abc", "", 3],
    ["", "abc", 3],
    ["lora_r", "lora_r", 0],
    ["lora_rr", "lora_r", 1], // deletion
    ["lora_", "lora_r", 1], // insertion
    ["lora_x", "lora_r", 1], // substitution
    ["lroa_r", "lora_r", 1], // adjacent swap counts once
    ["bf61", "bf16", 1],
    ["kitten", "sitting", 3],
  ];
  for (const [a, b, d] of cases) {
    it(`${JSON.stringify(a)} -> ${JSON.stringify(b)} = ${d}`, () => {
      assert.equal(editDistance(a, b), d);
      assert.equal(editDistance(b, a), d);
    });
  }
});

describe("suggest", () => {
  const cases: [string, string | undefined][] = [
    ["lora_rr", "lora_r"],
    ["learnig_rate", "learning_rate"],
    ["micro_batchsize", "micro_batch_size"],
    ["micro-batch-size", "micro_batch_size"], // kebab-case CLI spelling
    ["Base_Model", "base_model"], // case does not count
    ["gradient_acumulation_steps", "gradient_accumulation_steps"],
    ["lora_target_linaer", "lora_target_linear"],
    ["sequence_length", "sequence_len"],
    ["zzzz_qqqq_xxxx", undefined], // nothing close: no suggestion
    ["x", undefined],
    ["", undefined],
    ["base_model", undefined], // exact match is not a typo
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} -> ${String(expected)}`, () => {
      assert.equal(suggest(input, TOP_LEVEL_KEYS), expected);
    });
  }

  it("prefers the earlier candidate on a tie", () => {
    assert.equal(suggest("ab", ["ac", "ad"]), "ac");
  });

  it("keeps short inputs to one edit", () => {
    assert.equal(maxDistanceFor("bf16"), 1);
    assert.equal(suggest("xy16", ["bf16"]), undefined);
    assert.equal(maxDistanceFor("a_very_long_config_key_name"), 3);
  });

  it("ignores absurdly long input", () => {
    assert.equal(suggest("a".repeat(500), ["a"]), undefined);
  });

  it("didYouMean formats or stays empty", () => {
    assert.equal(didYouMean("lora_rr", ["lora_r"]), " (did you mean `lora_r`?)");
    assert.equal(didYouMean("qqqqqqq", ["lora_r"]), "");
  });
});
