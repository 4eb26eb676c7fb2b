import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { validateFineTuneJob } from "./job.ts";

const CONFIG = {
  base_model: "meta-llama/Llama-3.1-8B",
  adapter: "lora",
  micro_batch_size: 1,
  gradient_accumulation_steps: 4,
  learning_rate: 0.0002,
  datasets: [{ path: "tatsu-lab/alpaca", type: "alpaca" }],
};

function shutdownIssues(dynamicCheckpoint: Record<string, unknown>, grace?: number) {
  const spec = { config: { ...CONFIG, dynamic_checkpoint: dynamicCheckpoint }, ...(grace ? { terminationGracePeriodSeconds: grace } : {}) };
  return validateFineTuneJob({ apiVersion: "finetune.dev/v1alpha1", kind: "FineTuneJob", metadata: { name: "j" }, spec }).issues.filter((i) =>
    i.path.endsWith("dynamic_checkpoint.check_interval"),
  );
}

describe("checkShutdownSave", () => {
  it("warns with the arithmetic when a config checks the trigger less than every step", () => {
    const [issue, ...rest] = shutdownIssues({ enabled: true, check_interval: 10 });
    assert.equal(rest.length, 0);
    assert.equal(issue?.severity, "warning");
    assert.equal(issue?.path, "spec.config.dynamic_checkpoint.check_interval");
    // Default grace 120 s, 10 s kept by the launcher: 110 s for 10 steps.
    assert.match(issue!.message, /every 10 steps.*waits 110 s.*120 s.*under 11\.0 s/);
    assert.match(shutdownIssues({ enabled: true, check_interval: 100 }, 600)[0]!.message, /waits 590 s.*under 5\.9 s/);
  });

  it("is quiet when the operator's per-step check applies, or dynamic checkpoints are off", () => {
    assert.deepEqual(shutdownIssues({ enabled: true }), []);
    assert.deepEqual(shutdownIssues({ enabled: true, check_interval: 1 }), []);
    assert.deepEqual(shutdownIssues({ enabled: false, check_interval: 50 }), []);
  });
});
