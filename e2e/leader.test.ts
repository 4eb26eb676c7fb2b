/** Two operator replicas with leader election on a Lease: exactly one reconciles; when it dies the other takes over. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj } from "./lib/ftj.ts";
import { metricValue, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
const replicas: OperatorProcess[] = [];

before(async () => {
  suite = await suiteNamespace("leader");
  ({ k, ns } = suite);
  const lease = ["--lease-duration-seconds=4", "--renew-deadline-seconds=3", "--retry-period-seconds=1"];
  for (const id of ["replica-a", "replica-b"]) {
    replicas.push(
      await startOperator({ namespace: ns, leaderElect: true, leaseNamespace: ns, leaseName: "finetune-operator", identity: id, extraArgs: lease }),
    );
  }
});

after(async () => {
  for (const r of replicas) await r.stop("SIGKILL");
  await suite?.cleanup();
});

const leading = async () => {
  const flags = await Promise.all(
    replicas.map(async (r) => (r.proc.exitCode === null && r.proc.signalCode === null ? metricValue(await r.metrics(), "leader_election_master_status") : 0)),
  );
  return flags;
};
const reconciles = async (r: OperatorProcess) => metricValue(await r.metrics(), "controller_runtime_reconcile_total");

describe("leader election", () => {
  test("exactly one replica reconciles; after the leader is killed the other takes over", async () => {
    const flags = await waitFor("one leader", async (note) => {
      const f = await leading();
      note(f);
      return f.reduce((a, b) => a + b, 0) === 1 ? f : undefined;
    });
    const leader = replicas[flags.indexOf(1)]!;
    const follower = replicas[flags.indexOf(0)]!;
    await createFtj(k, ftjManifest("first", ns));
    await waitFor("first Succeeded", async () => (await getFtj(k, ns, "first")).status?.phase === "Succeeded", { timeoutMs: 60_000 });
    assert.ok((await reconciles(leader)) > 0);
    assert.equal(await reconciles(follower), 0, "the follower never reconciles");

    await leader.stop("SIGKILL");
    const lease = await waitFor(
      "the follower holds the lease",
      async () => {
        const l = await k.coordination.readNamespacedLease({ namespace: ns, name: "finetune-operator" });
        return metricValue(await follower.metrics(), "leader_election_master_status") === 1 ? l : undefined;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(lease.spec?.holderIdentity, follower === replicas[0] ? "replica-a" : "replica-b");
    await createFtj(k, ftjManifest("second", ns));
    await waitFor("second Succeeded under the new leader", async () => (await getFtj(k, ns, "second")).status?.phase === "Succeeded", { timeoutMs: 60_000 });
    assert.ok((await reconciles(follower)) > 0);
  });
});
