import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ElectorThread, type ElectorThreadConfig } from "./elector-thread.ts";

const config: ElectorThreadConfig = { namespace: "ns", name: "lease", identity: "me", hardStopMs: 500, logLevel: "silent" };
/** A worker made of one line of JavaScript (the real one, src/lease-worker.ts, runs in e2e/elector-thread.test.ts). */
const worker = (code: string) => new URL(`data:text/javascript,${encodeURIComponent(code)}`);

function record() {
  const seen: string[] = [];
  const { promise: settled, resolve } = Promise.withResolvers<void>();
  return {
    seen,
    settled,
    callbacks: {
      onStartedLeading: () => void seen.push("started"),
      onStoppedLeading: (reason: string) => (seen.push(`stopped:${reason}`), resolve()),
      onError: (err: unknown) => (seen.push(`error:${(err as Error).message}`), resolve()),
    },
  };
}

describe("ElectorThread", () => {
  it("a worker that fails to start is reported (the operator exits on it rather than never lead)", async () => {
    const r = record();
    const t = new ElectorThread(worker("throw new Error('no credentials')"), config, r.callbacks);
    await r.settled;
    assert.deepEqual(r.seen, ["error:no credentials"]);
    assert.equal(t.isLeader(), false);
  });

  it("a worker that dies while leading ends the leadership as lost", async () => {
    const r = record();
    const code = "import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ type: 'started' }); setTimeout(() => process.exit(0), 50);";
    const t = new ElectorThread(worker(code), config, r.callbacks);
    await r.settled;
    assert.deepEqual(r.seen, ["started", "stopped:lost"]);
    assert.equal(t.isLeader(), false);
  });

  it("a lost Lease is acknowledged to the worker once the main thread has stopped", async () => {
    const r = record();
    // The worker reports a loss and echoes whatever the main thread answers.
    const code =
      "import { parentPort } from 'node:worker_threads'; parentPort.postMessage({ type: 'started' }); parentPort.postMessage({ type: 'stopped', reason: 'lost' });" +
      "parentPort.on('message', (m) => { parentPort.postMessage({ type: 'renewal', report: { ok: m.type === 'ack-stopped', latenessMs: 0, durationMs: 0, sinceRenewMs: 0 } }); process.exit(0); });";
    const acks: boolean[] = [];
    const { promise: acked, resolve } = Promise.withResolvers<void>();
    new ElectorThread(worker(code), config, { ...r.callbacks, onRenewal: (rep) => (acks.push(rep.ok), resolve()) });
    await acked;
    assert.deepEqual(r.seen, ["started", "stopped:lost"]);
    assert.deepEqual(acks, [true]);
  });
});
