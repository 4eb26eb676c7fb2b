import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE } from "../api/group.ts";
import type { FineTuneJobObject, FineTuneJobStatus } from "../api/schema.ts";
import { parseLogTail, type LogProgress } from "./log-parse.ts";
import { logProgressPatch, mergeCheckpoints, needsLogProgress, nextTailLines, rankZeroPod } from "./log-plan.ts";
import { LogProgressPoller } from "./log-poller.ts";

const NOW = Date.parse("2030-01-01T12:00:00.000Z");
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();
const STALE = 180_000;

function job(status: FineTuneJobStatus | undefined, name = "j"): FineTuneJobObject {
  return { metadata: { name, namespace: "ml" }, spec: { config: {} } as never, ...(status ? { status } : {}) };
}
const training = (extra: Partial<FineTuneJobStatus> = {}): FineTuneJobStatus => ({
  phase: "Training",
  stages: { train: { phase: "Running", attempt: 1, retries: 0 } },
  ...extra,
});

function pod(name: string, o: { index?: string; attempt?: string; stage?: string; phase?: string; node?: string | null; deleting?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: "ml",
      labels: { [LABEL_JOB_NAME]: "j", [LABEL_STAGE]: o.stage ?? "train", [LABEL_ATTEMPT]: o.attempt ?? "1" },
      annotations: { "batch.kubernetes.io/job-completion-index": o.index ?? "0" },
      ...(o.deleting ? { deletionTimestamp: new Date(NOW) } : {}),
    },
    spec: { ...(o.node === null ? {} : { nodeName: o.node ?? "gpu-0" }), containers: [{ name: "trainer", image: "axolotlai/axolotl:0.18.0" }] },
    status: { phase: o.phase ?? "Running" },
  };
}

const parsed = (p: Partial<LogProgress>): LogProgress => ({ checkpoints: [], losses: [], completed: false, ...p });

describe("needsLogProgress", () => {
  it("reads training jobs without fresh pushed progress only", () => {
    assert.equal(needsLogProgress(job(training()), NOW, STALE), true, "no progress yet");
    assert.equal(needsLogProgress(job(training({ progress: { step: 5, source: "logs", updatedAt: ago(1) } })), NOW, STALE), true, "log progress is refreshed");
    assert.equal(needsLogProgress(job(training({ progress: { step: 5, source: "push", updatedAt: ago(10) } })), NOW, STALE), false, "fresh push wins");
    assert.equal(needsLogProgress(job(training({ progress: { step: 5, source: "push", updatedAt: ago(181) } })), NOW, STALE), true, "stale push");
    assert.equal(needsLogProgress(job(training({ progress: { step: 5, source: "push" } })), NOW, STALE), true, "push without a time");
    for (const phase of ["Pending", "Preprocessing", "Merging", "Succeeded", "Failed", "Suspended"] as const)
      assert.equal(needsLogProgress(job({ phase }), NOW, STALE), false, phase);
    assert.equal(needsLogProgress(job(undefined), NOW, STALE), false);
    const deleting = job(training());
    deleting.metadata.deletionTimestamp = new Date(NOW).toISOString();
    assert.equal(needsLogProgress(deleting, NOW, STALE), false);
  });
});

describe("rankZeroPod", () => {
  it("is completion index 0 of the current attempt, running on a node", () => {
    const j = job(training());
    const pods = [
      pod("j-train-1-1", { index: "1" }),
      pod("j-train-0-0", { attempt: "0", phase: "Failed" }),
      pod("j-preprocess-0-0", { stage: "preprocess" }),
      pod("j-train-1-0"),
    ];
    assert.equal(rankZeroPod(j, pods)?.metadata?.name, "j-train-1-0");
    assert.equal(rankZeroPod(j, [pod("p", { phase: "Pending" })]), undefined);
    assert.equal(rankZeroPod(j, [pod("p", { node: null })]), undefined);
    assert.equal(rankZeroPod(j, [pod("p", { deleting: true })]), undefined);
    assert.equal(rankZeroPod(j, [pod("p", { attempt: "0" })]), undefined, "a leftover of an earlier attempt");
    assert.equal(rankZeroPod(j, [pod("p", { index: "1" })]), undefined);
  });
});

