/**
 * Table-style tests of the pure planner. A small builder DSL makes the
 * observed world: `ftj()` is the FineTuneJob, `job(stage, attempt)` and
 * `pod(stage, attempt, index)` its children, `observe(...)` the input of
 * decide(). Time is fixed (NOW) so every decision is deterministic.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Job, V1Pod } from "@kubernetes/client-node";

import { API_VERSION, KIND, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE, type Stage } from "../../api/group.ts";
import type { Condition, FineTuneJobObject, FineTuneJobSpecInput, FineTuneJobStatus } from "../../api/schema.ts";
import { validateConfigForSpec, validateSpec } from "../../validation/job.ts";
import { launcherConfigMapName } from "../../render/names.ts";
import { desiredObjects, enabledStages, renderAll } from "../../render/desired.ts";
import { specHash } from "../spec-hash.ts";
import { DEFAULT_PLANNER_SETTINGS, decide, type Action, type Decision, type Observed, type PlannerSettings } from "./index.ts";
import { UNBOUND_CLAIM_GRACE_MS, UNSCHEDULABLE_GRACE_MS } from "./pods.ts";

// ---------------------------------------------------------------------------
// Fixtures and builders
// ---------------------------------------------------------------------------

const NOW = new Date("2030-01-01T12:00:00.000Z");
/** NOW plus `s` seconds. */
const at = (s: number) => new Date(NOW.getTime() + s * 1000);
const NS = "ml";
const NAME = "demo";

const SETTINGS: PlannerSettings = { ...DEFAULT_PLANNER_SETTINGS, launcherSource: { "launcher.py": "# launcher stub\n" } };
const LAUNCHER = launcherConfigMapName(SETTINGS.launcherSource);

const LORA: Record<string, unknown> = {
  base_model: "meta-llama/Llama-3.1-8B-Instruct",
  adapter: "lora",
  lora_r: 16,
  lora_alpha: 32,
  lora_target_linear: true,
  micro_batch_size: 2,
  gradient_accumulation_steps: 4,
  num_epochs: 1,
  learning_rate: 0.0002,
  sequence_len: 2048,
  datasets: [{ path: "data/train.jsonl", ds_type: "json", type: "alpaca" }],
};
const FULL: Record<string, unknown> = { ...LORA };
delete FULL.adapter;
delete FULL.lora_r;
delete FULL.lora_alpha;
delete FULL.lora_target_linear;

class FtjBuilder {
  readonly obj: FineTuneJobObject;
  constructor(name: string) {
    this.obj = {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name, namespace: NS, uid: `uid-${name}`, generation: 1 },
      spec: { config: structuredClone(LORA) },
    };
  }
  nodes(n: number): this {
    this.obj.spec.nodes = n;
    return this;
  }
  gpus(n: number): this {
    this.obj.spec.gpusPerNode = n;
    return this;
  }
  config(config: Record<string, unknown>): this {
    this.obj.spec.config = structuredClone(config);
    return this;
  }
  spec(patch: Partial<FineTuneJobSpecInput>): this {
    Object.assign(this.obj.spec, structuredClone(patch));
    return this;
  }
  generation(g: number): this {
    this.obj.metadata.generation = g;
    return this;
  }
  status(status: FineTuneJobStatus | undefined): this {
    if (status === undefined) delete this.obj.status;
    else this.obj.status = structuredClone(status);
    return this;
  }
  deleting(): this {
    this.obj.metadata.deletionTimestamp = NOW.toISOString();
    return this;
  }
  build(): FineTuneJobObject {
    return structuredClone(this.obj);
  }
}
const ftj = (name = NAME) => new FtjBuilder(name);

const childLabels = (stage: Stage, attempt: number) => ({
  [LABEL_JOB_NAME]: NAME,
  "app.kubernetes.io/managed-by": "finetune-operator",
  [LABEL_STAGE]: stage,
  [LABEL_ATTEMPT]: String(attempt),
});

class JobBuilder {
  readonly obj: V1Job;
  constructor(stage: Stage, attempt: number, parallelism = 1) {
    this.obj = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: `${NAME}-${stage}-${attempt}`, namespace: NS, labels: childLabels(stage, attempt), creationTimestamp: at(-600) },
      spec: { parallelism, completions: parallelism, template: {} },
      status: {},
    };
  }
  active(n = this.obj.spec!.parallelism ?? 1, ready = n): this {
    this.obj.status!.active = n;
    this.obj.status!.ready = ready;
    return this;
  }
  complete(): this {
    this.obj.status = {
      succeeded: this.obj.spec!.parallelism ?? 1,
      active: 0,
      conditions: [{ type: "Complete", status: "True", reason: "CompletionsReached", message: "" }],
    };
    return this;
  }
  failed(reason = "BackoffLimitExceeded", message = "Job has reached the specified backoff limit"): this {
    this.obj.status = { failed: 1, active: 0, conditions: [{ type: "Failed", status: "True", reason, message }] };
    return this;
  }
  suspended(): this {
    this.obj.spec!.suspend = true;
    return this;
  }
  deleting(): this {
    this.obj.metadata!.deletionTimestamp = at(-1);
    return this;
  }
  build(): V1Job {
    return structuredClone(this.obj);
  }
}
const job = (stage: Stage, attempt: number, parallelism = 1) => new JobBuilder(stage, attempt, parallelism);

class PodBuilder {
  readonly obj: V1Pod;
  constructor(stage: Stage, attempt: number, index: number) {
    this.obj = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `${NAME}-${stage}-${attempt}-${index}-x${index}`,
        namespace: NS,
        labels: childLabels(stage, attempt),
        annotations: { "batch.kubernetes.io/job-completion-index": String(index) },
        creationTimestamp: at(-600),
      },
      spec: { nodeName: `gpu-${index}`, containers: [{ name: "trainer", image: "axolotlai/axolotl:0.18.0" }] },
      status: {
        phase: "Running",
        containerStatuses: [{ name: "trainer", image: "axolotlai/axolotl:0.18.0", imageID: "", ready: true, restartCount: 0, state: { running: {} } }],
      },
    };
  }
  private terminated(exitCode: number, message?: string, reason = exitCode === 0 ? "Completed" : "Error", finishedAt = at(-5)) {
    this.obj.status!.containerStatuses![0]!.ready = false;
    this.obj.status!.containerStatuses![0]!.state = { terminated: { exitCode, reason, finishedAt, ...(message !== undefined ? { message } : {}) } };
  }
  /** Exit `exitCode`; `message` is the termination message (launcher JSON or a raw log tail). */
  failed(exitCode = 1, message?: string, opts: { reason?: string; finishedAt?: Date } = {}): this {
    this.obj.status!.phase = "Failed";
    this.terminated(exitCode, message, opts.reason, opts.finishedAt);
    return this;
  }
  succeeded(message?: string): this {
    this.obj.status!.phase = "Succeeded";
    this.terminated(0, message);
    return this;
  }
  /** Preempted / evicted: the DisruptionTarget condition, then killed. */
  disrupted(reason = "PreemptionByScheduler"): this {
    this.obj.status!.conditions = [{ type: "DisruptionTarget", status: "True", reason, message: "preempted by a higher-priority pod" }];
    return this.failed(143, undefined, { reason: "Error" });
  }
  waiting(reason: string, message = "", createdSecondsAgo = 60): this {
    this.obj.status!.phase = "Pending";
    this.obj.metadata!.creationTimestamp = at(-createdSecondsAgo);
    this.obj.status!.containerStatuses![0]!.ready = false;
    this.obj.status!.containerStatuses![0]!.state = { waiting: { reason, message } };
    return this;
  }
  build(): V1Pod {
    return structuredClone(this.obj);
  }
}
const pod = (stage: Stage, attempt: number, index = 0) => new PodBuilder(stage, attempt, index);

interface ObserveOptions {
  jobs?: (JobBuilder | V1Job)[];
  pods?: (PodBuilder | V1Pod)[];
  /** Claim, ConfigMap and Service observed (default true). */
  base?: boolean;
  now?: Date;
  settings?: Partial<PlannerSettings>;
  /** The API server's refusals of creates, as the reconciler remembers them. */
  createRefusals?: Record<string, string>;
}

const built = <T>(x: { build(): T } | T): T => (x instanceof JobBuilder || x instanceof PodBuilder ? (x.build() as T) : structuredClone(x as T));

/** What the reconciler hands decide(): the spec validated (config issues included), the children as the caches show them. */
function observe(f: FtjBuilder | FineTuneJobObject, opts: ObserveOptions = {}): Observed {
  const obj = f instanceof FtjBuilder ? f.build() : structuredClone(f);
  const { spec, issues } = validateSpec(obj.spec);
  const all = [...issues];
  if (spec?.config) all.push(...validateConfigForSpec(spec.config, spec));
  const base = opts.base ?? true;
  const ownsClaim = spec ? !spec.storage.output.existingClaim : true;
  return {
    ftj: obj,
    validation: { ...(spec ? { spec } : {}), issues: all },
    ...(spec?.config ? { axolotlConfig: spec.config } : {}),
    children: {
      configMap: base,
      launcher: base,
      service: base,
      ...(base && ownsClaim
        ? { claim: { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: `${obj.metadata.name}-output`, namespace: NS } } }
        : {}),
      jobs: (opts.jobs ?? []).map(built),
      pods: (opts.pods ?? []).map(built),
    },
    ...(opts.createRefusals ? { createRefusals: opts.createRefusals } : {}),
    settings: { ...SETTINGS, ...opts.settings },
    now: opts.now ?? NOW,
  };
}

/** decide() on `f` and the given children; returns the decision and the FineTuneJob with the decided status written. */
function step(f: FtjBuilder, opts: ObserveOptions = {}): { d: Decision; next: FtjBuilder } {
  const d = decide(observe(f, opts));
  const next = new FtjBuilder(f.obj.metadata.name!);
  Object.assign(next.obj, structuredClone(f.obj));
  next.status(d.status);
  return { d, next };
}

const cond = (st: FineTuneJobStatus, type: string): Condition | undefined => st.conditions?.find((c) => c.type === type);
const created = (d: Decision) =>
  d.actions
    .filter((a) => a.kind === "create")
    .map((a) => `${(a as Extract<Action, { kind: "create" }>).object.kind}/${(a as Extract<Action, { kind: "create" }>).object.metadata?.name}`);
