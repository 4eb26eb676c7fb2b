/**
 * LeaderElector against the real local API server (npm run cluster:up).
 * Run: npx node --test e2e/runtime-leader.test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CoordinationV1Api } from "@kubernetes/client-node";
import { KubeClient } from "../src/kube/client.ts";
import { freshNamespace, kubeClients, type TestNamespace } from "./lib/index.ts";
import { LeaderElector, type StoppedReason } from "../src/runtime/leader-election.ts";

const LEASE_S = 4;
const RENEW_S = 3;
const RETRY_S = 0.5;

async function waitFor(cond: () => boolean, what: string, timeoutMs: number, onPoll?: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    onPoll?.();
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("LeaderElector (real API server)", { timeout: 900_000 }, () => {
  /** The operator's own REST client, from the admin kubeconfig file (client certificate). */
  let kc: KubeClient;
  let coord: CoordinationV1Api;
  let testNs: TestNamespace;
  let ns: string;
  const electors: LeaderElector[] = [];

  before(async () => {
    const k = await kubeClients();
    kc = await KubeClient.fromEnvironment({ ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" });
    coord = k.coordination;
    testNs = await freshNamespace("rt-leader", { clients: k });
    ns = testNs.name;
  });

  after(async () => {
    for (const e of electors) await e.stop({ release: false }).catch(() => {});
    await testNs?.cleanup();
  });

  function candidate(lease: string, identity: string) {
    const stopped: StoppedReason[] = [];
    let startedAt = 0;
    const le = new LeaderElector({
      client: kc,
      namespace: ns,
      name: lease,
      identity,
      leaseDurationSeconds: LEASE_S,
      renewDeadlineSeconds: RENEW_S,
      retryPeriodSeconds: RETRY_S,
      onStartedLeading: () => void (startedAt = Date.now()),
      onStoppedLeading: (r) => void stopped.push(r),
    });
    electors.push(le);
    return { le, stopped, startedAt: () => startedAt };
  }

  it("two electors on one Lease: exactly one leads; the Lease names it and is renewed", async () => {
    const a = candidate("pair", "a");
    const b = candidate("pair", "b");
    void a.le.start();
    void b.le.start();
    const neverBoth = () => assert.ok(!(a.le.isLeader() && b.le.isLeader()), "two leaders at once");
    await waitFor(() => a.le.isLeader() || b.le.isLeader(), "a leader", 120_000, neverBoth);
    const leader = a.le.isLeader() ? a : b;
    const follower = leader === a ? b : a;
    // Hold steady for longer than a lease duration: still exactly one leader.
    const until = Date.now() + (LEASE_S + 1) * 1000;
    await waitFor(() => Date.now() > until, "steady state", 10_000, neverBoth);
    assert.equal(leader.le.isLeader(), true);
    assert.equal(follower.le.isLeader(), false);
    assert.equal(follower.le.getLeader(), leader.le.identity);

    const l1 = await coord.readNamespacedLease({ name: "pair", namespace: ns });
    assert.equal(l1.spec?.holderIdentity, leader.le.identity);
    assert.equal(l1.spec?.leaseDurationSeconds, LEASE_S);
    assert.match(String(l1.spec?.renewTime), /\.\d{6}Z$/, "MicroTime written with microseconds");
    await new Promise((r) => setTimeout(r, RETRY_S * 1000 * 2.5));
    const l2 = await coord.readNamespacedLease({ name: "pair", namespace: ns });
    assert.notEqual(l2.metadata?.resourceVersion, l1.metadata?.resourceVersion, "renewed");

    // Graceful stop releases: the follower takes over within a few retry periods.
    const t0 = Date.now();
    await leader.le.stop();
    assert.deepEqual(leader.stopped, ["released"]);
    const released = await coord.readNamespacedLease({ name: "pair", namespace: ns });
    assert.ok(!released.spec?.holderIdentity, "holderIdentity cleared");
    assert.equal(released.spec?.leaseDurationSeconds, 1);
    await waitFor(() => follower.le.isLeader(), "follower to take over after release", 4 * RETRY_S * 1000 + 1000);
    const took = Date.now() - t0;
    assert.ok(took < LEASE_S * 1000, `took over in ${took} ms, well before the lease would have expired`);
    const l3 = await coord.readNamespacedLease({ name: "pair", namespace: ns });
    assert.equal(l3.spec?.holderIdentity, follower.le.identity);
    assert.equal(l3.spec?.leaseTransitions, 1);
    await follower.le.stop();
  });

  it("a killed leader (no release) is replaced only after the lease duration", async () => {
    const a = candidate("crash", "a");
    void a.le.start();
    await waitFor(() => a.le.isLeader(), "a to lead", 120_000);
    const b = candidate("crash", "b");
    void b.le.start();
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(b.le.isLeader(), false);
    // "Kill": stop renewing without releasing.
    await a.le.stop({ release: false });
    const killedAt = Date.now();
    await waitFor(() => b.le.isLeader(), "b to take over", (LEASE_S + 4) * 1000);
    const waited = Date.now() - killedAt;
    // b must wait for the lease to expire as seen on its own clock: at least
    // leaseDuration minus the time since the last renew it observed (<= one retry period).
    assert.ok(waited >= (LEASE_S - RETRY_S) * 1000 - 200, `took over after only ${waited} ms`);
    assert.ok(waited <= (LEASE_S + 2 * RETRY_S) * 1000 + 1000, `took over after ${waited} ms`);
    const l = await coord.readNamespacedLease({ name: "crash", namespace: ns });
    assert.equal(l.spec?.holderIdentity, "b");
    await b.le.stop();
  });

  it("a leader that finds another holder in the Lease stops leading at its next renew", async () => {
    const a = candidate("steal", "a");
    const done = a.le.start();
    await waitFor(() => a.le.isLeader(), "a to lead", 120_000);
    // Someone else writes the lease (e.g. an operator forcing a handover).
    const cur = await coord.readNamespacedLease({ name: "steal", namespace: ns });
    await coord.replaceNamespacedLease({
      name: "steal",
      namespace: ns,
      body: { ...cur, spec: { ...cur.spec, holderIdentity: "intruder" } },
    });
    await waitFor(() => !a.le.isLeader(), "a to notice", RENEW_S * 1000 + 1000);
    await done;
    assert.deepEqual(a.stopped, ["lost"]);
  });
});
