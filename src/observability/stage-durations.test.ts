import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FineTuneJobObject } from "../api/schema.ts";
import { finishedStages } from "./stage-durations.ts";

type Status = NonNullable<FineTuneJobObject["status"]>;
const stage = (phase: "Running" | "Succeeded", start?: string, end?: string) => ({
  phase,
  attempt: 0,
  retries: 0,
  ...(start ? { startTime: start } : {}),
  ...(end ? { completionTime: end } : {}),
});

describe("finishedStages", () => {
  test("a stage that became Succeeded in this write yields its duration", () => {
    const before = { stages: { train: stage("Running", "2026-01-01T00:00:00Z") } } as Status;
    const after = { stages: { train: stage("Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z") } } as Status;
    assert.deepEqual(finishedStages(before, after), [{ stage: "train", seconds: 5400 }]);
  });

  test("already Succeeded before, not finished, or missing times: nothing", () => {
    const done = stage("Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z");
    assert.deepEqual(finishedStages({ stages: { preprocess: done } } as Status, { stages: { preprocess: done } } as Status), []);
    assert.deepEqual(finishedStages(undefined, { stages: { merge: stage("Running", "2026-01-01T00:00:00Z") } } as Status), []);
    assert.deepEqual(finishedStages(undefined, { stages: { merge: stage("Succeeded") } } as Status), []);
  });

  test("several stages in one write (operator was down meanwhile) each count once", () => {
    const after = {
      stages: {
        preprocess: stage("Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"),
        train: stage("Succeeded", "2026-01-01T00:01:00Z", "2026-01-01T00:03:00Z"),
      },
    } as Status;
    assert.deepEqual(finishedStages(undefined, after), [
      { stage: "preprocess", seconds: 60 },
      { stage: "train", seconds: 120 },
    ]);
  });
});