const deleted = (d: Decision) => d.actions.filter((a): a is Extract<Action, { kind: "delete" }> => a.kind === "delete").map((a) => a.name);
const eventReasons = (d: Decision) => d.events.map((e) => `${e.type}/${e.reason}`);
const record = (st: FineTuneJobStatus, stage: Stage, attempt: number) => st.attempts?.find((a) => a.stage === stage && a.attempt === attempt);
const createdJob = (d: Decision, name: string) =>
  d.actions.find((a): a is Extract<Action, { kind: "create" }> => a.kind === "create" && a.object.metadata?.name === name)?.object as V1Job | undefined;

// Canonical points of a run, reached by driving the planner itself (so the statuses are the ones it really writes).

/** Base objects requested (first pass). */
function pending(f = ftj()) {
  return step(f, { base: false }).next;
}
/** The preprocess Job requested. */
function preprocessing(f = ftj()) {
  return step(pending(f)).next;
}
/** Preprocess done, train attempt 0 requested (or, with preprocess disabled, the first stage pass). */
function training(f = ftj()) {
  const p = pending(f);
  const stages = enabledStages(validateSpec(f.obj.spec).spec!, f.obj.spec.config ?? {});
  if (!stages.includes("preprocess")) return step(p).next;
  return step(step(p).next, { jobs: [job("preprocess", 0).complete()] }).next;
}
/** Train attempt 0 running with `nodes` ranks. */
function trainRunning(f = ftj(), nodes = f.obj.spec.nodes ?? 1) {
  const t = training(f);
  return step(t, { jobs: [job("preprocess", 0).complete(), job("train", 0, nodes).active()], pods: ranks("train", 0, nodes) }).next;
}
const TRAINED = [job("preprocess", 0).complete(), job("train", 0).complete()];
/** Training done, smoke-test attempt 0 requested. */
function smokeTesting(f = ftj()) {
  return step(trainRunning(f), { jobs: TRAINED }).next;
}
/** The launcher's termination message of a smoke-test pod. */
const smokeSummary = (answers: Array<{ prompt: string; answer: string; stopped: boolean | null }>) =>
  JSON.stringify({ stage: "smoke", exitCode: 0, reason: "Completed", tail: [], smoke: { answers, file: "/finetune/output/smoke-test/answers.json" } });
const ranks = (stage: Stage, attempt: number, n: number) => Array.from({ length: n }, (_, i) => pod(stage, attempt, i));

const TRACEBACK = 'Traceback (most recent call last):\n  File "train.py", line 1\nRuntimeError: something broke\n';
const launcherJson = (tail: string[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ stage: "train", exitCode: 1, reason: "Failed", resumeFrom: null, resumeStep: null, tail, ...extra });

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

describe("decide: validation", () => {
  const invalid: { name: string; f: () => FtjBuilder; path: string }[] = [
    { name: "Axolotl rule (qlora without load_in_4bit)", f: () => ftj().config({ ...LORA, adapter: "qlora" }), path: "spec.config.load_in_4bit" },
    { name: "schema (nodes: 0)", f: () => ftj().nodes(0), path: "spec.nodes" },
    { name: "cross-field (deepspeed on one GPU)", f: () => ftj().config({ ...FULL, deepspeed: "zero2.json" }), path: "spec.config.deepspeed" },
    { name: "neither config nor configFrom", f: () => ftj().spec({ config: undefined }), path: "spec.config" },
  ];
  for (const c of invalid) {
    it(`invalid spec -> Failed/InvalidSpec with a Warning event and no actions: ${c.name}`, () => {
      const { d } = step(c.f(), { base: false });
      assert.deepEqual(d.actions, []);
      assert.equal(d.status.phase, "Failed");
      assert.equal(d.statusChanged, true);
      assert.equal(d.status.observedGeneration, 1);
      const validated = cond(d.status, "Validated")!;
      assert.equal(validated.status, "False");
      assert.equal(validated.reason, "InvalidSpec");
      assert.ok(validated.message.includes(c.path), `${validated.message} names ${c.path}`);
      assert.equal(cond(d.status, "Failed")?.status, "True");
      assert.equal(cond(d.status, "Failed")?.reason, "InvalidSpec");
      assert.ok(d.status.message?.startsWith("invalid spec: "));
      assert.ok(
        d.events.some((e) => e.type === "Warning" && e.reason === "InvalidSpec" && e.message.includes(c.path)),
        JSON.stringify(d.events),
      );
      assert.equal(d.status.startTime, undefined);
      assert.equal(d.status.specHash, undefined);
    });
  }

  it("an invalid spec is reported once: the next pass is quiet", () => {
    const { next } = step(ftj().nodes(0), { base: false });
    const { d } = step(next, { base: false });
    assert.equal(d.statusChanged, false);
    assert.deepEqual(d.actions, []);
    assert.deepEqual(d.events, []);
  });

  it("a new generation with a fixed spec revalidates and proceeds", () => {
    const failed = step(ftj().config({ ...LORA, adapter: "qlora" }), { base: false }).next;
    const fixed = failed.generation(2).config({ ...LORA, adapter: "qlora", load_in_4bit: true });
    const { d, next } = step(fixed, { base: false });
    assert.equal(d.status.phase, "Preprocessing", "the first stage's Job is created in this pass");
    assert.equal(d.status.observedGeneration, 2);
    assert.equal(cond(d.status, "Validated")?.status, "True");
    assert.equal(cond(d.status, "Validated")?.observedGeneration, 2);
    assert.equal(cond(d.status, "Failed")?.status, "False");
    assert.deepEqual(
      created(d).toSorted(),
      ["ConfigMap/demo-config", `ConfigMap/${LAUNCHER}`, "Job/demo-preprocess-0", "PersistentVolumeClaim/demo-output"].toSorted(),
    );
    // ...and stays Preprocessing once the cache shows what it created.
    const { d: d2 } = step(next, { jobs: [job("preprocess", 0).active()] });
    assert.deepEqual(created(d2), []);
    assert.equal(d2.status.phase, "Preprocessing");
  });

  it("the same generation, still invalid, stays Failed without revalidating", () => {
    const failed = step(ftj().nodes(0), { base: false }).next;
    const { d } = step(failed.nodes(1), { base: false }); // spec changed but generation not bumped: not a new spec as far as the API is concerned
    assert.equal(d.status.phase, "Failed");
    assert.deepEqual(d.actions, []);
  });

  it("warnings do not block the run and are reported once per generation", () => {
    const f = ftj().config({ ...LORA, lora_rr: 8 });
    const { d, next } = step(f, { base: false });
    assert.equal(d.status.phase, "Preprocessing");
    assert.equal(cond(d.status, "Validated")?.status, "True");
    assert.match(cond(d.status, "Validated")!.message, /1 warning/);
    assert.ok(eventReasons(d).includes("Warning/ConfigWarnings"));
    assert.ok(!eventReasons(step(next, { base: false }).d).includes("Warning/ConfigWarnings"));
  });

  it("a FineTuneJob being deleted gets no actions and no status change", () => {
    const { d } = step(trainRunning().deleting(), { jobs: [job("train", 0).active()] });
    assert.deepEqual(d.actions, []);
    assert.equal(d.statusChanged, false);
    assert.deepEqual(d.events, []);
  });
});

// ---------------------------------------------------------------------------
// Happy path
// ---------------------------------------------------------------------------

