import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { V1Lease } from "@kubernetes/client-node";
import { KubeClient } from "../kube/client.ts";
import { DirectTransport } from "../kube/transport.ts";
import { FakeClock } from "./backoff.ts";
import {
  LeaseApiLock,
  LeaderElector,
  leaseToRecord,
  recordToLeaseSpec,
  type LeaderElectionRecord,
  type RenewalReport,
  type LeaseLock,
  type StoppedReason,
  type VersionedRecord,
} from "./leader-election.ts";

/** One in-memory Lease shared by several locks, with resourceVersion semantics like the API server. */
class FakeLeaseServer {
  lease: VersionedRecord | null = null;
  #rv = 0;
  writes = 0;

  get(): VersionedRecord | null {
    return this.lease ? structuredClone(this.lease) : null;
  }

  create(r: LeaderElectionRecord): string {
    if (this.lease) throw Object.assign(new Error("AlreadyExists"), { code: 409 });
    this.lease = { record: structuredClone(r), resourceVersion: String(++this.#rv) };
    this.writes++;
    return this.lease.resourceVersion;
  }

  update(r: LeaderElectionRecord, rv: string): string {
    if (!this.lease) throw Object.assign(new Error("NotFound"), { code: 404 });
    if (this.lease.resourceVersion !== rv) throw Object.assign(new Error("Conflict"), { code: 409 });
    this.lease = { record: structuredClone(r), resourceVersion: String(++this.#rv) };
    this.writes++;
    return this.lease.resourceVersion;
  }
}

/** A client's view of the server: can be cut off (errors) or made to hang. */
class FakeLock implements LeaseLock {
  mode: "ok" | "error" | "hang" = "ok";
  readonly server: FakeLeaseServer;

  constructor(server: FakeLeaseServer) {
    this.server = server;
  }

  describe(): string {
    return "fake lease";
  }

  async #call<R>(fn: () => R, signal?: AbortSignal): Promise<R> {
    await Promise.resolve();
    if (this.mode === "error") throw new Error("connection refused");
    if (this.mode === "hang") {
      return new Promise<R>((_, reject) => signal?.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
    }
    return fn();
  }

  get(signal?: AbortSignal) {
    return this.#call(() => this.server.get(), signal);
  }
  create(r: LeaderElectionRecord, signal?: AbortSignal) {
    return this.#call(() => this.server.create(r), signal);
  }
  update(r: LeaderElectionRecord, rv: string, signal?: AbortSignal) {
    return this.#call(() => this.server.update(r, rv), signal);
  }
}

async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** Advance fake time in small steps, letting async work run between steps. */
async function advance(clock: FakeClock, ms: number, step = 50, onStep?: () => void): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await flush();
    onStep?.();
  }
}

function candidate(clock: FakeClock, server: FakeLeaseServer, identity: string) {
  const lock = new FakeLock(server);
  const events: string[] = [];
  let leaderSignal: AbortSignal | undefined;
  const stopped: StoppedReason[] = [];
  const le = new LeaderElector({
    namespace: "ns",
    name: "lock",
    identity,
    lock,
    clock,
    random: () => 0,
    onStartedLeading: (signal) => {
      leaderSignal = signal;
      events.push("started");
    },
    onStoppedLeading: (reason) => {
      stopped.push(reason);
      events.push(`stopped:${reason}`);
    },
    onNewLeader: (id) => events.push(`leader:${id}`),
  });
  return { le, lock, events, stopped, signal: () => leaderSignal };
}

describe("lease record conversion", () => {
  it("round-trips and writes MicroTime with microsecond precision", () => {
    const t = Date.parse("2025-01-02T03:04:05.678Z");
    const spec = recordToLeaseSpec({ holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 3 });
    assert.equal(JSON.stringify(spec.renewTime), '"2025-01-02T03:04:05.678000Z"');
    // The API answers MicroTime as a string.
    const rec = leaseToRecord({ spec: { ...spec, renewTime: "2025-01-02T03:04:05.678000Z" } } as unknown as V1Lease);
    assert.deepEqual(rec, { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 3 });
    assert.equal(recordToLeaseSpec({ ...rec, holderIdentity: "" }).holderIdentity, undefined);
    assert.equal(leaseToRecord({}).holderIdentity, "");
  });
});

describe("LeaderElector", () => {
  it("validates durations", () => {
    const base = { namespace: "n", name: "l", identity: "a", lock: new FakeLock(new FakeLeaseServer()), onStartedLeading() {}, onStoppedLeading() {} };
    assert.throws(() => new LeaderElector({ ...base, leaseDurationSeconds: 10, renewDeadlineSeconds: 10 }));
    assert.throws(() => new LeaderElector({ ...base, renewDeadlineSeconds: 2, retryPeriodSeconds: 2 }));
    assert.throws(() => new LeaderElector({ ...base, identity: "" }));
    assert.throws(() => new LeaderElector({ ...base, leaseDurationSeconds: 2.5, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 }), /whole number/);
    new LeaderElector({ ...base, leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 });
    assert.throws(() => new LeaderElector({ ...base, lock: undefined }));
    new LeaderElector(base);
  });

  it("creates an absent lease, leads, and renews every retry period", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    void a.le.start();
    await flush();
    assert.equal(a.le.isLeader(), true);
    assert.deepEqual(a.events, ["leader:a", "started"]);
    assert.equal(server.lease?.record.holderIdentity, "a");
    assert.equal(server.lease?.record.leaseDurationSeconds, 15);
    assert.equal(server.lease?.record.leaseTransitions, 0);
    const acquired = server.lease?.record.acquireTime;
    const writes = server.writes;
    await advance(clock, 10_000);
    assert.equal(server.writes - writes, 5, "a renew every 2 s");
    assert.equal(server.lease?.record.acquireTime, acquired, "acquireTime kept on renew");
    assert.equal(server.lease?.record.renewTime, clock.now());
    await a.le.stop();
  });

  it("two candidates: exactly one leads; the other waits while the lease is renewed", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    const b = candidate(clock, server, "b");
    void a.le.start();
    void b.le.start();
    await advance(clock, 60_000, 100, () => {
      assert.ok(!(a.le.isLeader() && b.le.isLeader()), "never two leaders");
    });
    assert.equal([a, b].filter((c) => c.le.isLeader()).length, 1);
    const leader = a.le.isLeader() ? a : b;
    const follower = leader === a ? b : a;
    assert.equal(follower.le.getLeader(), leader.le.identity);
    assert.ok(follower.events.includes(`leader:${leader.le.identity}`));
    await a.le.stop();
    await b.le.stop();
  });

  it("release on stop: the other candidate takes over within a retry period", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    void a.le.start();
    await flush();
    const b = candidate(clock, server, "b");
    void b.le.start();
    await advance(clock, 5000);
    assert.equal(b.le.isLeader(), false);
    await a.le.stop();
    assert.deepEqual(a.stopped, ["released"]);
    assert.equal(a.signal()?.aborted, true);
    assert.equal(server.lease?.record.holderIdentity, "");
    assert.equal(server.lease?.record.leaseDurationSeconds, 1);
    const t0 = clock.now();
    while (!b.le.isLeader()) await advance(clock, 50);
    assert.ok(clock.now() - t0 <= 2 * 1.2 * 1000 + 100, `took ${clock.now() - t0} ms`);
    assert.equal(server.lease?.record.leaseTransitions, 1);
    await b.le.stop();
  });

