import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseOperatorOptions } from "./options.ts";

describe("--progress-log-interval-seconds", () => {
  it("defaults to 60 s, takes the flag over FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS, and 0 turns the fallback off", () => {
    assert.equal(parseOperatorOptions([], {}).progressLogIntervalMs, 60_000);
    assert.equal(parseOperatorOptions([], { FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS: "15" }).progressLogIntervalMs, 15_000);
    assert.equal(parseOperatorOptions(["--progress-log-interval-seconds=1"], { FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS: "15" }).progressLogIntervalMs, 1_000);
    assert.equal(parseOperatorOptions(["--progress-log-interval-seconds=0"], {}).progressLogIntervalMs, 0);
  });

  it("rejects negative, non-numeric and sub-second intervals", () => {
    for (const bad of ["-1", "soon", "0.5"])
      assert.throws(() => parseOperatorOptions([`--progress-log-interval-seconds=${bad}`], {}), /progress-log-interval-seconds/, bad);
  });
});