describe("decide: stages", () => {
  it("first pass creates the claim, the config, the Service and then the first stage's Job, and says so in one status write", () => {
    const { d, next } = step(ftj().nodes(2), { base: false });
    // In this order: actions stop at the first error, so the Job never exists without what its pods mount.
    assert.deepEqual(created(d), [
      "PersistentVolumeClaim/demo-output",
      "ConfigMap/demo-config",
      `ConfigMap/${LAUNCHER}`,
      "Service/demo-ranks",
      "Job/demo-preprocess-0",
    ]);
    assert.equal(d.status.phase, "Preprocessing");
    assert.equal(d.status.message, "preprocess attempt 0: 0/1 pod(s) ready (Job demo-preprocess-0)");
    assert.equal(d.status.stages?.preprocess?.jobName, "demo-preprocess-0", "the Job is recorded in status before it is created");
    assert.equal(cond(d.status, "Validated")?.status, "True");
    assert.deepEqual(eventReasons(d), [], "arriving in Preprocessing is no Event");
    assert.equal(d.requeueAfterMs, undefined);
    // The next pass sees what was created, the Job without pods yet: nothing to write.
    const seen = step(next, { jobs: [job("preprocess", 0)] }).d;
    assert.equal(seen.statusChanged, false, JSON.stringify(seen.status));
    assert.deepEqual(seen.actions, []);
  });

  it("a refused create goes into status and one Warning Event; the job is Pending until the create goes through", () => {
    const quota =
      'persistentvolumeclaims "demo-output" is forbidden: exceeded quota: storage, requested: persistentvolumeclaims=1, used: persistentvolumeclaims=4, limited: persistentvolumeclaims=4';
    const first = step(ftj(), { base: false });
    const refusals = { "PersistentVolumeClaim/demo-output": quota };
    const { d, next } = step(first.next, { base: false, createRefusals: refusals });
    assert.equal(d.status.phase, "Pending");
    assert.equal(d.status.message, `the API server refused to create PersistentVolumeClaim demo-output: ${quota}`);
    assert.equal(cond(d.status, "ObjectsCreated")?.status, "False");
    assert.equal(cond(d.status, "ObjectsCreated")?.reason, "CreateRefused");
    assert.deepEqual(eventReasons(d), ["Warning/CreateRefused"]);
    assert.ok(created(d).includes("PersistentVolumeClaim/demo-output"), "tried again (the queue's backoff paces the tries)");
    // Refused again: no new Event, no status change.
    const again = step(next, { base: false, createRefusals: refusals }).d;
    assert.equal(again.statusChanged, false);
    assert.deepEqual(eventReasons(again), []);
    // The quota raised: the claim is created (no refusal left) and the job goes on.
    const { d: ok } = step(next, { base: false });
    assert.equal(cond(ok.status, "ObjectsCreated")?.status, "True");
    assert.equal(ok.status.phase, "Preprocessing");
    // A refusal of an object the planner no longer creates (it exists now) is not reported.
    const stale = step(next, { jobs: [job("preprocess", 0)], createRefusals: refusals }).d;
    assert.equal(cond(stale.status, "ObjectsCreated")?.status, "True");
  });

  it("a single node gets no rank Service: its rendezvous stays on loopback", () => {
    const { d } = step(ftj(), { base: false });
    assert.deepEqual(created(d), ["PersistentVolumeClaim/demo-output", "ConfigMap/demo-config", `ConfigMap/${LAUNCHER}`, "Job/demo-preprocess-0"]);
  });

  it("creates exactly what `kubectl finetune render` prints (one desiredObjects list), stage by stage", () => {
    const f = ftj().spec({ preprocess: { enabled: false } });
    const spec = validateSpec(f.obj.spec).spec!;
    const desired = desiredObjects(
      { job: { name: NAME, namespace: NS, uid: `uid-${NAME}` }, spec, axolotlConfig: spec.config!, settings: SETTINGS },
      enabledStages(spec, spec.config!),
    );
    const printed = renderAll(desired, 0);
    assert.deepEqual(
      printed.map((o) => o.kind),
      ["PersistentVolumeClaim", "ConfigMap", "ConfigMap", "Job", "Job", "Job"],
      "claim, config, launcher, train, smoke, merge (one node: no rank Service)",
    );
    const createdObjects = (d: Decision) => d.actions.flatMap((a) => (a.kind === "create" ? [a.object] : []));
    const first = step(f, { base: false });
    assert.deepEqual(createdObjects(first.d), printed.slice(0, 4), "base objects, then the train Job");
    const smoke = step(first.next, { jobs: [job("train", 0).complete()] });
    assert.deepEqual(createdObjects(smoke.d), [printed[4]], "the smoke-test Job");
  });

  it("only the missing base objects are created", () => {
    const obs = observe(ftj(), { base: false });
    obs.children.configMap = true;
    obs.children.launcher = true;
    assert.deepEqual(created(decide(obs)), ["PersistentVolumeClaim/demo-output", "Job/demo-preprocess-0"]);
  });

  it("with an existingClaim no claim is created", () => {
    const { d } = step(ftj().spec({ storage: { output: { existingClaim: "models" } } }), { base: false });
    assert.deepEqual(created(d), ["ConfigMap/demo-config", `ConfigMap/${LAUNCHER}`, "Job/demo-preprocess-0"]);
  });

  it("next pass creates the preprocess Job (Preprocessing)", () => {
    const { d, next } = step(pending());
    assert.deepEqual(created(d), ["Job/demo-preprocess-0"]);
    assert.equal(d.status.phase, "Preprocessing");
    assert.deepEqual(
      { ...d.status.stages?.preprocess },
      { phase: "Pending", attempt: 0, retries: 0, jobName: "demo-preprocess-0", startTime: NOW.toISOString(), active: 0, ready: 0 },
    );
    // Said as the next pass will say it once the cache shows the Job without pods, so that pass writes nothing.
    assert.equal(d.status.message, "preprocess attempt 0: 0/1 pod(s) ready (Job demo-preprocess-0)");
    assert.equal(cond(d.status, "Preprocessed")?.reason, "Pending");
    const seen = step(next, { jobs: [job("preprocess", 0)] });
    assert.equal(seen.d.statusChanged, false, "the Job seen without pods changes nothing");
    assert.equal(d.status.startTime, NOW.toISOString());
    assert.equal(d.status.specHash, specHash(validateSpec(ftj().obj.spec).spec!));
    assert.deepEqual(record(d.status, "preprocess", 0), { stage: "preprocess", attempt: 0, startTime: NOW.toISOString(), result: "Running" });
    assert.deepEqual(d.status.outputs, {
      claimName: "demo-output",
      outputDir: "/finetune/output/model",
      adapterPath: "model",
      mergedModelPath: "model/merged",
    });
    assert.deepEqual(eventReasons(d), [], "nor is Preprocessing");
  });

  it("a running preprocess Job is Running; its counts are copied", () => {
    const { d } = step(preprocessing(), { jobs: [job("preprocess", 0).active(1)], pods: [pod("preprocess", 0)] });
    assert.equal(d.status.phase, "Preprocessing");
    assert.equal(d.status.stages?.preprocess?.phase, "Running");
    assert.equal(d.status.stages?.preprocess?.active, 1);
    assert.equal(cond(d.status, "Preprocessed")?.status, "False");
    assert.equal(cond(d.status, "Preprocessed")?.reason, "Running");
    assert.deepEqual(d.actions, []);
  });

  it("preprocess Complete -> the train Job is created (Training)", () => {
    const { d } = step(preprocessing(), { jobs: [job("preprocess", 0).complete()] });
    assert.deepEqual(created(d), ["Job/demo-train-0"]);
    assert.equal(d.status.phase, "Training");
    assert.equal(d.status.stages?.preprocess?.phase, "Succeeded");
    assert.equal(record(d.status, "preprocess", 0)?.result, "Succeeded");
    assert.equal(cond(d.status, "Preprocessed")?.status, "True");
    assert.equal(d.status.attempt, 0);
    assert.equal(d.status.restarts, 0);
    assert.deepEqual(eventReasons(d), [], "a stage's end is status, not an Event");
    const train = createdJob(d, "demo-train-0")!;
    assert.equal(train.spec?.completionMode, "Indexed");
  });

  it("a 2-node train Job is rendered for 2 ranks", () => {
    const { d } = step(step(pending(ftj().nodes(2).gpus(8))).next, { jobs: [job("preprocess", 0).complete()] });
    const train = createdJob(d, "demo-train-0")!;
    assert.equal(train.spec?.completions, 2);
    assert.equal(train.spec?.parallelism, 2);
  });

  it("train Complete with an adapter -> the smoke-test Job is created (SmokeTesting)", () => {
    const { d } = step(trainRunning(), { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] });
    assert.deepEqual(created(d), ["Job/demo-smoke-0"]);
    assert.equal(d.status.phase, "SmokeTesting");
    assert.equal(cond(d.status, "Trained")?.status, "True");
    assert.deepEqual(eventReasons(d), [], "nor a new phase on the way (SmokeTesting)");
    const smoke = createdJob(d, "demo-smoke-0")!;
    assert.deepEqual(smoke.spec?.template.spec?.containers[0]?.command?.slice(3), [
      "axolotl",
      "inference",
      "/etc/finetune/config.yaml",
      "--lora-model-dir=/finetune/output/model",
    ]);
  });

  it("smoke test Complete with good answers -> status.smokeTest (truncated), SmokeTested=True, the merge Job (Merging)", () => {
    const { d } = step(smokeTesting(), {
      jobs: [...TRAINED, job("smoke", 0).complete()],
      pods: [pod("smoke", 0).succeeded(smokeSummary([{ prompt: "Say hi", answer: `Hi! ${"x".repeat(500)}`, stopped: true }]))],
    });
    assert.deepEqual(created(d), ["Job/demo-merge-0"]);
    assert.equal(d.status.phase, "Merging");
    assert.equal(cond(d.status, "SmokeTested")?.status, "True");
    assert.equal(d.status.smokeTest?.result, "Passed");
    assert.equal(d.status.smokeTest?.answersFile, "smoke-test/answers.json");
    assert.equal(d.status.smokeTest?.answers[0]?.prompt, "Say hi");
    assert.equal(d.status.smokeTest?.answers[0]?.answer.length, 200);
    const noisy = step(smokeTesting(), {
      jobs: [...TRAINED, job("smoke", 0).complete()],
      pods: [pod("smoke", 0).succeeded(smokeSummary([{ prompt: "p", answer: "a\u0000b\u001bc\nd", stopped: true }]))],
    }).d;
    assert.equal(noisy.status.smokeTest?.answers[0]?.answer, "a\ufffdb\ufffdc\nd", "control characters replaced");
  });

  it("every generation without EOS under Warn: SmokeTested=False with the eos_token hint and an Event, merged anyway", () => {
    const { d } = step(smokeTesting(), {
      jobs: [...TRAINED, job("smoke", 0).complete()],
      pods: [
        pod("smoke", 0).succeeded(
          smokeSummary([
            { prompt: "a", answer: "on and on", stopped: false },
            { prompt: "b", answer: "and on", stopped: false },
          ]),
        ),
      ],
    });
    assert.deepEqual(created(d), ["Job/demo-merge-0"]);
    assert.deepEqual([cond(d.status, "SmokeTested")?.status, cond(d.status, "SmokeTested")?.reason], ["False", "SmokeTestNoEOS"]);
    assert.equal(d.status.smokeTest?.result, "Warning");
    assert.match(d.status.smokeTest?.hint ?? "", /special_tokens\.eos_token/);
    assert.ok(eventReasons(d).includes("Warning/SmokeTestNoEOS"));
  });

  it("an empty answer under Fail: Failed before the merge, nothing merged", () => {
    const f = smokeTesting(ftj().spec({ smokeTest: { action: "Fail" } }));
    const { d, next } = step(f, {
      jobs: [...TRAINED, job("smoke", 0).complete()],
      pods: [pod("smoke", 0).succeeded(smokeSummary([{ prompt: "a", answer: "  ", stopped: true }]))],
    });
    assert.deepEqual(created(d), []);
    assert.equal(d.status.phase, "Failed");
    assert.equal(cond(d.status, "Failed")?.reason, "SmokeTestEmptyAnswer");
    assert.equal(d.status.stages?.smoke?.phase, "Failed");
    assert.equal(d.status.stages?.merge, undefined);
    assert.deepEqual(step(next, { jobs: [...TRAINED, job("smoke", 0).complete()] }).d.actions, []);
  });

  it("smokeTest.enabled: false goes from train straight to merge (SmokeTested False/Disabled)", () => {
    const f = ftj().spec({ smokeTest: { enabled: false } });
    const { d } = step(trainRunning(f), { jobs: TRAINED });
    assert.deepEqual(created(d), ["Job/demo-merge-0"]);
    assert.equal(cond(d.status, "SmokeTested")?.reason, "Disabled");
  });

  it("merge Complete -> Succeeded with outputs.mergedModelPath and completionTime", () => {
    const merging = step(smokeTesting(), {
      jobs: [...TRAINED, job("smoke", 0).complete()],
      pods: [pod("smoke", 0).succeeded(smokeSummary([{ prompt: "a", answer: "b", stopped: true }]))],
    }).next;
    const { d } = step(merging, { jobs: [...TRAINED, job("smoke", 0).complete(), job("merge", 0).complete()], now: at(60) });
    assert.equal(d.status.phase, "Succeeded");
    assert.equal(d.status.completionTime, at(60).toISOString());
    assert.equal(d.status.outputs?.mergedModelPath, "model/merged");
    assert.equal(d.status.outputs?.claimName, "demo-output");
    assert.equal(cond(d.status, "Succeeded")?.status, "True");
    assert.equal(cond(d.status, "Merged")?.status, "True");
    assert.match(d.status.message!, /model\/merged/);
    assert.deepEqual(d.actions, []);
    assert.ok(eventReasons(d).includes("Normal/Succeeded"));
  });

  it("without an adapter there is no merge (Merged NotApplicable) and no mergedModelPath", () => {
    const f = ftj().config(FULL);
    const running = trainRunning(f);
    assert.equal(cond(running.obj.status!, "Merged")?.status, "False");
    assert.equal(cond(running.obj.status!, "Merged")?.reason, "NotApplicable");
    const { d } = step(running, { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] });
    assert.equal(d.status.phase, "Succeeded");
    assert.deepEqual(created(d), []);
    assert.equal(d.status.outputs?.mergedModelPath, undefined);
    assert.equal(d.status.outputs?.adapterPath, "model");
    assert.equal(d.status.stages?.merge, undefined);
  });

  it("merge.enabled: false skips the merge of an adapter (Merged Disabled)", () => {
    const f = ftj().spec({ merge: { enabled: false }, smokeTest: { enabled: false } });
    const { d } = step(trainRunning(f), { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] });
    assert.equal(d.status.phase, "Succeeded");
    assert.equal(cond(d.status, "Merged")?.reason, "Disabled");
  });

  it("preprocess disabled: the first stage is training (Preprocessed True/Disabled)", () => {
    const { d } = step(pending(ftj().spec({ preprocess: { enabled: false } })));
    assert.deepEqual(created(d), ["Job/demo-train-0"]);
    assert.equal(d.status.phase, "Training");
    assert.equal(d.status.stages?.preprocess, undefined);
    assert.equal(cond(d.status, "Preprocessed")?.status, "True");
    assert.equal(cond(d.status, "Preprocessed")?.reason, "Disabled");
  });

  it("a Kueue-queued (suspended) Job is Pending with a queued message", () => {
    const f = ftj().spec({ scheduling: { queueName: "gpus" } });
    const { d } = step(training(f), { jobs: [job("preprocess", 0).complete(), job("train", 0).suspended()] });
    assert.equal(d.status.phase, "Training");
    assert.equal(d.status.stages?.train?.phase, "Pending");
    assert.match(d.status.message!, /queued/);
    assert.equal(cond(d.status, "Trained")?.reason, "Pending");
    assert.equal(d.statusChanged, false, "the pass that created the Job (rendered suspended for Kueue) said so already");
  });

  it("a running Job suspended by Kueue (preempted workload) shows no pods, not its last counts", () => {
    const f = trainRunning(ftj().spec({ scheduling: { queueName: "gpus" } }));
    assert.equal(f.obj.status?.stages?.train?.active, 1);
    const preempted = job("train", 0).suspended();
    preempted.obj.status = { active: 0, ready: 0 };
    const { d } = step(f, { jobs: [job("preprocess", 0).complete(), preempted] });
    assert.equal(d.status.stages?.train?.phase, "Pending");
    assert.equal(d.status.stages?.train?.active, 0);
    assert.equal(d.status.stages?.train?.ready, 0);
    assert.match(d.status.message!, /queued/);
  });

  it("a Job between its pods' exit and its Complete condition keeps its counts (no write about nothing)", () => {
    const f = trainRunning();
    const exited = job("train", 0);
    exited.obj.status = { active: 0, ready: 0 };
    const { d } = step(f, { jobs: [job("preprocess", 0).complete(), exited] });
    assert.equal(d.status.stages?.train?.phase, "Running");
    assert.equal(d.status.stages?.train?.active, 1);
  });

  it("the resume point from a finished rank's termination message is recorded on the attempt", () => {
    const running = trainRunning();
    const done = pod("train", 0).succeeded(
      JSON.stringify({ stage: "train", exitCode: 0, reason: "Completed", resumeFrom: "/finetune/output/model/checkpoint-200", tail: [] }),
    );
    const { d } = step(running, { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()], pods: [done] });
    assert.equal(record(d.status, "train", 0)?.resumedFrom, "/finetune/output/model/checkpoint-200");
    assert.equal(record(d.status, "train", 0)?.result, "Succeeded");
  });
});

