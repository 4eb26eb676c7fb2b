/** `kubectl finetune status`'s text: the conditions a job waits on carry the message that says what to fix. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { FineTuneJobObject } from "../api/schema.ts";
import { describeStatus } from "./format.ts";

const job = (conditions: NonNullable<FineTuneJobObject["status"]>["conditions"]): FineTuneJobObject =>
  ({
    apiVersion: "finetune.dev/v1alpha1",
    kind: "FineTuneJob",
    metadata: { name: "demo", namespace: "ml" },
    spec: {},
    status: { phase: "Pending", conditions },
  }) as never;

describe("describeStatus", () => {
  it("prints the message of each False condition the job waits on, and only the reason of the others", () => {
    const quota = "the API server refused to create PersistentVolumeClaim demo-output: exceeded quota: no-claims";
    const text = describeStatus(
      job([
        { type: "Validated", status: "True", reason: "Valid", message: "spec and Axolotl config are valid", lastTransitionTime: "2026-12-07T00:00:00Z" },
        { type: "ObjectsCreated", status: "False", reason: "CreateRefused", message: quota, lastTransitionTime: "2026-12-07T00:00:00Z" },
        {
          type: "PodsCreated",
          status: "False",
          reason: "FailedCreate",
          message: "pods of Job demo-train-0 are refused: forbidden",
          lastTransitionTime: "2026-12-07T00:00:00Z",
        },
        { type: "Trained", status: "False", reason: "Pending", message: "train attempt 0: pending", lastTransitionTime: "2026-12-07T00:00:00Z" },
      ]),
    );
    assert.match(text, new RegExp(`ObjectsCreated:\\s+False \\(CreateRefused\\): ${quota}`));
    assert.match(text, /PodsCreated:\s+False \(FailedCreate\): pods of Job demo-train-0 are refused: forbidden/);
    assert.match(text, /Validated:\s+True \(Valid\)\n/);
    assert.match(text, /Trained:\s+False \(Pending\)$/m);
  });
});
