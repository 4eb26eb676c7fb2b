import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import type { FineTuneJobObject, FineTuneJobSpecInput } from "../api/schema.ts";
import { DEFAULT_PLANNER_SETTINGS, type Action } from "./planner/index.ts";
import { CLAIM_SEEN_TTL_MS, countsOnlyHold, executionBatches, Reconciler, STATUS_COALESCE_MS } from "./reconciler.ts";

const create = (kind: string, name: string): Action => ({ kind: "create", object: { apiVersion: "v1", kind, metadata: { name } } });
const names = (batches: Action[][]) =>
  batches.map((b) => b.map((a) => (a.kind === "create" ? a.object.metadata?.name : a.kind === "delete" ? `delete ${a.name}` : a.kind)));

describe("executionBatches", () => {
  it("creates the base objects together, then the Job after them", () => {
    const batches = executionBatches([
      create("PersistentVolumeClaim", "out"),
      create("ConfigMap", "cfg"),
      create("Service", "ranks"),
      create("Job", "train-0"),
    ]);
    assert.deepEqual(names(batches), [["out", "cfg", "ranks"], ["train-0"]]);
  });

  it("keeps everything else in order, one at a time", () => {
    const del: Action = { kind: "delete", apiVersion: "batch/v1", resource: "jobs", namespace: "ns", name: "train-0", reason: "restart" };
    const batches = executionBatches([del, create("ConfigMap", "cfg"), create("Job", "train-1"), create("Service", "ranks")]);
    assert.deepEqual(names(batches), [["delete train-0"], ["cfg"], ["train-1"], ["ranks"]]);
  });

  it("no actions, no batches", () => {
    assert.deepEqual(executionBatches([]), []);
  });
});

/** A new FineTuneJob as the cache would hold it (resourceVersion 1, no status). */
function newJob(spec: Partial<FineTuneJobSpecInput> = {}): FineTuneJobObject {
  return {
    apiVersion: "finetune.dev/v1alpha1",
    kind: "FineTuneJob",
    metadata: { name: "demo", namespace: "ns", uid: "u1", generation: 1, resourceVersion: "1" },
    spec: {
      ...spec,
      config: {
        base_model: "m",
        adapter: "lora",
        lora_r: 8,
        lora_alpha: 16,
        lora_target_linear: true,
        datasets: [{ path: "d", type: "alpaca" }],
        micro_batch_size: 1,
        gradient_accumulation_steps: 1,
        num_epochs: 1,
        learning_rate: 0.0001,
        sequence_len: 512,
      },
    },
  } as unknown as FineTuneJobObject;
}

/** A Reconciler over a FineTuneJob cache the test controls, empty child caches, and a recording API stub. */
function reconcilerOver(cached: () => FineTuneJobObject, api: Record<string, unknown>): Reconciler {
  const none = () => undefined;
  return new Reconciler({
    api: { createEvent: async () => {}, ...api } as never,
    caches: { getFineTuneJob: cached, jobsOf: () => [], podsOf: () => [], configMap: none, service: none, claim: none },
    settings: { ...DEFAULT_PLANNER_SETTINGS, launcherSource: { "launcher.py": "# stub\n" } },
    logger: pino({ level: "silent" }),
    identity: "test",
  });
}

describe("Reconciler: its own status write not yet in the cache", () => {
  it("decides nothing from the job as it was before the write; goes on once the cache moves", async () => {
    const calls: string[] = [];
    let cached = newJob();
    let writtenRv = "2";
    const reconciler = reconcilerOver(() => cached, {
      // The write succeeds (a new resourceVersion), but the cache keeps showing the job as it was.
      replaceStatus: async (o: { metadata: object }) => {
        calls.push("status");
        return { ...o, metadata: { ...o.metadata, resourceVersion: writtenRv } };
      },
      create: async (o: { kind: string }) => {
        calls.push(`create ${o.kind}`);
        return {};
      },
    });
    await reconciler.reconcile("ns/demo");
    assert.ok(calls.includes("status") && calls.includes("create Job"), calls.join(", "));
    calls.length = 0;
    assert.deepEqual((await reconciler.reconcile("ns/demo")).requeueAfterMs, 30_000, "a safety net in case no update event comes");
    assert.equal(calls.length, 0, `no repeated status write, no repeated creates: ${calls.join(", ")}`);
    cached = { ...cached, metadata: { ...cached.metadata, resourceVersion: "2" } }; // the cache caught up (status omitted: decides again)
    writtenRv = "2"; // and this time the API server finds nothing to change: no new version, no event to wait for
    await reconciler.reconcile("ns/demo");
    assert.ok(calls.length > 0, "decides again once the cache moved");
    calls.length = 0;
    await reconciler.reconcile("ns/demo");
    assert.ok(calls.includes("status"), "a no-op write does not make it wait for an event that never comes");
  });
});