// ---------------------------------------------------------------------------
// Failures and restarts
// ---------------------------------------------------------------------------

describe("decide: failures and restarts", () => {
  const jobsWith = (...train: JobBuilder[]) => [job("preprocess", 0).complete(), ...train];

  it("a failed train Job (rank exit 1) ends the attempt: recorded, counted, Job deleted, lastFailure set, backoff requeued once it is gone", () => {
    const { d, next } = step(trainRunning(ftj().nodes(2), 2), {
      jobs: jobsWith(job("train", 0, 2).failed()),
      pods: [pod("train", 0, 0).failed(1, TRACEBACK), pod("train", 0, 1).failed(1, "NCCL error: remote process exited")],
    });
    const st = d.status;
    const rec = record(st, "train", 0)!;
    assert.equal(rec.result, "Failed");
    assert.equal(rec.endTime, NOW.toISOString());
    assert.equal(rec.counted, true);
    assert.equal(st.restarts, 1);
    assert.equal(st.stages?.train?.retries, 1);
    assert.equal(st.attempt, 0, "the next attempt starts after the backoff");
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.deepEqual(created(d), []);
    assert.match(st.message!, /waiting for train attempt 0 to be torn down \(Job being deleted\)/);
    assert.equal(d.requeueAfterMs, undefined, "the Job's deletion wakes the job up");
    // The Job gone one second later: the rest of the backoff.
    const gone = step(next, { jobs: jobsWith(), now: at(1) }).d;
    assert.deepEqual(created(gone), []);
    assert.equal(gone.requeueAfterMs, SETTINGS.restartBackoffBaseMs - 1000);
    assert.equal(st.phase, "Training");
    assert.equal(st.lastFailure?.stage, "train");
    assert.equal(st.lastFailure?.attempt, 0);
    assert.equal(st.lastFailure?.exitCode, 1);
    assert.equal(st.lastFailure?.reason, "TrainerError");
    assert.equal(st.lastFailure?.permanent, false);
    assert.equal(st.lastFailure?.time, NOW.toISOString());
    assert.match(st.lastFailure!.message, /RuntimeError: something broke/);
    assert.ok(eventReasons(d).includes("Warning/TrainFailed"));
  });

  it("pods gone and backoff elapsed -> attempt 1 is created", () => {
    // Two nodes: the new attempt's ranks must meet at the new attempt's rank 0.
    const failed = step(trainRunning(ftj().nodes(2)), { jobs: jobsWith(job("train", 0, 2).failed()), pods: [pod("train", 0).failed(1, TRACEBACK)] }).next;
    const { d } = step(failed, { jobs: jobsWith(), pods: [], now: at(11) });
    assert.deepEqual(created(d), ["Job/demo-train-1"]);
    assert.equal(d.status.attempt, 1);
    assert.equal(d.status.restarts, 1);
    assert.equal(d.status.stages?.train?.attempt, 1);
    assert.equal(d.status.stages?.train?.jobName, "demo-train-1");
    assert.equal(record(d.status, "train", 1)?.result, "Running");
    assert.equal(record(d.status, "train", 0)?.result, "Failed");
    assert.ok(eventReasons(d).includes("Normal/Restarting"));
    assert.equal(d.requeueAfterMs, undefined);
    const train1 = createdJob(d, "demo-train-1")!;
    assert.equal(train1.metadata?.labels?.[LABEL_ATTEMPT], "1");
    assert.ok(train1.spec?.template.spec?.containers[0]?.command?.some((a) => a.startsWith("--master_addr=demo-train-1-0.")));
  });

  it("a rank of the ended attempt still running -> waits (no new Job)", () => {
    const failed = step(trainRunning(ftj().nodes(2), 2), {
      jobs: jobsWith(job("train", 0, 2).failed()),
      pods: [pod("train", 0, 0).failed(1, TRACEBACK), pod("train", 0, 1)],
    }).next;
    const { d } = step(failed, { jobs: jobsWith(job("train", 0, 2).failed().deleting()), pods: [pod("train", 0, 1)], now: at(60) });
    assert.deepEqual(created(d), []);
    assert.deepEqual(deleted(d), [], "the Job is already being deleted");
    assert.match(d.status.message!, /torn down \(Job being deleted, 1 pod running\)/);
    assert.equal(d.status.attempt, 0);
    // A pod with no Job (deleted by an operator that did not wait for the pods) still holds the next attempt back.
    const orphan = step(failed, { jobs: jobsWith(), pods: [pod("train", 0, 1)], now: at(60) }).d;
    assert.deepEqual(created(orphan), []);
    assert.match(orphan.status.message!, /torn down \(1 pod running\)/);
  });

  it("a failed Job whose pods the cache has not seen yet still holds the next attempt back until the Job is gone", () => {
    // The pod watch lags behind the Job watch (e.g. right after a reconnect): the failed Job is seen, its pods are not.
    const failing = job("train", 0, 2);
    failing.obj.status = { active: 1, failed: 1, conditions: [{ type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded" }] };
    const { d, next } = step(trainRunning(ftj().nodes(2), 2), { jobs: jobsWith(failing), pods: [] });
    assert.equal(record(d.status, "train", 0)?.result, "Failed");
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.deepEqual(created(d), [], "no attempt 1 while attempt 0's Job exists");
    assert.equal(step(next, { jobs: jobsWith(job("train", 0, 2).deleting()), now: at(60) }).d.status.attempt, 0);
    assert.deepEqual(created(step(next, { jobs: jobsWith(), now: at(60) }).d), ["Job/demo-train-1"]);
  });

  it("a Job with FailureTarget (pods still terminating) ends the attempt but waits for the ranks to stop", () => {
    const failing = job("train", 0, 2);
    failing.obj.status = {
      active: 1,
      failed: 1,
      conditions: [{ type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit" }],
    };
    const { d, next } = step(trainRunning(ftj().nodes(2), 2), { jobs: jobsWith(failing), pods: [pod("train", 0, 0).failed(1, TRACEBACK), pod("train", 0, 1)] });
    assert.equal(d.status.restarts, 1);
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.deepEqual(created(d), []);
    assert.match(d.status.message!, /torn down \(Job being deleted, 1 pod running\)/);
    // Even after the backoff, nothing starts while the Job is still being torn down.
    const later = step(next, { jobs: jobsWith(job("train", 0, 2).deleting()), now: at(60) }).d;
    assert.deepEqual(created(later), []);
    assert.equal(step(next, { jobs: jobsWith(), now: at(60) }).d.status.attempt, 1);
  });

  it("backoff not elapsed -> requeueAfterMs for the rest of it", () => {
    const failed = step(trainRunning(), { jobs: jobsWith(job("train", 0).failed()), pods: [pod("train", 0).failed(1)] }).next;
    const { d } = step(failed, { jobs: jobsWith(), pods: [], now: at(4) });
    assert.deepEqual(d.actions, []);
    assert.equal(d.requeueAfterMs, SETTINGS.restartBackoffBaseMs - 4000);
    assert.match(d.status.message!, /backoff/);
  });

  it("the backoff doubles per counted failure and is capped", () => {
    const settings = { restartBackoffBaseMs: 1000, restartBackoffMaxMs: 3000 };
    let f = trainRunning(ftj().spec({ maxRestarts: 10 }));
    const delays: number[] = [];
    let now = 0;
    for (let attempt = 0; attempt < 4; attempt++) {
      const ended = step(f, { jobs: jobsWith(job("train", attempt).failed()), pods: [pod("train", attempt).failed(1)], now: at(now), settings });
      // The Job is gone 0.1 s after the failure; the rest of the backoff is requeued from there.
      now += 0.1;
      const gone = step(ended.next, { jobs: jobsWith(), now: at(now), settings });
      assert.equal(typeof gone.d.requeueAfterMs, "number", gone.d.status.message);
      delays.push(gone.d.requeueAfterMs! + 100);
      now += gone.d.requeueAfterMs! / 1000;
      f = step(gone.next, { jobs: jobsWith(), now: at(now), settings }).next;
      assert.equal(f.obj.status?.attempt, attempt + 1);
    }
    assert.deepEqual(delays, [1000, 2000, 3000, 3000]);
  });

  const disruptions: { name: string; jobs: () => JobBuilder[]; pods: () => PodBuilder[] }[] = [
    {
      name: "a pod with the DisruptionTarget condition",
      jobs: () =>
        jobsWith(job("train", 0, 2).failed("PodFailurePolicy", "Pod ml/demo-train-0-1 has condition DisruptionTarget matching FailJob rule at index 0")),
      pods: () => [pod("train", 0, 0).failed(1, "NCCL watchdog"), pod("train", 0, 1).disrupted()],
    },
    {
      name: "a Job failed by the PodFailurePolicy DisruptionTarget rule (pods gone)",
      jobs: () =>
        jobsWith(job("train", 0, 2).failed("PodFailurePolicy", "Pod ml/demo-train-0-1 has condition DisruptionTarget matching FailJob rule at index 0")),
      pods: () => [],
    },
    {
      name: "an evicted pod",
      jobs: () => jobsWith(job("train", 0, 2).failed()),
      pods: () => {
        const p = pod("train", 0, 1).failed(137);
        p.obj.status!.reason = "Evicted";
        return [p];
      },
    },
  ];
  for (const c of disruptions) {
    it(`disruption is not counted: ${c.name}`, () => {
      const { d, next } = step(trainRunning(ftj().nodes(2), 2), { jobs: c.jobs(), pods: c.pods() });
      assert.equal(d.status.restarts, 0);
      assert.equal(d.status.stages?.train?.retries, 0);
      assert.equal(d.status.disruptions, 1);
      const rec = record(d.status, "train", 0)!;
      assert.equal(rec.result, "Disrupted");
      assert.equal(rec.counted, false);
      assert.equal(d.status.lastFailure?.reason, "Disrupted");
      assert.ok(eventReasons(d).includes("Warning/Disrupted"));
      // No backoff for a disruption: the gang restarts as soon as the old Job and its pods are gone.
      assert.deepEqual(deleted(d), ["demo-train-0"]);
      assert.deepEqual(created(d), []);
      const gone = step(next, { jobs: jobsWith() }).d;
      assert.deepEqual(created(gone), ["Job/demo-train-1"]);
      assert.equal(gone.status.attempt, 1);
    });
  }

  it("retries exhausted -> Failed with BackoffLimitExceeded and the hint in the message", () => {
    const f = ftj().spec({ maxRestarts: 1 });
    const oom = launcherJson(["step 10", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]);
    // Attempt 0 fails (restart 1 of 1), attempt 1 starts, then fails too.
    const first = step(trainRunning(f), { jobs: jobsWith(job("train", 0).failed()), pods: [pod("train", 0).failed(1, oom)] }).next;
    const second = step(first, { jobs: jobsWith(), now: at(30) }).next;
    assert.equal(second.obj.status?.attempt, 1);
    const { d } = step(second, { jobs: jobsWith(job("train", 1).failed()), pods: [pod("train", 1).failed(1, oom)], now: at(90) });
    const st = d.status;
    assert.equal(st.phase, "Failed");
    assert.equal(cond(st, "Failed")?.status, "True");
    assert.equal(cond(st, "Failed")?.reason, "BackoffLimitExceeded");
    assert.equal(cond(st, "Succeeded")?.status, "False");
    assert.equal(cond(st, "Trained")?.reason, "StageFailed");
    assert.match(st.message!, /retry limit reached \(1\)/);
    assert.match(st.message!, /Hint: GPU memory ran out/);
    assert.match(cond(st, "Failed")!.message, /Hint: /);
    assert.equal(st.lastFailure?.reason, "GPUOutOfMemory");
    assert.equal(st.lastFailure?.attempt, 1);
    assert.equal(st.restarts, 1, "one restart happened; the last failure ended the job");
    assert.equal(st.stages?.train?.phase, "Failed");
    assert.equal(st.completionTime, at(90).toISOString());
    assert.deepEqual(d.actions, [], "a Failed Job with no active pods is kept for kubectl logs");
    assert.ok(d.events.some((e) => e.type === "Warning" && e.reason === "Failed"));
  });

  it("maxRestarts 0 fails on the first counted failure", () => {
    const { d } = step(trainRunning(ftj().spec({ maxRestarts: 0 })), { jobs: jobsWith(job("train", 0).failed()), pods: [pod("train", 0).failed(1)] });
    assert.equal(d.status.phase, "Failed");
    assert.equal(cond(d.status, "Failed")?.reason, "BackoffLimitExceeded");
    assert.equal(d.status.restarts, 0);
  });

  it("a failed preprocess is retried under auxStageRetries, not maxRestarts", () => {
    const { d } = step(preprocessing(ftj().spec({ maxRestarts: 0 })), { jobs: [job("preprocess", 0).failed()], pods: [pod("preprocess", 0).failed(1)] });
    assert.equal(d.status.phase, "Preprocessing");
    assert.equal(d.status.stages?.preprocess?.retries, 1);
    assert.equal(d.status.restarts, undefined, "restarts count training only");
    assert.deepEqual(deleted(d), ["demo-preprocess-0"]);
  });

  const permanent: { name: string; spec?: Partial<FineTuneJobSpecInput>; pod: () => PodBuilder; reason: string; hint: RegExp }[] = [
    {
      name: "config rejected (in the launcher JSON tail)",
      pod: () =>
        pod("train", 0).failed(
          1,
          launcherJson([
            "Loading config",
            "pydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig",
            "micro_batch_size",
            "  Input should be greater than 0",
          ]),
        ),
      reason: "ConfigRejected",
      hint: /Axolotl rejected the config/,
    },
    {
      name: "an exit code listed in spec.permanentExitCodes",
      spec: { permanentExitCodes: [42] },
      pod: () => pod("train", 0).failed(42, "bad input\n"),
      reason: "PermanentExitCode",
      hint: /spec\.permanentExitCodes/,
    },
  ];
  for (const c of permanent) {
    it(`permanent failure fails at once: ${c.name}`, () => {
      const { d } = step(trainRunning(ftj().spec(c.spec ?? {})), { jobs: jobsWith(job("train", 0).failed()), pods: [c.pod()] });
      assert.equal(d.status.phase, "Failed");
      assert.equal(cond(d.status, "Failed")?.reason, "PermanentFailure");
      assert.equal(d.status.lastFailure?.reason, c.reason);
      assert.equal(d.status.lastFailure?.permanent, true);
      assert.match(d.status.lastFailure!.hint!, c.hint);
      assert.match(d.status.message!, /a retry cannot fix this/);
      assert.deepEqual(created(d), []);
      assert.equal(d.requeueAfterMs, undefined);
      assert.equal(d.status.restarts, 0);
    });
  }

  it("ImagePullBackOff beyond the grace -> permanent ImagePullFailed, and the running Job is deleted", () => {
    const stuck = pod("train", 0).waiting("ImagePullBackOff", "Back-off pulling image", SETTINGS.imagePullGraceMs / 1000 + 1);
    const { d } = step(trainRunning(), { jobs: jobsWith(job("train", 0).active(1, 0)), pods: [stuck] });
    assert.equal(d.status.phase, "Failed");
    assert.equal(cond(d.status, "Failed")?.reason, "PermanentFailure");
    assert.equal(d.status.lastFailure?.reason, "ImagePullFailed");
    assert.match(d.status.lastFailure!.hint!, /axolotlai\/axolotl:0\.18\.0/);
    assert.deepEqual(deleted(d), ["demo-train-0"]);
  });

  it("ImagePullBackOff within the grace -> waits and rechecks when the grace ends", () => {
    const stuck = pod("train", 0).waiting("ImagePullBackOff", "Back-off pulling image", 60);
    const { d } = step(trainRunning(), { jobs: jobsWith(job("train", 0).active(1, 0)), pods: [stuck] });
    assert.equal(d.status.phase, "Training");
    assert.deepEqual(d.actions, []);
    assert.equal(d.requeueAfterMs, SETTINGS.imagePullGraceMs - 60_000);
  });

  it("a leftover Job of an earlier attempt is deleted", () => {
    const failed = step(trainRunning(), { jobs: jobsWith(job("train", 0).failed()), pods: [pod("train", 0).failed(1)] }).next;
    const restarted = step(failed, { jobs: jobsWith(), now: at(30) }).next;
    const { d } = step(restarted, { jobs: jobsWith(job("train", 0).failed(), job("train", 1).active()), now: at(31) });
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.equal(d.status.stages?.train?.phase, "Running");
  });

  it("the current attempt's Job is not created while a leftover of an earlier attempt is still there", () => {
    // Attempt 1 recorded (e.g. by a replica that died before its Job create went through) while attempt 0's Job is back
    // in a stale cache or was never deleted: the new gang waits for the old one's Job and pods to be gone.
    const failed = step(trainRunning(), { jobs: jobsWith(job("train", 0).failed()), pods: [pod("train", 0).failed(1)] }).next;
    const restarted = step(failed, { jobs: jobsWith(), now: at(30) }).next;
    assert.equal(restarted.obj.status?.stages?.train?.attempt, 1);
    const { d } = step(restarted, { jobs: jobsWith(job("train", 0).active()), pods: [pod("train", 0)], now: at(31) });
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.deepEqual(created(d), []);
    assert.match(d.status.message!, /waiting for earlier train attempts to be torn down \(Job being deleted, 1 pod running\) before attempt 1/);
    assert.deepEqual(created(step(restarted, { jobs: jobsWith(), now: at(32) }).d), ["Job/demo-train-1"]);
  });
});

// ---------------------------------------------------------------------------
// Suspend, TTL, spec drift
// ---------------------------------------------------------------------------

describe("decide: suspend, TTL and spec drift", () => {
  it("suspend deletes the running Job and sets Suspended", () => {
    const running = trainRunning();
    const { d } = step(running.spec({ suspend: true }), { jobs: [job("preprocess", 0).complete(), job("train", 0).active()], pods: [pod("train", 0)] });
    assert.equal(d.status.phase, "Suspended");
    assert.equal(cond(d.status, "Suspended")?.status, "True");
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.deepEqual(created(d), []);
    const rec = record(d.status, "train", 0)!;
    assert.equal(rec.result, "Suspended");
    assert.equal(rec.counted, false);
    assert.equal(d.status.restarts, 0);
  });

  it("suspend before anything ran creates nothing", () => {
    const { d } = step(ftj().spec({ suspend: true }), { base: false });
    assert.equal(d.status.phase, "Suspended");
    assert.deepEqual(d.actions, []);
  });

  it("unsuspend starts the next attempt (not counted, no backoff)", () => {
    const suspended = step(trainRunning().spec({ suspend: true }), {
      jobs: [job("preprocess", 0).complete(), job("train", 0).active()],
      pods: [pod("train", 0)],
    }).next;
    const { d } = step(suspended.spec({ suspend: false }), { jobs: [job("preprocess", 0).complete()], now: at(1) });
    assert.equal(cond(d.status, "Suspended")?.status, "False");
    assert.equal(cond(d.status, "Suspended")?.reason, "Resumed");
    assert.deepEqual(created(d), ["Job/demo-train-1"]);
    assert.equal(d.status.phase, "Training");
    assert.equal(d.status.attempt, 1);
    assert.equal(d.status.restarts, 0);
  });

  it("unsuspend waits for the pods of the suspended attempt to stop", () => {
    const suspended = step(trainRunning().spec({ suspend: true }), {
      jobs: [job("preprocess", 0).complete(), job("train", 0).active()],
      pods: [pod("train", 0)],
    }).next;
    const { d } = step(suspended.spec({ suspend: false }), {
      jobs: [job("preprocess", 0).complete(), job("train", 0).active().deleting()],
      pods: [pod("train", 0)],
    });
    assert.deepEqual(created(d), []);
    assert.match(d.status.message!, /waiting/);
  });

  const finished: { name: string; make: () => FtjBuilder }[] = [
    {
      name: "Succeeded",
      make: () =>
        step(trainRunning(ftj().config(FULL).spec({ ttlSecondsAfterFinished: 60 })), { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] })
          .next,
    },
    {
      name: "Failed",
      make: () =>
        step(trainRunning(ftj().spec({ ttlSecondsAfterFinished: 60, maxRestarts: 0 })), {
          jobs: [job("preprocess", 0).complete(), job("train", 0).failed()],
          pods: [pod("train", 0).failed(1)],
        }).next,
    },
  ];
  for (const c of finished) {
    it(`TTL (${c.name}): requeue before completionTime+ttl, deleteFineTuneJob after`, () => {
      const done = c.make();
      assert.equal(done.obj.status?.phase, c.name);
      assert.equal(done.obj.status?.completionTime, NOW.toISOString());
      const early = step(done, { now: at(45) }).d;
      assert.deepEqual(early.actions, []);
      assert.equal(early.requeueAfterMs, 15_000);
      assert.equal(early.statusChanged, false);
      const late = step(done, { now: at(60) }).d;
      assert.deepEqual(
        late.actions.map((a) => a.kind),
        ["deleteFineTuneJob"],
      );
      assert.equal(late.requeueAfterMs, undefined);
    });
  }

  it("no TTL: a finished job is left alone", () => {
    const done = step(trainRunning(ftj().config(FULL)), { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] }).next;
    const { d } = step(done, { now: at(86_400 * 365) });
    assert.deepEqual(d.actions, []);
    assert.equal(d.requeueAfterMs, undefined);
    assert.equal(d.statusChanged, false);
  });

  it("spec drift after start -> SpecChangeRejected (reported once), the run continues", () => {
    const running = trainRunning();
    const jobs = [job("preprocess", 0).complete(), job("train", 0).active()];
    const changed = running.generation(2).spec({ image: "axolotlai/axolotl:0.19.0" });
    const { d, next } = step(changed, { jobs, pods: [pod("train", 0)] });
    assert.equal(cond(d.status, "SpecChangeRejected")?.status, "True");
    assert.ok(eventReasons(d).includes("Warning/SpecChangeRejected"));
    assert.equal(d.status.phase, "Training");
    assert.deepEqual(d.actions, []);
    assert.equal(d.status.specHash, running.obj.status?.specHash, "the recorded hash is the one the run started with");
    const again = step(next, { jobs, pods: [pod("train", 0)] }).d;
    assert.ok(!eventReasons(again).includes("Warning/SpecChangeRejected"));
    // Reverting the change clears the condition.
    const reverted = step(next.generation(3).spec({ image: undefined }), { jobs, pods: [pod("train", 0)] }).d;
    assert.equal(cond(reverted.status, "SpecChangeRejected")?.status, "False");
  });

  it("a running stage stays Running between its pods' exit and the Job's Complete condition", () => {
    const running = trainRunning();
    assert.equal(running.obj.status?.stages?.train?.phase, "Running");
    const { d } = step(running, { jobs: [job("preprocess", 0).complete(), job("train", 0)], pods: [pod("train", 0)] });
    assert.equal(d.status.stages?.train?.phase, "Running", "no active pod and no condition yet is not a return to Pending");
    assert.equal(
      d.status.stages?.train?.active,
      running.obj.status?.stages?.train?.active,
      "the counts as they were: no write for the moment before the condition",
    );
    assert.equal(d.status.message, running.obj.status?.message);
    assert.equal(d.statusChanged, false);
  });

  it("a restart after a rejected spec change runs with the image and shape the job started with", () => {
    const running = trainRunning();
    assert.deepEqual(running.obj.status?.startedWith, { image: "axolotlai/axolotl:0.18.0", nodes: 1, gpusPerNode: 1 });
    const changed = running.generation(2).spec({ image: "axolotlai/axolotl:0.19.0", gpusPerNode: 4 });
    const ended = step(changed, { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).disrupted()] });
    assert.equal(cond(ended.d.status, "SpecChangeRejected")?.status, "True");
    const { d } = step(ended.next, { jobs: [job("preprocess", 0).complete()] });
    const restarted = createdJob(d, "demo-train-1")!;
    assert.equal(restarted.spec?.template.spec?.containers[0]?.image, "axolotlai/axolotl:0.18.0");
    assert.equal(restarted.spec?.template.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"], "1", "the gang keeps its GPU count");
    assert.deepEqual(d.status.startedWith, running.obj.status?.startedWith, "recorded once, never rewritten");
  });

  it("an invalid edit of a running job is reported, and the run continues untouched", () => {
    const running = trainRunning();
    const { d } = step(running.generation(2).config({ ...LORA, adapter: "qlora" }), {
      jobs: [job("preprocess", 0).complete(), job("train", 0).active()],
      pods: [pod("train", 0)],
    });
    assert.equal(d.status.phase, "Training");
    assert.equal(d.actions.length, 0, JSON.stringify(d.actions));
    assert.equal(cond(d.status, "Validated")?.status, "False");
    assert.ok(d.events.some((e) => e.reason === "InvalidSpec" && /continues unchanged/.test(e.message)));
  });

  it("changes outside the bound parts (e.g. maxRestarts) are not drift", () => {
    const running = trainRunning();
    const { d } = step(running.generation(2).spec({ maxRestarts: 7 }), { jobs: [job("preprocess", 0).complete(), job("train", 0).active()] });
    assert.equal(cond(d.status, "SpecChangeRejected"), undefined);
  });
});

// ---------------------------------------------------------------------------
// Idempotence and conditions
// ---------------------------------------------------------------------------

describe("decide: idempotence", () => {
  const scenarios: { name: string; f: () => FtjBuilder; opts: ObserveOptions }[] = [
    { name: "new job, nothing observed", f: () => ftj(), opts: { base: false } },
    { name: "base objects observed", f: () => pending(), opts: {} },
    { name: "invalid spec", f: () => ftj().nodes(0), opts: { base: false } },
    { name: "preprocess running", f: () => preprocessing(), opts: { jobs: [job("preprocess", 0).active()], pods: [pod("preprocess", 0)] } },
    { name: "preprocess complete", f: () => preprocessing(), opts: { jobs: [job("preprocess", 0).complete()] } },
    {
      name: "train running on 2 nodes",
      f: () => training(ftj().nodes(2)),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0, 2).active()], pods: ranks("train", 0, 2) },
    },
    {
      name: "train queued by Kueue",
      f: () => training(ftj().spec({ scheduling: { queueName: "q" } })),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).suspended()] },
    },
    {
      name: "train failed (backoff)",
      f: () => trainRunning(),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).failed(1, TRACEBACK)] },
    },
    {
      name: "train failed, a rank still running",
      f: () => trainRunning(ftj().nodes(2), 2),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0, 2).failed()], pods: [pod("train", 0, 0).failed(1), pod("train", 0, 1)] },
    },
    {
      name: "train disrupted (restart at once)",
      f: () => trainRunning(),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).disrupted()] },
    },
    {
      name: "retries exhausted",
      f: () => trainRunning(ftj().spec({ maxRestarts: 0 })),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).failed(1)] },
    },
    {
      name: "image pull stuck",
      f: () => trainRunning(),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).active(1, 0)], pods: [pod("train", 0).waiting("ImagePullBackOff", "", 3600)] },
    },
    { name: "train complete -> merge", f: () => trainRunning(), opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] } },
    {
      name: "merge complete -> Succeeded",
      f: () => trainRunning(),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).complete(), job("merge", 0).complete()] },
    },
    {
      name: "suspend",
      f: () => trainRunning().spec({ suspend: true }),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).active()], pods: [pod("train", 0)] },
    },
    {
      name: "spec drift",
      f: () => trainRunning().generation(2).spec({ image: "other:1" }),
      opts: { jobs: [job("preprocess", 0).complete(), job("train", 0).active()] },
    },
  ];

  for (const c of scenarios) {
    it(`decide() on its own output is a fixed point: ${c.name}`, () => {
      const first = step(c.f(), c.opts);
      const second = step(first.next, c.opts);
      assert.equal(second.d.statusChanged, false, "status changed on the second pass");
      assert.deepEqual(second.d.status, first.d.status);
      assert.deepEqual(second.d.events, [], "no repeated events");
      // The only actions allowed again are the same idempotent ones (deterministic names: AlreadyExists / NotFound).
      const firstActions = new Set(
        first.d.actions.map((a) =>
          JSON.stringify(a.kind === "create" ? ["create", a.object.kind, a.object.metadata?.name] : a.kind === "delete" ? ["delete", a.name] : [a.kind]),
        ),
      );
      for (const a of second.d.actions) {
        const key = JSON.stringify(
          a.kind === "create" ? ["create", a.object.kind, a.object.metadata?.name] : a.kind === "delete" ? ["delete", a.name] : [a.kind],
        );
        assert.ok(firstActions.has(key), `new action on the second pass: ${key}`);
      }
      assert.equal(second.d.requeueAfterMs, first.d.requeueAfterMs);
      // And a third pass changes nothing either.
      assert.equal(step(second.next, c.opts).d.statusChanged, false);
    });
  }

  it("a failure is counted once even when observed again after a crash before acting", () => {
    const running = trainRunning();
    const opts = { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).failed(1)] };
    let f = running;
    for (let i = 0; i < 3; i++) f = step(f, { ...opts, now: at(i) }).next;
    assert.equal(f.obj.status?.restarts, 1);
    assert.equal(f.obj.status?.attempts?.filter((a) => a.stage === "train").length, 1);
  });

  it("decide() does not mutate its input", () => {
    const obs = observe(trainRunning(), { jobs: [job("preprocess", 0).complete(), job("train", 0).failed()], pods: [pod("train", 0).failed(1)] });
    const copy = structuredClone(obs);
    decide(obs);
    assert.deepEqual(obs, copy);
  });
});

