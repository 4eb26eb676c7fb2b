import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CoreV1Event } from "@kubernetes/client-node";
import type { FineTuneJobObject } from "../api/schema.ts";
import { EventRecorder, type EventSink } from "./event-recorder.ts";
import { buildEvent } from "./events.ts";
import { Reason } from "./reasons.ts";

const ftj = (uid: string) => ({ metadata: { name: `job-${uid}`, namespace: "ns", uid } }) as unknown as FineTuneJobObject;

function sink(opts: { patch404?: boolean } = {}) {
  const created: CoreV1Event[] = [];
  const patched: Array<{ name: string; count: number; lastTimestamp: Date }> = [];
  const s: EventSink = {
    create: async (e) => void created.push(e),
    patch: async (_ns, name, body) => {
      if (opts.patch404) throw Object.assign(new Error("not found"), { code: 404 });
      patched.push({ name, ...body });
    },
  };
  return { s, created, patched };
}

describe("EventRecorder (client-go's correlator: dedupe by count, spam filter per object)", () => {
  it("an identical Event within 10 minutes is a count on the first one; a different message or an older one is new", async () => {
    let now = 1_000_000;
    const { s, created, patched } = sink();
    const r = new EventRecorder(s, { now: () => now });
    const ev = (msg: string) => buildEvent(ftj("a"), "Warning", Reason.Unschedulable, msg, new Date(now), "me");
    assert.equal(await r.record(ev("0/3 nodes are available")), "created");
    now += 60_000;
    assert.equal(await r.record(ev("0/3 nodes are available")), "patched");
    now += 60_000;
    assert.equal(await r.record(ev("0/3 nodes are available")), "patched");
    assert.deepEqual(
      patched.map((p) => [p.name, p.count, p.lastTimestamp.getTime()]),
      [
        [created[0]!.metadata!.name, 2, 1_060_000],
        [created[0]!.metadata!.name, 3, 1_120_000],
      ],
    );
    assert.equal(await r.record(ev("0/4 nodes are available")), "created");
    now += 11 * 60_000;
    assert.equal(await r.record(ev("0/3 nodes are available")), "created", "outside the window: a new Event");
    assert.equal(created.length, 3);
  });

  it("a count on an Event the API server has expired records it anew", async () => {
    const { s, created } = sink({ patch404: true });
    const r = new EventRecorder(s, { now: () => 5 });
    const e = buildEvent(ftj("a"), "Normal", Reason.Restarting, "starting train attempt 2", new Date(5), "me");
    await r.record(e);
    assert.equal(await r.record(e), "created");
    assert.equal(created.length, 2);
  });

  it("per object: a burst of 25, then one Event per 5 minutes; other objects are not affected", async () => {
    let now = 0;
    const { s, created } = sink();
    const r = new EventRecorder(s, { now: () => now });
    const outcomes = [];
    for (let i = 0; i < 30; i++) outcomes.push(await r.record(buildEvent(ftj("a"), "Warning", Reason.Unschedulable, `m${i}`, new Date(now), "me")));
    assert.equal(outcomes.filter((o) => o === "created").length, 25);
    assert.equal(outcomes.filter((o) => o === "dropped").length, 5);
    assert.equal(await r.record(buildEvent(ftj("b"), "Warning", Reason.Unschedulable, "m", new Date(now), "me")), "created");
    now += 5 * 60_000;
    assert.equal(await r.record(buildEvent(ftj("a"), "Warning", Reason.Unschedulable, "late", new Date(now), "me")), "created");
    assert.equal(await r.record(buildEvent(ftj("a"), "Warning", Reason.Unschedulable, "later", new Date(now), "me")), "dropped");
    assert.equal(created.length, 27);
  });

  it("remembers a bounded number of Events", async () => {
    const { s, created, patched } = sink();
    const r = new EventRecorder(s, { now: () => 0, maxEntries: 2, burst: 100 });
    const e = (i: number) => buildEvent(ftj("a"), "Normal", Reason.Running, `m${i}`, new Date(0), "me");
    await r.record(e(1));
    await r.record(e(2));
    await r.record(e(3));
    assert.equal(await r.record(e(1)), "created", "evicted: recorded anew");
    assert.equal(await r.record(e(3)), "patched");
    assert.deepEqual([created.length, patched.length], [4, 1]);
  });
});
