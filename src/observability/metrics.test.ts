import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OperatorMetrics } from "./metrics.ts";

const source = { fineTuneJobs: () => [], isLeader: () => true };
const sample = (text: string, name: string, labels: string) =>
  Number(
    text
      .split("\n")
      .find((l) => l.startsWith(`${name}{${labels}}`))
      ?.split(" ")[1] ?? Number.NaN,
  );

describe("OperatorMetrics", () => {
  it("the main event loop's delay: a 300 ms block shows as the max since the last collection, then resets", async () => {
    const m = new OperatorMetrics(source);
    await new Promise((r) => setTimeout(r, 100)); // the monitor needs a few samples
    const until = Date.now() + 300;
    while (Date.now() < until); // the loop is blocked: no timer fires
    await new Promise((r) => setTimeout(r, 50));
    const first = await m.scrape();
    assert.ok(sample(first, "finetune_event_loop_delay_seconds", 'quantile="1"') >= 0.25, first);
    // The next collection covers only what came after (until new samples arrive, the last values stand).
    const max1 = sample(first, "finetune_event_loop_delay_seconds", 'quantile="1"');
    let second = first;
    for (let i = 0; i < 600 && sample(second, "finetune_event_loop_delay_seconds", 'quantile="1"') === max1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      second = await m.scrape();
    }
    assert.ok(sample(second, "finetune_event_loop_delay_seconds", 'quantile="1"') < max1, `reset after the collection:\n${second}`);
  });

  it("Lease renewals: lateness and duration histograms by result", async () => {
    const m = new OperatorMetrics(source);
    m.leaseRenewal({ ok: true, latenessMs: 20, durationMs: 40 });
    m.leaseRenewal({ ok: false, latenessMs: 3000, durationMs: 10_000 });
    const text = await m.scrape();
    assert.equal(sample(text, "finetune_lease_renew_lateness_seconds_bucket", 'le="0.025"'), 1);
    assert.match(text, /^finetune_lease_renew_lateness_seconds_count 2$/m);
    assert.match(text, /^finetune_lease_renew_duration_seconds_count\{result="error"\} 1$/m);
  });
});