describe("decide: conditions", () => {
  it("lastTransitionTime stays while the status does not flip, and moves when it does", () => {
    const t = training();
    const pendingPass = step(t, { jobs: [job("preprocess", 0).complete(), job("train", 0)], now: at(10) });
    const trained0 = cond(pendingPass.d.status, "Trained")!;
    assert.equal(trained0.status, "False");
    assert.equal(trained0.reason, "Pending");
    assert.equal(trained0.lastTransitionTime, NOW.toISOString(), "False since the pass that created the train Job");

    const runningPass = step(pendingPass.next, { jobs: [job("preprocess", 0).complete(), job("train", 0).active()], now: at(20) });
    const trained1 = cond(runningPass.d.status, "Trained")!;
    assert.equal(trained1.reason, "Running");
    assert.equal(trained1.lastTransitionTime, NOW.toISOString(), "reason changed, status did not");
    assert.equal(runningPass.d.statusChanged, true);

    const donePass = step(runningPass.next, { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()], now: at(30) });
    const trained2 = cond(donePass.d.status, "Trained")!;
    assert.equal(trained2.status, "True");
    assert.equal(trained2.lastTransitionTime, at(30).toISOString());

    // Validated was set on the first pass and never flipped.
    assert.equal(cond(donePass.d.status, "Validated")?.lastTransitionTime, NOW.toISOString());
  });

  it("conditions keep a stable order", () => {
    const { d } = step(trainRunning(), { jobs: [job("preprocess", 0).complete(), job("train", 0).complete()] });
    const order = d.status.conditions!.map((c) => c.type);
    const declared = ["Validated", "Preprocessed", "Trained", "SmokeTested", "Merged", "Succeeded", "Failed", "Suspended", "SpecChangeRejected"];
    assert.deepEqual(
      order,
      declared.filter((t) => order.includes(t)),
    );
  });

  it("every condition carries the generation it was computed for", () => {
    const { d } = step(trainRunning(), { jobs: [job("preprocess", 0).complete(), job("train", 0).active()] });
    for (const c of d.status.conditions!) assert.equal(c.observedGeneration, 1, c.type);
  });
});