  it("a crashed leader (no release) is replaced only after the lease duration", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    void a.le.start();
    await flush();
    const b = candidate(clock, server, "b");
    void b.le.start();
    await advance(clock, 3000);
    // Crash: stops renewing, lease left as is.
    a.lock.mode = "hang";
    await a.le.stop({ release: false });
    assert.deepEqual(a.stopped, ["stopped"]);
    const lastWrite = clock.now();
    while (!b.le.isLeader()) await advance(clock, 50);
    const waited = clock.now() - lastWrite;
    assert.ok(waited >= 15_000 - 2_000 && waited <= 15_000 + 2 * 2_400, `took over after ${waited} ms`);
    assert.equal(server.lease?.record.holderIdentity, "b");
    await b.le.stop();
  });

  it("a leader that cannot renew stops leading at the renew deadline, before the lease expires for others", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    const done = a.le.start();
    await flush();
    const b = candidate(clock, server, "b");
    void b.le.start();
    await advance(clock, 4000);
    a.lock.mode = "error";
    const cut = clock.now();
    let lostAt = 0;
    let bLeadAt = 0;
    await advance(clock, 30_000, 50, () => {
      if (!lostAt && !a.le.isLeader()) lostAt = clock.now();
      if (!bLeadAt && b.le.isLeader()) bLeadAt = clock.now();
      assert.ok(!(a.le.isLeader() && b.le.isLeader()), "never two leaders");
    });
    await done;
    assert.deepEqual(a.stopped, ["lost"]);
    assert.equal(a.signal()?.aborted, true);
    assert.ok(lostAt - cut <= 10_000 + 100, `lost after ${lostAt - cut} ms`);
    assert.ok(bLeadAt > lostAt, "successor only after the old leader stopped");
    assert.throws(() => a.le.start(), /cannot be restarted/);
    await b.le.stop();
  });

  it("renewals failing past half the renew deadline put it under pressure; an on-time renew lifts it; each attempt is reported", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const lock = new FakeLock(server);
    const pressure: boolean[] = [];
    const reports: RenewalReport[] = [];
    const le = new LeaderElector({
      namespace: "ns",
      name: "lock",
      identity: "a",
      lock,
      clock,
      random: () => 0,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
      onPressure: (on) => pressure.push(on),
      onRenewal: (r) => reports.push(r),
    });
    void le.start();
    await advance(clock, 4100);
    assert.ok(reports.length >= 2 && reports.every((r) => r.ok && r.latenessMs === 0 && r.sinceRenewMs < 2100), JSON.stringify(reports));
    assert.deepEqual(pressure, []);
    lock.mode = "error";
    await advance(clock, 6000); // failing for 6 s of a 10 s deadline
    assert.deepEqual(pressure, [true]);
    assert.equal(le.underPressure(), true);
    assert.ok(reports.some((r) => !r.ok && r.sinceRenewMs > 5000));
    lock.mode = "ok";
    await advance(clock, 2100);
    assert.deepEqual(pressure, [true, false]);
    assert.equal(le.isLeader(), true);
    await le.stop();
  });

  it("a hanging API counts against the renew deadline too", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    const done = a.le.start();
    await flush();
    a.lock.mode = "hang";
    const cut = clock.now();
    await advance(clock, 12_000);
    await done;
    assert.deepEqual(a.stopped, ["lost"]);
    assert.ok(clock.now() - cut >= 10_000);
  });

  it("a leader that finds another holder stops leading at once", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const a = candidate(clock, server, "a");
    const done = a.le.start();
    await flush();
    const cur = server.get()!;
    server.update({ ...cur.record, holderIdentity: "intruder", renewTime: clock.now() }, cur.resourceVersion);
    await advance(clock, 2500);
    await done;
    assert.deepEqual(a.stopped, ["lost"]);
    assert.ok(a.events.includes("leader:intruder"));
  });

  it("an expired lease held by someone else is taken over (transitions +1)", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    server.create({ holderIdentity: "ghost", leaseDurationSeconds: 5, acquireTime: 0, renewTime: 0, leaseTransitions: 7 });
    const a = candidate(clock, server, "a");
    void a.le.start();
    await flush();
    assert.equal(a.le.isLeader(), false, "not until it has observed the record unchanged for 5 s");
    await advance(clock, 4900);
    assert.equal(a.le.isLeader(), false);
    await advance(clock, 2600);
    assert.equal(a.le.isLeader(), true);
    assert.equal(server.lease?.record.leaseTransitions, 8);
    await a.le.stop();
  });

  it("stop() before acquiring resolves and calls nothing", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    server.create({ holderIdentity: "other", leaseDurationSeconds: 15, acquireTime: 0, renewTime: 0, leaseTransitions: 0 });
    const a = candidate(clock, server, "a");
    const done = a.le.start();
    await advance(clock, 1000);
    await a.le.stop();
    await done;
    assert.deepEqual(a.stopped, []);
    assert.equal(server.lease?.record.holderIdentity, "other");
  });

  it("conflicting writers never both win", async () => {
    const clock = new FakeClock();
    const server = new FakeLeaseServer();
    const cs = ["a", "b", "c", "d"].map((id) => candidate(clock, server, id));
    for (const c of cs) void c.le.start();
    await advance(clock, 20_000, 100, () => {
      assert.ok(cs.filter((c) => c.le.isLeader()).length <= 1);
    });
    assert.equal(cs.filter((c) => c.le.isLeader()).length, 1);
    for (const c of cs) await c.le.stop();
  });
});