describe("Reconciler: validated specs are kept per generation", () => {
  it("a spec edit (a new generation) is validated again, not answered from the kept one", async () => {
    const written: FineTuneJobObject[] = [];
    let cached = newJob({ preprocess: { enabled: false } });
    const reconciler = reconcilerOver(() => cached, {
      replaceStatus: async (obj: FineTuneJobObject) => {
        written.push(obj);
        cached = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(written.length + 1) } };
        return cached;
      },
      create: async (o: unknown) => o,
    });
    await reconciler.reconcile("ns/demo");
    assert.equal(written.at(-1)?.status?.conditions?.find((c) => c.type === "Validated")?.status, "True");
    // The API server moves the generation with the spec: nodes 0 is refused with the key named.
    cached = { ...cached, metadata: { ...cached.metadata, generation: 2 }, spec: { ...cached.spec, nodes: 0 } };
    await reconciler.reconcile("ns/demo");
    const validated = written.at(-1)?.status?.conditions?.find((c) => c.type === "Validated");
    assert.equal(validated?.status, "False");
    assert.match(validated?.message ?? "", /spec\.nodes/);
  });
});

describe("Reconciler: a Job it created that the cache does not show yet", () => {
  it("is not created again when the job's own update arrives first", async () => {
    const calls: string[] = [];
    let rv = 1;
    let cached = newJob({ preprocess: { enabled: false } });
    const reconciler = reconcilerOver(() => cached, {
      // The FineTuneJob cache catches up with each status write at once; the Job cache never does here.
      replaceStatus: async (obj: FineTuneJobObject) => {
        calls.push("status");
        cached = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
        return cached;
      },
      create: async (o: { kind: string; metadata: { name: string } }) => {
        calls.push(`create ${o.kind} ${o.metadata.name}`);
        return o;
      },
    });
    await reconciler.reconcile("ns/demo");
    assert.ok(calls.includes("create Job demo-train-0"), calls.join(", "));
    calls.length = 0;
    await reconciler.reconcile("ns/demo");
    assert.ok(!calls.some((c) => c.startsWith("create Job")), `no second create: ${calls.join(", ")}`);
  });
});

describe("Reconciler: a create the API server refuses", () => {
  it("is reported in the next pass (status, Event) and tried again; the report clears once it goes through", async () => {
    const calls: string[] = [];
    let rv = 1;
    let cached = newJob({ preprocess: { enabled: false } });
    let quota = true;
    const refusal = 'persistentvolumeclaims "demo-output" is forbidden: exceeded quota: no-claims';
    const reconciler = reconcilerOver(() => cached, {
      replaceStatus: async (obj: FineTuneJobObject) => {
        cached = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } };
        return cached;
      },
      create: async (o: { kind: string; metadata: { name: string } }) => {
        calls.push(`create ${o.kind}`);
        if (quota && o.kind === "PersistentVolumeClaim") throw Object.assign(new Error("HTTP 403"), { code: 403, body: { message: refusal } });
        return o;
      },
      createEvent: async (e: { reason: string; message: string }) => void calls.push(`event ${e.reason}: ${e.message}`),
    });
    await assert.rejects(reconciler.reconcile("ns/demo"), /403/);
    assert.ok(!calls.includes("create Job"), "nothing after the refused claim");
    calls.length = 0;
    await assert.rejects(reconciler.reconcile("ns/demo"), /403/);
    const objects = cached.status?.conditions?.find((c) => c.type === "ObjectsCreated");
    assert.equal(objects?.status, "False");
    assert.equal(cached.status?.phase, "Pending");
    assert.equal(cached.status?.message, `the API server refused to create PersistentVolumeClaim demo-output: ${refusal}`);
    assert.ok(calls.includes(`event CreateRefused: ${cached.status?.message}`), calls.join(", "));
    quota = false;
    await reconciler.reconcile("ns/demo");
    assert.ok(calls.includes("create Job"));
    // The claim went through; the next pass finds no refusal left for what it still creates.
    await reconciler.reconcile("ns/demo");
    assert.equal(cached.status?.conditions?.find((c) => c.type === "ObjectsCreated")?.status, "True");
  });
});