describe("logProgressPatch", () => {
  const now = new Date(NOW);
  const ck = (step: number) => ({ step, path: `/finetune/output/model/checkpoint-${step}` });

  it("writes progress in the push path's shape, source logs, with summary and percent", () => {
    const patch = logProgressPatch(
      training(),
      parsed({ step: 120, totalSteps: 873, loss: 1.2345, epoch: 0.13, etaSeconds: 4200, checkpoints: [ck(100)] }),
      now,
      { allowStepBack: true },
    );
    assert.deepEqual(patch, {
      progress: {
        updatedAt: now.toISOString(),
        source: "logs",
        step: 120,
        totalSteps: 873,
        loss: 1.2345,
        epoch: 0.13,
        etaSeconds: 4200,
        percent: 13.7,
        summary: "120/873 (13%)",
      },
      checkpoints: [ck(100)],
      latestCheckpoint: ck(100),
    });
  });

  it("costs no write when the log did not move", () => {
    const status = training({
      progress: { step: 120, totalSteps: 873, loss: 1.2, source: "logs", updatedAt: ago(60) },
      checkpoints: [ck(100)],
      latestCheckpoint: ck(100),
    });
    assert.equal(
      logProgressPatch(status, parsed({ step: 120, totalSteps: 873, loss: 1.2, epoch: 0.2, checkpoints: [ck(100)] }), now, { allowStepBack: false }),
      undefined,
    );
    assert.equal(logProgressPatch(status, parsed({}), now, { allowStepBack: false }), undefined, "an empty tail adds nothing");
    // What the API server returns has its keys sorted: still the same checkpoints.
    const readBack = { ...status, checkpoints: [{ path: ck(100).path, step: 100 }] };
    assert.equal(
      logProgressPatch(readBack, parsed({ step: 120, checkpoints: [ck(100)] }), now, { allowStepBack: false }),
      undefined,
      "checkpoints compare by value",
    );
    assert.equal(logProgressPatch(status, parsed({ step: 120 }), now, { allowStepBack: false }), undefined, "fields the tail lacks keep their value");
    assert.ok(logProgressPatch(status, parsed({ step: 121 }), now, { allowStepBack: false }), "a step");
    assert.ok(logProgressPatch(status, parsed({ step: 120, loss: 1.1 }), now, { allowStepBack: false }), "a loss");
    assert.ok(logProgressPatch(status, parsed({ step: 120, evalLoss: 1.1 }), now, { allowStepBack: false }), "an eval loss");
    const withCk = logProgressPatch(status, parsed({ step: 120, checkpoints: [ck(110)] }), now, { allowStepBack: false });
    assert.deepEqual(withCk?.checkpoints, [ck(100), ck(110)], "a new checkpoint joins those already known");
    assert.deepEqual(withCk?.latestCheckpoint, ck(110));
    assert.equal(
      logProgressPatch(
        training({ progress: { step: 120, totalSteps: 873, source: "push", updatedAt: ago(999) } }),
        parsed({ step: 120, totalSteps: 873 }),
        now,
        { allowStepBack: true },
      ),
      undefined,
      "a stale push that the log agrees with is left alone",
    );
  });

  it("never moves the step back for the same pod, but does for a restarted attempt", () => {
    const status = training({ progress: { step: 300, source: "logs", updatedAt: ago(60) } });
    assert.equal(logProgressPatch(status, parsed({ step: 250, loss: 1 }), now, { allowStepBack: false }), undefined);
    assert.equal((logProgressPatch(status, parsed({ step: 250, loss: 1 }), now, { allowStepBack: true })?.progress as { step: number }).step, 250);
  });

  it("mergeCheckpoints keeps the newest 20 by step", () => {
    const many = Array.from({ length: 25 }, (_, i) => ck(i * 10));
    assert.equal(mergeCheckpoints(many.slice(0, 15), many.slice(10)).length, 20);
    assert.deepEqual(mergeCheckpoints([ck(20)], [ck(10)]), [ck(10), ck(20)]);
  });

  it("nextTailLines shrinks after a cut-off tail and grows back", () => {
    assert.equal(nextTailLines(500, 262_144, 262_144, 500), 250);
    assert.equal(nextTailLines(20, 262_144, 262_144, 500), 16);
    assert.equal(nextTailLines(250, 1000, 262_144, 500), 500);
    assert.equal(nextTailLines(250, 100_000, 262_144, 500), 250);
  });
});