describe("LeaseApiLock (against a stub HTTP API server)", () => {
  async function stubServer(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void) {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => handler(req, body, res));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    const kc = new KubeClient(new DirectTransport({ source: "test", server: `http://127.0.0.1:${port}` }));
    return {
      kc,
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    };
  }
  const json = (res: ServerResponse, code: number, obj: unknown) => {
    res.writeHead(code, { "Content-Type": "application/json" });
    res.end(JSON.stringify(obj));
  };

  it("maps 404 to null, writes MicroTime bodies, surfaces 409 with code", async () => {
    const requests: { method: string; url: string; body: any }[] = [];
    const { kc, close } = await stubServer((req, body, res) => {
      requests.push({ method: req.method!, url: req.url!, body: body ? JSON.parse(body) : undefined });
      if (req.method === "GET") return json(res, 404, { kind: "Status", code: 404, reason: "NotFound" });
      if (req.method === "POST") return json(res, 201, { ...JSON.parse(body), metadata: { ...JSON.parse(body).metadata, resourceVersion: "7" } });
      return json(res, 409, { kind: "Status", code: 409, reason: "Conflict" });
    });
    try {
      const lock = new LeaseApiLock(kc, "ns", "l");
      assert.equal(await lock.get(), null);
      const t = Date.parse("2025-01-02T03:04:05.678Z");
      const rec = { holderIdentity: "me", leaseDurationSeconds: 15, acquireTime: t, renewTime: t, leaseTransitions: 0 };
      assert.equal(await lock.create(rec, AbortSignal.timeout(5000)), "7");
      const post = requests.find((r) => r.method === "POST")!;
      assert.equal(post.url, "/apis/coordination.k8s.io/v1/namespaces/ns/leases");
      assert.equal(post.body.spec.renewTime, "2025-01-02T03:04:05.678000Z");
      assert.equal(post.body.spec.holderIdentity, "me");
      await assert.rejects(lock.update(rec, "6"), (err: { code?: number }) => err.code === 409);
      const put = requests.find((r) => r.method === "PUT")!;
      assert.equal(put.body.metadata.resourceVersion, "6");
    } finally {
      await close();
    }
  });

  it("aborts a hanging request through the signal", async () => {
    const { kc, close } = await stubServer(() => {
      /* never answer */
    });
    try {
      const lock = new LeaseApiLock(kc, "ns", "l");
      const t0 = Date.now();
      await assert.rejects(lock.get(AbortSignal.timeout(100)), (err: Error) => /Abort|Timeout/.test(err.name));
      // Generous: this checks that the signal ends the request (it would otherwise hang forever), not how fast.
      assert.ok(Date.now() - t0 < 60_000);
    } finally {
      await close();
    }
  });
});
