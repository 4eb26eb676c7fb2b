import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { assessLoss, type LossGuard } from "./loss-health.ts";

const GUARD: LossGuard = { action: "Warn", flatSteps: 10, spikeFactor: 3 };
const points = (...losses: number[]) => losses.map((loss, i) => ({ step: (i + 1) * 10, loss }));
const decreasing = (n: number, from = 3) => points(...Array.from({ length: n }, (_, i) => from * 0.95 ** i));

describe("assessLoss", () => {
  it("says nothing before there is enough to judge", () => {
    assert.equal(assessLoss(undefined, GUARD), undefined);
    assert.equal(assessLoss({ points: decreasing(5) }, GUARD), undefined);
  });

  it("a loss that drops is healthy, with a message that does not move with every value (no status write per report)", () => {
    const a = assessLoss({ points: decreasing(12) }, GUARD)!;
    assert.equal(a.healthy, true);
    assert.equal(a.reason, "LossDecreasing");
    const b = assessLoss({ points: decreasing(13) }, GUARD)!;
    assert.equal(a.message, b.message);
  });

  it("NaN/inf anywhere: LossNotFinite with the guide's hints", () => {
    const v = assessLoss({ points: decreasing(3), nonFiniteStep: 40 }, GUARD)!;
    assert.deepEqual([v.healthy, v.reason, v.nonFinite], [false, "LossNotFinite", true]);
    assert.match(v.message, /step 40.*learning_rate.*`type`.*roles_to_train/s);
  });

  it("flat over the first flatSteps logged values: LossFlat (learning rate, dataset type, roles_to_train)", () => {
    const v = assessLoss({ points: points(2.31, 2.312, 2.309, 2.311, 2.31, 2.308, 2.31, 2.311, 2.309, 2.31, 2.31) }, GUARD)!;
    assert.deepEqual([v.healthy, v.reason], [false, "LossFlat"]);
    assert.match(v.message, /first 10 logged steps.*learning_rate.*`type`.*roles_to_train/s);
    // All labels masked gives a loss of exactly 0 from the start: flat too.
    assert.equal(assessLoss({ points: points(...Array(10).fill(0)) }, GUARD)?.reason, "LossFlat");
  });

  it("a flat start that later drops is working after all; flatSteps 0 turns the check off", () => {
    const flatThenDown = points(...Array(10).fill(2.3), 2.0, 1.7);
    assert.equal(assessLoss({ points: flatThenDown }, GUARD)?.healthy, true);
    assert.equal(assessLoss({ points: points(...Array(12).fill(2.3)) }, { ...GUARD, flatSteps: 0 })?.healthy, true);
  });

  it("a spike over factor x the recent minimum: LossSpike; it clears once it scrolls out of the recent window", () => {
    const spiked = [...decreasing(12, 2), { step: 130, loss: 9 }];
    const v = assessLoss({ points: spiked }, GUARD)!;
    assert.deepEqual([v.healthy, v.reason], [false, "LossSpike"]);
    assert.match(v.message, /step 130.*3x.*learning_rate/s);
    const later = [...spiked, ...Array.from({ length: 20 }, (_, i) => ({ step: 140 + i * 10, loss: 1 }))];
    assert.equal(assessLoss({ points: later }, GUARD)?.healthy, true);
    assert.equal(assessLoss({ points: spiked }, { ...GUARD, spikeFactor: 0 })?.healthy, true, "spikeFactor 0 turns it off");
  });

  it("noise on a loss near 0 is no spike", () => {
    assert.equal(assessLoss({ points: points(0.05, 0.04, 0.01, 0.03, 0.02, 0.01, 0.04, 0.02, 0.03, 0.01, 0.05) }, GUARD)?.healthy, true);
  });
});
