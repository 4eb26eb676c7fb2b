import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { FIRST, MAX_POINTS, RECENT, addLoss, sparkline, thin } from "./loss.ts";

const series = (n: number, f = (i: number) => 5 - i / n) => Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: f(i) }));

describe("addLoss", () => {
  it("appends newer steps and ignores repeats (a resent report, a tail read again)", () => {
    const h1 = addLoss(undefined, [
      { step: 1, loss: 6.7 },
      { step: 2, loss: 6.5 },
    ]);
    assert.deepEqual(h1, {
      points: [
        { step: 1, loss: 6.7 },
        { step: 2, loss: 6.5 },
      ],
    });
    assert.equal(
      addLoss(h1, [
        { step: 2, loss: 6.5 },
        { step: 1, loss: 6.7 },
      ]),
      h1,
      "same object: nothing to write",
    );
    assert.deepEqual(addLoss(h1, [{ step: 3, loss: 6.1 }])?.points.at(-1), { step: 3, loss: 6.1 });
  });

  it("records the first non-finite step and keeps it; NaN is no point on the curve", () => {
    const h = addLoss(addLoss(undefined, [{ step: 1, loss: 2 }]), [
      { step: 2, loss: Number.NaN },
      { step: 3, loss: Number.POSITIVE_INFINITY },
    ]);
    assert.deepEqual(h, { points: [{ step: 1, loss: 2 }], nonFiniteStep: 2 });
    assert.equal(addLoss(h, [{ step: 4, loss: Number.NaN }]), h);
  });

  it("rounds to 6 significant digits (values read back from the API server compare equal)", () => {
    assert.deepEqual(addLoss(undefined, [{ step: 1, loss: 1.23456789 }])?.points, [{ step: 1, loss: 1.23457 }]);
  });

  it("stays bounded over a long run, keeping the first and the newest values as logged", () => {
    let h = addLoss(undefined, []);
    for (const p of series(5000)) h = addLoss(h, [p]);
    assert.ok(h!.points.length <= MAX_POINTS);
    assert.deepEqual(
      h!.points.slice(0, FIRST).map((p) => p.step),
      series(FIRST).map((p) => p.step),
    );
    assert.deepEqual(
      h!.points.slice(-RECENT).map((p) => p.step),
      Array.from({ length: RECENT }, (_, i) => 5000 - RECENT + 1 + i),
    );
    const steps = h!.points.map((p) => p.step);
    assert.deepEqual(
      steps,
      [...steps].sort((a, b) => a - b),
      "still in step order",
    );
  });

  it("ignores invalid steps", () => {
    assert.equal(
      addLoss(undefined, [
        { step: -1, loss: 1 },
        { step: 1.5, loss: 1 },
      ]),
      undefined,
    );
  });
});

describe("thin and sparkline", () => {
  it("thin leaves short series alone", () => {
    assert.deepEqual(thin([1, 2, 3]), [1, 2, 3]);
  });

  it("sparkline draws the curve from high to low", () => {
    const line = sparkline({ points: series(8, (i) => 8 - i) });
    assert.equal(line.length, 8);
    assert.equal(line[0], "█");
    assert.equal(line.at(-1), "▁");
    assert.equal(sparkline(undefined), "");
    assert.ok(sparkline({ points: series(MAX_POINTS) }, 20).length <= 20);
  });
});