/** A pod's PodScheduled condition as the scheduler writes it, `ms` before NOW. */
function unschedulable(message: string, ms: number) {
  return [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastTransitionTime: new Date(NOW.getTime() - ms) }];
}

describe("decide: missing references and unschedulable pods", () => {
  const missingConfig = [{ kind: "ConfigMap" as const, name: "nope", path: "spec.configFrom.configMapKeyRef.name" }];

  it("a missing ConfigMap means waiting (Pending, ReferencesResolved=False ConfigNotFound, an Event, a requeue), never Failed", () => {
    const obs = { ...observe(ftj(), { base: false }), missing: missingConfig };
    const d = decide(obs);
    assert.equal(d.status.phase, "Pending");
    assert.match(d.status.message ?? "", /ConfigMap nope \(spec\.configFrom\.configMapKeyRef\.name\) not found in namespace ml/);
    assert.equal(cond(d.status, "ReferencesResolved")?.reason, "ConfigNotFound");
    assert.equal(cond(d.status, "Validated"), undefined, "validated once the config can be read");
    assert.equal(cond(d.status, "Failed"), undefined);
    assert.deepEqual(d.actions, []);
    assert.ok(eventReasons(d).includes("Warning/ConfigNotFound"));
    assert.equal(d.requeueAfterMs, 10_000);
    // Repeating the same observation writes nothing and emits no second Event.
    const again = decide({ ...observe(ftj().status(d.status), { base: false }), missing: missingConfig });
    assert.equal(again.statusChanged, false);
    assert.deepEqual(eventReasons(again), []);
  });

  it("once the ConfigMap exists the job validates and proceeds", () => {
    const waiting = decide({ ...observe(ftj(), { base: false }), missing: missingConfig });
    const d = decide(observe(ftj().status(waiting.status), { base: false }));
    assert.equal(cond(d.status, "ReferencesResolved")?.status, "True");
    assert.equal(cond(d.status, "Validated")?.status, "True");
    assert.ok(created(d).length > 0, "base objects requested");
    assert.ok(eventReasons(d).includes("Normal/ReferencesFound"));
  });

  it("an invalid spec still fails at once, missing references or not", () => {
    const d = decide({ ...observe(ftj().spec({ nodes: 0 } as never)), missing: missingConfig });
    assert.equal(d.status.phase, "Failed");
  });

  it("a missing existingClaim waits with ClaimNotFound", () => {
    const d = decide({
      ...observe(ftj(), { base: false }),
      missing: [{ kind: "PersistentVolumeClaim", name: "data", path: "spec.storage.output.existingClaim" }],
    });
    assert.equal(cond(d.status, "ReferencesResolved")?.reason, "ClaimNotFound");
    assert.equal(d.status.phase, "Pending");
  });

  it("the scheduler's reason for a pod unschedulable past the grace period goes into status and one Event", () => {
    const t = step(training(ftj().spec({ preprocess: { enabled: false } } as never))).next;
    const stuck = pod("train", 0).build();
    stuck.spec!.nodeName = undefined as never;
    const unschedulableSince = (ms: number) => unschedulable("0/4 nodes are available: 4 Insufficient nvidia.com/gpu.", ms);
    // Within the grace period (a claim still binding, an autoscaler at work): nothing yet, a look when it ends.
    stuck.status = { phase: "Pending", conditions: unschedulableSince(UNSCHEDULABLE_GRACE_MS - 5_000) };
    const early = decide(observe(t, { jobs: [job("train", 0).active(1, 0)], pods: [stuck] }));
    assert.equal(cond(early.status, "PodsScheduled"), undefined);
    assert.deepEqual(eventReasons(early), []);
    assert.ok(early.requeueAfterMs !== undefined && early.requeueAfterMs <= 5_000, `requeue ${early.requeueAfterMs}`);
    stuck.status = { phase: "Pending", conditions: unschedulableSince(UNSCHEDULABLE_GRACE_MS) };
    const d = decide(observe(t, { jobs: [job("train", 0).active(1, 0)], pods: [stuck] }));
    assert.equal(cond(d.status, "PodsScheduled")?.status, "False");
    assert.match(cond(d.status, "PodsScheduled")?.message ?? "", /Insufficient nvidia\.com\/gpu/);
    assert.match(d.status.message ?? "", /cannot be scheduled: 0\/4 nodes are available/);
    assert.ok(eventReasons(d).includes("Warning/Unschedulable"));
    const t2 = new FtjBuilder(NAME);
    Object.assign(t2.obj, structuredClone(t.obj));
    t2.status(d.status);
    const again = decide(observe(t2, { jobs: [job("train", 0).active(1, 0)], pods: [stuck] }));
    assert.equal(again.statusChanged, false);
    assert.ok(!eventReasons(again).includes("Warning/Unschedulable"));
    const t3 = new FtjBuilder(NAME);
    Object.assign(t3.obj, structuredClone(t.obj));
    t3.status(d.status);
    const scheduled = decide(observe(t3, { jobs: [job("train", 0).active()], pods: [pod("train", 0)] }));
    assert.equal(cond(scheduled.status, "PodsScheduled")?.status, "True");
  });
});

