/**
 * Chaos: a mixed burst of FineTuneJobs while the control plane and the operator are hurt, checked by an
 * independent watch recorder (e2e/lib/recorder.ts), never by the operator's own counters.
 *
 * Jobs (FINETUNE_CHAOS_JOBS, default 200; about 2 minutes on the 2-core development machine):
 *   plain      1 rank, runs to Succeeded                                  -> Succeeded, restarts 0
 *   gang-fail  2 ranks; rank 1 of attempt 0 is failed by the test       -> Succeeded, restarts 1
 *   suspend    suspended while training, then resumed                   -> Succeeded, restarts 0
 *   delete     2 ranks, deleted while training                          -> gone, nothing left behind
 * Faults, one after another while jobs run (each after more jobs finished, at a random moment):
 *   the kube-apiserver restarted twice (SIGKILL), etcd once (SIGKILL), the leading operator SIGKILLed 5 times;
 *   two operator replicas, restarted when they exit (as their Deployment would), so the leader moves.
 *
 * Runs on its OWN cluster (FINETUNE_CLUSTER_DIR=~/.cache/finetune-operator/cluster-chaos), deleted at the end.
 */
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { GROUP, LABEL_ATTEMPT, LABEL_JOB_NAME, PLURAL, VERSION } from "../src/api/group.ts";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { down, restart, up } from "./cluster/cluster.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, deleteFtj, finishPod, ftjManifest, patchFtjSpec } from "./lib/ftj.ts";
import { metricValue, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";
import { Recorder } from "./lib/recorder.ts";

const N = Number(process.env["FINETUNE_CHAOS_JOBS"] ?? 200);
const KINDS = ["plain", "gang-fail", "suspend", "delete"] as const;
type Kind = (typeof KINDS)[number];
const kindOf = (name: string): Kind => KINDS[Number(name.split("-").pop()) % KINDS.length]!;
const LEASE = ["--lease-duration-seconds=8", "--renew-deadline-seconds=6", "--retry-period-seconds=2"];

let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let recorder: Recorder;
const replicas = new Map<string, OperatorProcess>();
let stopping = false;
const log = (s: string) => process.stdout.write(`[chaos] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const generations = new Map<string, number>();

/**
 * Starts replica `id` and starts it again whenever it exits (a SIGKILL, or a lost lease), like its Deployment. Each
 * start has a new identity, as a new pod would: the old holder's Lease must expire, so the leader can move.
 */
async function supervise(id: string): Promise<void> {
  const generation = generations.get(id) ?? 0;
  generations.set(id, generation + 1);
  const identity = `${id}-${generation}`;
  const op = await startOperator({
    namespace: ns,
    leaderElect: true,
    leaseNamespace: ns,
    leaseName: "finetune-operator",
    identity,
    extraArgs: [...LEASE, "--resync-seconds=30"],
  });
  replicas.set(id, op);
  void op.proc.once("exit", () => {
    if (stopping) return;
    setTimeout(() => {
      if (!stopping) void supervise(id).catch((e: unknown) => log(`restart of ${id} failed: ${String(e)}`));
    }, 1000);
  });
}

before(async () => {
  process.env["FINETUNE_CLUSTER_DIR"] = join(homedir(), ".cache", "finetune-operator", "cluster-chaos");
  // Enough fake GPUs for every job of the burst to run at once (1.5 GPUs per job on average, 8 per node): held pods
  // must never keep released ones from being scheduled.
  process.env["FINETUNE_CLUSTER_NODES"] ??= String(Math.ceil((N * 1.5) / 8) + 2);
  await down({ log: () => undefined });
  await up({ log: () => undefined });
  suite = await suiteNamespace("chaos");
  ({ k, ns } = suite);
  recorder = new Recorder(k.kc, ns, {
    ftjs: async () =>
      (await k.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL })) as { items: KubernetesObject[] },
    jobs: () => k.batch.listNamespacedJob({ namespace: ns }),
    pods: () => k.core.listNamespacedPod({ namespace: ns }),
  });
  recorder.start();
  for (const id of ["replica-a", "replica-b"]) await supervise(id);
});

after(async () => {
  stopping = true;
  recorder?.stop();
  for (const op of replicas.values()) await op.stop("SIGKILL");
  await down({ log: () => undefined });
});

const pods = () => [...recorder.pods.items.values()];
const ftjs = () => [...recorder.ftjs.items.values()] as FineTuneJobObject[];
const attemptOf = (p: V1Pod) => Number(p.metadata?.labels?.[LABEL_ATTEMPT] ?? -1);

/**
 * Plays the trainers of the jobs with fate "run", for the first `released` jobs only (the others stay Running, so
 * every fault hits jobs in flight): fails rank 1 of each gang-fail job's attempt 0 (the injected
 * rank failures), suspends and resumes the suspend jobs, deletes the delete jobs, and lets every other running
 * pod succeed. Idempotent per pod and per job; API errors (the API server is restarting) are retried next tick.
 */
class Driver {
  readonly injectedRankFailures = new Set<string>();
  readonly done = new Set<string>();
  readonly suspended = new Set<string>();
  readonly resumed = new Set<string>();
  readonly deleted = new Set<string>();
  released = 0;
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    const tick = async () => {
      await this.#tick().catch(() => undefined);
      if (!stopping) this.#timer = setTimeout(() => void tick(), 500);
    };
    void tick();
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    // Every FineTuneJob, with or without pods (a suspended one has none, and must still be resumed).
    const byJob = new Map<string, V1Pod[]>(ftjs().map((j) => [j.metadata.name!, []]));
    for (const p of pods()) {
      const owner = p.metadata?.labels?.[LABEL_JOB_NAME];
      if (owner) byJob.set(owner, [...(byJob.get(owner) ?? []), p]);
    }
    const phases = new Map(ftjs().map((j) => [j.metadata.name!, j.status?.phase]));
    await Promise.all(
      [...byJob].map(async ([owner, list]) => {
        if (Number(owner.split("-").pop()) >= this.released) return;
        const kind = kindOf(owner);
        const running = list.filter((p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp && !this.done.has(p.metadata!.uid!));
        const gang = (attempt: number, size: number) => {
          const r = running.filter((p) => attemptOf(p) === attempt);
          return r.length === size ? r : undefined;
        };
        const finish = async (p: V1Pod, code: number) => {
          await finishPod(k, p, code);
          this.done.add(p.metadata!.uid!);
        };
        if (kind === "gang-fail") {
          const first = gang(0, 2);
          if (first && !this.injectedRankFailures.has(owner)) {
            const rank1 = first.find((p) => p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] === "1")!;
            await finish(rank1, 1);
            this.injectedRankFailures.add(owner);
            return;
          }
          for (const p of running.filter((p) => attemptOf(p) >= 1)) await finish(p, 0);
        } else if (kind === "suspend") {
          if (!this.suspended.has(owner) && gang(0, 1)) {
            await patchFtjSpec(k, ns, owner, { suspend: true });
            this.suspended.add(owner);
          } else if (this.suspended.has(owner) && !this.resumed.has(owner) && phases.get(owner) === "Suspended") {
            await patchFtjSpec(k, ns, owner, { suspend: false });
            this.resumed.add(owner);
          }
          if (this.resumed.has(owner)) for (const p of running.filter((p) => attemptOf(p) >= 1)) await finish(p, 0);
        } else if (kind === "delete") {
          if (!this.deleted.has(owner) && gang(0, 2)) {
            await deleteFtj(k, ns, owner);
            this.deleted.add(owner);
          }
        } else {
          for (const p of running) await finish(p, 0);
        }
      }),
    );
  }
}

/** The replica that leads now, from the operators' own gauge (only used to aim the kill, never to check results). */
async function leader(): Promise<[string, OperatorProcess] | undefined> {
  for (const [id, op] of replicas) {
    if (op.proc.exitCode !== null || op.proc.signalCode !== null) continue;
    const lead = await op.metrics().then(
      (m) => metricValue(m, "leader_election_master_status"),
      () => 0,
    );
    if (lead === 1) return [id, op];
  }
  return undefined;
}

describe("chaos", { timeout: 3_600_000 }, () => {
  test(`${N} mixed jobs survive apiserver x2, etcd x1 and 5 operator kills, with two replicas`, async () => {
    const driver = new Driver();
    driver.start();
    const t0 = Date.now();
    const spec = (kind: Kind) => ({
      preprocess: { enabled: false },
      merge: { enabled: false },
      maxRestarts: 3,
      ...(kind === "gang-fail" || kind === "delete" ? { nodes: 2, gpusPerNode: 1 } : {}),
      podAnnotations: { [FATE_ANNOTATION]: "run" },
    });
    const names = Array.from({ length: N }, (_, i) => `chaos-${i}`);
    for (let i = 0; i < names.length; i += 20) await Promise.all(names.slice(i, i + 20).map((n) => createFtj(k, ftjManifest(n, ns, spec(kindOf(n))))));
    log(`created ${N} jobs in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

    const finished = () => {
      const present = new Map(ftjs().map((j) => [j.metadata.name!, j]));
      return names.filter((n) =>
        kindOf(n) === "delete" ? driver.deleted.has(n) && !present.has(n) : ["Succeeded", "Failed"].includes(present.get(n)?.status?.phase ?? ""),
      ).length;
    };
    const faults: Array<{ what: string; run: () => Promise<void> }> = [];
    let kills = 0;
    const leaders = new Set<string>();
    const killLeader = async () => {
      const l = await waitFor("a leader to kill", () => leader());
      await l[1].stop("SIGKILL");
      kills++;
      leaders.add(l[0]);
      log(`SIGKILLed leader ${l[0]} (generation ${generations.get(l[0])! - 1})`);
    };
    faults.push(
      { what: "operator kill 1", run: killLeader },
      { what: "apiserver restart 1", run: async () => void (await restart("kube-apiserver", { signal: "SIGKILL", log: () => undefined })) },
      { what: "operator kill 2", run: killLeader },
      { what: "etcd restart", run: async () => void (await restart("etcd", { signal: "SIGKILL", log: () => undefined })) },
      { what: "operator kill 3", run: killLeader },
      { what: "apiserver restart 2", run: async () => void (await restart("kube-apiserver", { signal: "SIGKILL", log: () => undefined })) },
      { what: "operator kill 4", run: killLeader },
      { what: "operator kill 5", run: killLeader },
    );
    // The burst is released to the driver in waves, one per fault: each fault comes once half of the newest wave
    // finished (at a random moment 0-3 s later), so it hits jobs at every step: held Running, failing a rank,
    // suspended, resuming, being deleted, finishing.
    // One more wave than faults is left for after the last one, so even the last fault meets jobs in flight.
    const per = Math.ceil(N / (faults.length + 2));
    let injected = 0;
    for (const [i, f] of faults.entries()) {
      driver.released = Math.min(N, (i + 1) * per);
      const target = Math.max(0, driver.released - Math.ceil(per / 2));
      await waitFor(`${target} jobs finished before "${f.what}"`, () => finished() >= target, { timeoutMs: 1_200_000, intervalMs: 500 });
      await sleep(Math.random() * 3000);
      const inFlight = N - finished();
      await f.run();
      injected++;
      log(`${f.what} at ${((Date.now() - t0) / 1000).toFixed(1)}s with ${inFlight} jobs in flight; ${finished()}/${N} finished now`);
    }
    driver.released = N;

    await waitFor(
      `all ${N} jobs finished`,
      (note) => {
        note(
          `${finished()}/${N}; phases ${JSON.stringify(ftjs().reduce<Record<string, number>>((a, j) => ({ ...a, [j.status?.phase ?? "none"]: (a[j.status?.phase ?? "none"] ?? 0) + 1 }), {}))}`,
        );
        return finished() === N;
      },
      { timeoutMs: 1_800_000, intervalMs: 1000 },
    );
    const wall = (Date.now() - t0) / 1000;

    // Nothing orphaned: every labelled Job and pod belongs to a FineTuneJob that exists (garbage collection included).
    await waitFor(
      "no orphaned Jobs or pods",
      (note) => {
        const present = new Set(ftjs().map((j) => j.metadata.name));
        const orphans = [...recorder.jobs.items.values(), ...recorder.pods.items.values()].filter((o) => {
          const owner = o.metadata?.labels?.[LABEL_JOB_NAME];
          return owner !== undefined && !present.has(owner);
        });
        note(orphans.map((o) => `${o.kind ?? ""} ${o.metadata?.name}`));
        return orphans.length === 0;
      },
      { timeoutMs: 600_000, intervalMs: 1000 },
    );
    driver.stop();

    const lost: string[] = [];
    const wrong: string[] = [];
    let restarts = 0;
    for (const n of names) {
      const j = recorder.ftjs.items.get(n) as FineTuneJobObject | undefined;
      const kind = kindOf(n);
      if (kind === "delete") continue;
      if (j?.status?.phase !== "Succeeded") {
        lost.push(`${n} (${kind}): ${j?.status?.phase} ${j?.status?.message ?? ""}`);
        continue;
      }
      const want = kind === "gang-fail" ? 1 : 0;
      restarts += j.status.restarts ?? 0;
      if ((j.status.restarts ?? 0) !== want) wrong.push(`${n} (${kind}): restarts ${j.status.restarts}, expected ${want}`);
    }
    const duplicates = recorder.violations.filter((v) => /created twice|two training Jobs|alive at once/.test(v));
    const backwards = recorder.violations.filter((v) => /backwards/.test(v));
    log(
      `jobs ${N} (${KINDS.map((kd) => `${kd} ${names.filter((n) => kindOf(n) === kd).length}`).join(", ")}); ` +
        `injected faults ${injected} (apiserver 2, etcd 1, operator kills ${kills}) + rank failures ${driver.injectedRankFailures.size}; ` +
        `duplicates ${duplicates.length}, lost ${lost.length}, orphans 0, phase backwards ${backwards.length}, ` +
        `restarts ${restarts} (rank failures injected ${driver.injectedRankFailures.size}); wall ${wall.toFixed(0)}s; ` +
        `recorder reconnects ${recorder.ftjs.reconnects}/${recorder.jobs.reconnects}/${recorder.pods.reconnects}`,
    );
    for (const d of recorder.details) log(`violation: ${d}`);
    assert.deepEqual(recorder.violations, [], "recorder invariants");
    assert.deepEqual(lost, [], "every job reached its expected terminal phase");
    assert.deepEqual(wrong, [], "restarts equal the injected rank failures");
    assert.equal(restarts, driver.injectedRankFailures.size);
    assert.equal(kills, 5);
    log(`replicas that led when killed: ${[...leaders].sort().join(", ")}`);
  });
});
