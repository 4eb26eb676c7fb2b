import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { pino } from "pino";
import { PodCreateDiagnosis } from "./pod-create-diagnosis.ts";

/** A lookup the test answers by hand, recording what was asked. */
function manualLookups() {
  const asked: { job: string; answer: (m: string | undefined) => void; fail: (e: unknown) => void }[] = [];
  const lookup = (ns: string, job: string) =>
    new Promise<string | undefined>((answer, fail) => {
      asked.push({ job: `${ns}/${job}`, answer, fail });
    });
  return { asked, lookup };
}

/** Lets the lookup's then/finally callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

function harness(maxInFlight = 2) {
  const { asked, lookup } = manualLookups();
  const requeued: string[] = [];
  const warnings: string[] = [];
  let now = 1_000_000;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      warnings.push(String(JSON.parse(chunk.toString()).msg));
      done();
    },
  });
  const diagnosis = new PodCreateDiagnosis({
    lookup,
    requeue: (key) => requeued.push(key),
    logger: pino({ level: "warn" }, sink),
    recheckMs: 15_000,
    maxInFlight,
    now: () => now,
  });
  return { diagnosis, asked, requeued, warnings, tick: (ms: number) => (now += ms) };
}

describe("PodCreateDiagnosis", () => {
  it("answers from memory at once and looks the Events up in the background; a refusal found requeues its job", async () => {
    const h = harness();
    assert.equal(h.diagnosis.known("ns/a", "ns", "a-train-0"), undefined, "nothing known before the first lookup");
    assert.deepEqual(
      h.asked.map((a) => a.job),
      ["ns/a-train-0"],
    );
    h.asked[0]!.answer('pods "a-train-0-x" is forbidden: exceeded quota');
    await settle();
    assert.deepEqual(h.requeued, ["ns/a"]);
    assert.equal(h.diagnosis.known("ns/a", "ns", "a-train-0"), 'pods "a-train-0-x" is forbidden: exceeded quota');
    assert.equal(h.asked.length, 1, "not asked again within the recheck interval");
  });

  it("looks the same Job up again only after the recheck interval, and requeues only for news", async () => {
    const h = harness();
    h.diagnosis.known("ns/a", "ns", "a-train-0");
    h.asked[0]!.answer("refused");
    await settle();
    h.tick(14_999);
    h.diagnosis.known("ns/a", "ns", "a-train-0");
    assert.equal(h.asked.length, 1);
    h.tick(1);
    assert.equal(h.diagnosis.known("ns/a", "ns", "a-train-0"), "refused", "the last answer stands while the next lookup runs");
    assert.equal(h.asked.length, 2);
    h.asked[1]!.answer("refused");
    await settle();
    assert.deepEqual(h.requeued, ["ns/a"], "the same refusal again is no news");
  });

  it("runs at most maxInFlight lookups; a Job asked while all slots are busy is looked up when asked again later", async () => {
    const h = harness(2);
    for (const job of ["a", "b", "c"]) h.diagnosis.known(`ns/${job}`, "ns", `${job}-train-0`);
    assert.deepEqual(
      h.asked.map((a) => a.job),
      ["ns/a-train-0", "ns/b-train-0"],
    );
    assert.equal(h.diagnosis.inFlight, 2);
    h.asked[0]!.answer(undefined);
    await settle();
    assert.equal(h.diagnosis.inFlight, 1);
    h.diagnosis.known("ns/c", "ns", "c-train-0");
    assert.deepEqual(
      h.asked.map((a) => a.job),
      ["ns/a-train-0", "ns/b-train-0", "ns/c-train-0"],
    );
    assert.deepEqual(h.requeued, [], "no refusal found, nothing to requeue");
  });

  it("a Forbidden LIST (an old chart's role) is logged once and never thrown; other errors are logged and retried later", async () => {
    const h = harness(4);
    h.diagnosis.known("ns/a", "ns", "a-train-0");
    h.diagnosis.known("ns/b", "ns", "b-train-0");
    h.asked[0]!.fail(Object.assign(new Error("forbidden"), { statusCode: 403 }));
    h.asked[1]!.fail(Object.assign(new Error("forbidden"), { statusCode: 403 }));
    await settle();
    assert.deepEqual(h.warnings, ["cannot list Events (RBAC): refused pod creates are not reported"]);
    h.diagnosis.known("ns/c", "ns", "c-train-0");
    h.asked[2]!.fail(Object.assign(new Error("etcdserver: request timed out"), { statusCode: 500 }));
    await settle();
    assert.equal(h.warnings.at(-1), "could not list the Job's Events; will look again");
    assert.equal(h.diagnosis.inFlight, 0, "failed lookups free their slot");
    h.tick(15_000);
    h.diagnosis.known("ns/c", "ns", "c-train-0");
    assert.equal(h.asked.length, 4, "looked up again after the recheck interval");
  });
});