describe("decide: pods waiting for their claim to bind", () => {
  it("are reported only after UNBOUND_CLAIM_GRACE_MS (a burst of new claims queues at the PV binder), then like any unschedulable pod", () => {
    const t = step(training(ftj().spec({ preprocess: { enabled: false } } as never))).next;
    const waiting = pod("train", 0).build();
    waiting.spec!.nodeName = undefined as never;
    // Taken from the test cluster's kube-scheduler 1.33: a pod whose claim's Immediate class nothing provisions.
    const unboundSince = (ms: number) =>
      unschedulable(
        "0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.",
        ms,
      );
    // Past the general grace, still within the claim's: nothing to report, a look when the claim's grace ends.
    waiting.status = { phase: "Pending", conditions: unboundSince(UNSCHEDULABLE_GRACE_MS + 60_000) };
    const early = decide(observe(t, { jobs: [job("train", 0).active(1, 0)], pods: [waiting] }));
    assert.equal(cond(early.status, "PodsScheduled"), undefined);
    assert.deepEqual(eventReasons(early), []);
    assert.equal(early.requeueAfterMs, UNBOUND_CLAIM_GRACE_MS - UNSCHEDULABLE_GRACE_MS - 60_000);
    waiting.status = { phase: "Pending", conditions: unboundSince(UNBOUND_CLAIM_GRACE_MS) };
    const late = decide(observe(t, { jobs: [job("train", 0).active(1, 0)], pods: [waiting] }));
    assert.equal(cond(late.status, "PodsScheduled")?.status, "False");
    assert.match(late.status.message ?? "", /cannot be scheduled: .*unbound immediate PersistentVolumeClaims/);
    assert.ok(eventReasons(late).includes("Warning/Unschedulable"));
  });
});