describe("LogProgressPoller", () => {
  const TAIL =
    "Maximum number of steps set at 873\n 12%|█▏        | 102/873 [09:08<1:10:11,  5.46s/it]\n{'loss': 1.2345, 'learning_rate': 2e-05, 'epoch': 0.12}\n";

  function setup(jobs: FineTuneJobObject[], logs: Record<string, string | Error>) {
    const calls: string[] = [];
    const patches: [string, Record<string, unknown>][] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const byKey = new Map(jobs.map((j) => [`${j.metadata.namespace}/${j.metadata.name}`, j]));
    const poller = new LogProgressPoller({
      api: {
        async readPodLogTail(ns, name, opts) {
          calls.push(`${ns}/${name} tail=${opts.tailLines} limit=${opts.limitBytes} container=${opts.container}`);
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight--;
          const l = logs[name];
          if (l instanceof Error) throw l;
          return l ?? "";
        },
        async patchStatus(ns, name, status) {
          patches.push([`${ns}/${name}`, status]);
          // What the informer would show next: the patch applied to the cached object.
          const j = byKey.get(`${ns}/${name}`)!;
          j.status = { ...j.status, ...(status as FineTuneJobStatus), progress: { ...j.status?.progress, ...(status.progress as object) } };
          return {};
        },
      },
      jobs: () => [...byKey.values()],
      getJob: (ns, name) => byKey.get(`${ns}/${name}`),
      podsOf: (_ns, name) => [pod(`${name}-train-1-0`)],
      logger: pino({ level: "silent" }),
      intervalMs: 60_000,
      now: () => NOW,
    });
    return { poller, calls, patches, maxInFlight: () => maxInFlight };
  }

  it("reads each due job's rank 0 once per round, writes only what moved, at most 4 reads in flight", async () => {
    const jobs = Array.from({ length: 10 }, (_, i) => job(training(), `j${i}`));
    jobs.push(job(training({ progress: { step: 1, source: "push", updatedAt: ago(5) } }), "pushed"), job({ phase: "Merging" }, "merging"));
    const logs = Object.fromEntries(jobs.map((j) => [`${j.metadata.name}-train-1-0`, TAIL]));
    const { poller, calls, patches, maxInFlight } = setup(jobs, logs);
    await poller.poll();
    assert.equal(calls.length, 10, "the pushed and merging jobs are not read");
    assert.match(calls[0]!, /^ml\/j0-train-1-0 tail=500 limit=262144 container=trainer$/);
    assert.equal(patches.length, 10);
    assert.equal(maxInFlight(), 4);
    const progress = patches[0]![1].progress as Record<string, unknown>;
    assert.deepEqual([progress.step, progress.totalSteps, progress.loss, progress.source, progress.summary], [102, 873, 1.2345, "logs", "102/873 (11%)"]);
    await poller.poll();
    assert.equal(calls.length, 20, "one read per job per round");
    assert.equal(patches.length, 10, "an unchanged log costs no write");
  });

  it("survives failing reads and empty logs", async () => {
    const { poller, patches } = setup([job(training(), "a"), job(training(), "b"), job(training(), "c")], {
      "a-train-1-0": new Error("kubelet unreachable"),
      "b-train-1-0": "",
      "c-train-1-0": TAIL,
    });
    await poller.poll();
    assert.deepEqual(
      patches.map((p) => p[0]),
      ["ml/c"],
    );
    assert.equal(poller.stats.errors, 1);
  });

  it("the parser and the patch agree on a realistic tail end to end", () => {
    const p = parseLogTail(TAIL);
    assert.equal(logProgressPatch(undefined, p, new Date(NOW), { allowStepBack: true })?.progress !== undefined, true);
  });
});
