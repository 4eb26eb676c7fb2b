import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { steps } from "./breakdown.ts";

describe("latency breakdown", () => {
  it("splits Job created → Running into the Job controller, the claim, the scheduler and the kubelet", () => {
    assert.deepEqual(steps({ jobSeen: 1000, podsCreated: 1200, claimBound: 13_200, scheduled: 14_000, running: 14_300 }), {
      jobToPods: 200,
      podsToClaimBound: 12_000,
      toScheduled: 800,
      scheduledToRunning: 300,
    });
  });

  it("a claim bound before the pods existed costs nothing; without a claim the step is absent", () => {
    assert.deepEqual(steps({ jobSeen: 0, podsCreated: 100, claimBound: 50, scheduled: 150, running: 400 }), {
      jobToPods: 100,
      podsToClaimBound: 0,
      toScheduled: 50,
      scheduledToRunning: 250,
    });
    assert.deepEqual(steps({ jobSeen: 0, podsCreated: 100, scheduled: 150, running: 400 }), { jobToPods: 100, toScheduled: 50, scheduledToRunning: 250 });
  });
});