describe("decide: a Secret the pods need does not exist yet", () => {
  it("waits with SecretNotFound (never fails, however long), then resolves once the pods start", () => {
    const t = step(training(ftj().spec({ preprocess: { enabled: false } } as never))).next;
    const waiting = pod("train", 0).waiting("CreateContainerConfigError", 'secret "hf-token" not found', 3600);
    const d = decide(observe(t, { jobs: [job("train", 0).active(1, 0)], pods: [waiting] }));
    assert.equal(d.status.phase, "Training");
    assert.equal(cond(d.status, "ReferencesResolved")?.reason, "SecretNotFound");
    assert.match(d.status.message ?? "", /waiting: Secret hf-token not found in namespace ml/);
    assert.ok(eventReasons(d).includes("Warning/SecretNotFound"));
    assert.equal(d.status.lastFailure, undefined);
    const t2 = new FtjBuilder(NAME);
    Object.assign(t2.obj, structuredClone(t.obj));
    t2.status(d.status);
    const again = decide(observe(t2, { jobs: [job("train", 0).active(1, 0)], pods: [waiting] }));
    assert.equal(again.statusChanged, false, "level-triggered: the same observation writes nothing");
    const started = decide(observe(t2, { jobs: [job("train", 0).active()], pods: [pod("train", 0)] }));
    assert.equal(cond(started.status, "ReferencesResolved")?.status, "True");
    assert.ok(eventReasons(started).includes("Normal/ReferencesFound"));
  });
});

// ---------------------------------------------------------------------------
// Loss health (status.lossHistory is written by the progress paths)
// ---------------------------------------------------------------------------

describe("decide: loss health", () => {
  const RUNNING_CHILDREN = { jobs: [job("preprocess", 0).complete(), job("train", 0).active()], pods: ranks("train", 0, 1) };
  const withLoss = (f: FtjBuilder, lossHistory: FineTuneJobStatus["lossHistory"]) => f.status({ ...f.obj.status!, lossHistory });
  const falling = { points: Array.from({ length: 12 }, (_, i) => ({ step: i + 1, loss: 3 - i * 0.1 })) };

  it("no history: no LossHealthy condition (and no write for it)", () => {
    const { d } = step(trainRunning(), RUNNING_CHILDREN);
    assert.equal(cond(d.status, "LossHealthy"), undefined);
    assert.equal(d.statusChanged, false);
  });

  it("a falling loss: LossHealthy=True once; more healthy progress writes nothing more", () => {
    const { d, next } = step(withLoss(trainRunning(), falling), RUNNING_CHILDREN);
    assert.deepEqual([cond(d.status, "LossHealthy")?.status, cond(d.status, "LossHealthy")?.reason], ["True", "LossDecreasing"]);
    assert.deepEqual(eventReasons(d), [], "no Event for a healthy loss");
    const more = { points: [...falling.points, { step: 13, loss: 1.7 }] };
    const again = step(withLoss(next, more), RUNNING_CHILDREN).d;
    assert.equal(again.statusChanged, false, "the planner adds nothing to the progress path's own write");
  });

  it("NaN under Warn: LossHealthy=False with a Warning Event, and training goes on", () => {
    const { d, next } = step(withLoss(trainRunning(), { points: falling.points.slice(0, 3), nonFiniteStep: 4 }), RUNNING_CHILDREN);
    assert.deepEqual([cond(d.status, "LossHealthy")?.status, cond(d.status, "LossHealthy")?.reason], ["False", "LossNotFinite"]);
    assert.ok(eventReasons(d).includes("Warning/LossNotFinite"));
    assert.equal(d.status.phase, "Training");
    assert.deepEqual(deleted(d), []);
    assert.deepEqual(eventReasons(step(next, RUNNING_CHILDREN).d), [], "one Event per transition");
  });

  it("NaN under Fail: the run stops (train Job deleted, claim untouched), Failed with reason LossNotFinite", () => {
    const f = trainRunning(ftj().spec({ lossGuard: { action: "Fail" } }));
    const { d, next } = step(withLoss(f, { points: [], nonFiniteStep: 7 }), RUNNING_CHILDREN);
    assert.equal(d.status.phase, "Failed");
    assert.equal(cond(d.status, "Failed")?.reason, "LossNotFinite");
    assert.equal(cond(d.status, "LossHealthy")?.status, "False");
    assert.equal(d.status.stages?.train?.phase, "Failed");
    assert.equal(d.status.lastFailure?.reason, "LossNotFinite");
    assert.deepEqual(deleted(d), ["demo-train-0"]);
    assert.ok(!d.actions.some((a) => a.kind === "deleteFineTuneJob"));
    assert.ok(eventReasons(d).includes("Warning/LossNotFinite"));
    assert.ok(eventReasons(d).includes("Warning/Failed"));
    assert.deepEqual(step(next, RUNNING_CHILDREN).d.actions, [], "a failed job stays failed");
  });

  it("a flat loss under Fail only warns (Fail is for NaN)", () => {
    const flat = { points: Array.from({ length: 10 }, (_, i) => ({ step: i + 1, loss: 2.3 })) };
    const { d } = step(withLoss(trainRunning(ftj().spec({ lossGuard: { action: "Fail" } })), flat), RUNNING_CHILDREN);
    assert.equal(cond(d.status, "LossHealthy")?.reason, "LossFlat");
    assert.equal(d.status.phase, "Training");
  });
});

describe("decide: pod creates the API server refuses", () => {
  it("a Job without pods is looked at after 10 s; a FailedCreate message goes into PodsCreated=False and one Event", () => {
    const t = step(training(ftj().spec({ preprocess: { enabled: false } } as never))).next;
    const fresh = job("train", 0).build();
    fresh.metadata!.creationTimestamp = at(-2);
    assert.equal(decide(observe(t, { jobs: [fresh] })).requeueAfterMs, 8000, "first look when the Job is 10 s old");
    const old = job("train", 0).build();
    const refusal = 'pods "demo-train-0-0-x" is forbidden: violates PodSecurity "restricted:latest": hostPath volumes';
    const obs = { ...observe(t, { jobs: [old] }), podCreateFailures: { [old.metadata!.name!]: refusal } };
    const d = decide(obs);
    assert.equal(cond(d.status, "PodsCreated")?.reason, "FailedCreate");
    assert.match(cond(d.status, "PodsCreated")?.message ?? "", /violates PodSecurity/);
    assert.match(d.status.message ?? "", /are refused: pods .* is forbidden/);
    assert.ok(eventReasons(d).includes("Warning/FailedCreate"));
    assert.equal(d.requeueAfterMs, 15_000);
    const t2 = new FtjBuilder(NAME);
    Object.assign(t2.obj, structuredClone(t.obj));
    t2.status(d.status);
    const again = decide({ ...observe(t2, { jobs: [old] }), podCreateFailures: { [old.metadata!.name!]: refusal } });
    assert.equal(again.statusChanged, false);
    const created = decide(observe(t2, { jobs: [job("train", 0).active()], pods: [pod("train", 0)] }));
    assert.equal(cond(created.status, "PodsCreated")?.status, "True");
  });
});