describe("Reconciler: jobs that share one existing output claim", () => {
  it("ask the API server once while it exists; a missing claim is asked again on every try", async () => {
    const lists: string[] = [];
    let exists = false;
    let nowMs = 1_000_000;
    const jobs = new Map<string, FineTuneJobObject>();
    const job = (name: string) => {
      const j = newJob({ storage: { output: { existingClaim: "team-claim" } } });
      return { ...j, metadata: { ...j.metadata, name, uid: name } };
    };
    for (const n of ["a", "b", "c"]) jobs.set(`ns/${n}`, job(n));
    const none = () => undefined;
    const reconciler = new Reconciler({
      api: {
        createEvent: async () => {},
        claimExists: async (_ns: string, name: string) => (lists.push(name), exists),
        replaceStatus: async (o: FineTuneJobObject) => o,
        create: async (o: unknown) => o,
      } as never,
      caches: { getFineTuneJob: (key: string) => jobs.get(key), jobsOf: () => [], podsOf: () => [], configMap: none, service: none, claim: none },
      settings: { ...DEFAULT_PLANNER_SETTINGS, launcherSource: { "launcher.py": "# stub\n" } },
      logger: pino({ level: "silent" }),
      identity: "test",
      now: () => new Date(nowMs),
    });
    await reconciler.reconcile("ns/a");
    await reconciler.reconcile("ns/a");
    assert.equal(lists.length, 2, "not there yet: asked on each try (GitOps may apply the claim any moment)");
    exists = true;
    for (const n of ["a", "b", "c"]) await reconciler.reconcile(`ns/${n}`);
    assert.equal(lists.length, 3, "found once, then remembered for the other jobs");
    nowMs += CLAIM_SEEN_TTL_MS;
    await reconciler.reconcile("ns/b");
    assert.equal(lists.length, 4, "asked again once the memory is a minute old");
  });
});

describe("countsOnlyHold: pod-count changes right after a write are held and go out as one", () => {
  const status = (active: number, ready: number, phase = "Running") =>
    ({
      phase: "Training",
      message: `train attempt 0: ${ready}/2 pod(s) ready (Job j-train-0)`,
      stages: { train: { phase, attempt: 0, retries: 0, active, ready } },
    }) as FineTuneJobObject["status"];
  const decision = (s: FineTuneJobObject["status"], extra: { actions?: unknown[]; events?: unknown[] } = {}) => ({
    status: s,
    actions: extra.actions ?? [],
    events: extra.events ?? [],
  });

  it("holds a counts-only change until STATUS_COALESCE_MS after the last write", () => {
    assert.equal(countsOnlyHold(status(1, 0), decision(status(2, 1)), 10_000, 10_500), STATUS_COALESCE_MS - 500);
  });

  it("writes at once: long enough after the last write, no write remembered, anything besides counts, or something to act on or announce", () => {
    assert.equal(countsOnlyHold(status(1, 0), decision(status(2, 1)), 10_000, 10_000 + STATUS_COALESCE_MS), 0);
    assert.equal(countsOnlyHold(status(1, 0), decision(status(2, 1)), undefined, 10_500), 0);
    assert.equal(countsOnlyHold(status(1, 0, "Pending"), decision(status(2, 1, "Running")), 10_000, 10_500), 0, "a stage phase is a transition");
    assert.equal(countsOnlyHold(status(1, 0), decision(status(2, 1), { actions: [{}] }), 10_000, 10_500), 0);
    assert.equal(countsOnlyHold(status(1, 0), decision(status(2, 1), { events: [{}] }), 10_000, 10_500), 0);
  });
});
