/**
 * The planner: observed state in, desired status and actions out. Pure and
 * synchronous, so every branch is unit-tested without a cluster, and every
 * reconcile is safe to repeat: decisions come only from what is observed
 * (the FineTuneJob's recorded status plus its children), never from memory.
 *
 * The reconciler writes the returned status FIRST (with the resourceVersion
 * it read, so a stale cache loses with a conflict), then performs the
 * actions. A crash between the two leaves a status that the next pass
 * completes: recorded facts (an attempt ended, a restart counted) are never
 * lost or counted twice, and deterministic child names make creates idempotent.
 */
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject, V1Job, V1PersistentVolumeClaim, V1Pod } from "@kubernetes/client-node";
import { LABEL_ATTEMPT, LABEL_STAGE, STAGES, type Stage } from "../api/group.ts";
import type { AttemptRecord, FineTuneJobObject, FineTuneJobSpec, FineTuneJobStatus, Phase, StageStatus } from "../api/schema.ts";
import { trainsMergeableAdapter } from "../render/axolotl-config.ts";
import {
  outputPaths, renderConfigMap, renderLauncherConfigMap, renderMergeJob, renderOutputClaim, renderPreprocessJob, renderService, renderSmokeTestJob, renderTrainJob,
  smokeAnswersPath, type OperatorSettings, type RenderInput,
} from "../render/children.ts";
import { smokeAnswersConfigMapName, stageJobName } from "../render/names.ts";
import type { ValidationIssue } from "../validation/job.ts";
import { getCondition, isTrue, setCondition, type ConditionInput } from "./conditions.ts";
import { classifyFailure, parseTerminationMessage, stuckPods, type AttemptFailure, type MissingPodReference } from "./failures.ts";
import { assessLoss } from "./loss-health.ts";
import { assessSmokeTest } from "./smoke-test.ts";
import { Reason, STAGE_FAILED_REASON, STAGE_SUCCEEDED_REASON } from "./reasons.ts";
import { firstUnschedulable } from "./scheduling.ts";
import { specHash } from "./spec-hash.ts";

export interface PlannerSettings extends OperatorSettings {
  /** First delay between failed attempts; doubles per counted failure. */
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  /** How long pods may sit in ImagePullBackOff / CreateContainerConfigError before the attempt fails. */
  imagePullGraceMs: number;
  /** Retries of the preprocess and merge stages (training uses spec.maxRestarts). */
  auxStageRetries: number;
  attemptHistoryLimit: number;
}

export const DEFAULT_PLANNER_SETTINGS: Omit<PlannerSettings, "launcherSource"> = {
  restartBackoffBaseMs: 10_000,
  restartBackoffMaxMs: 300_000,
  imagePullGraceMs: 300_000,
  auxStageRetries: 2,
  attemptHistoryLimit: 20,
};

/** An object the spec names that does not exist (yet): GitOps tools apply objects in any order. */
export interface MissingReference {
  kind: "ConfigMap" | "Secret" | "PersistentVolumeClaim";
  name: string;
  /** The spec field that names it, for the message. */
  path: string;
}

/** How often a job waiting for a referenced object looks again (user objects are not watched: no label selects them). */
export const MISSING_REFERENCE_RECHECK_MS = 10_000;

/** How long a Job may have no pod at all before the operator looks for refused pod creates (FailedCreate Events). */
export const POD_CREATE_CHECK_MS = 10_000;

/** A stage Job that has existed for POD_CREATE_CHECK_MS without any pod, not suspended and not finished. */
export function podCreateSuspect(job: V1Job, pods: readonly V1Pod[], nowMs: number): boolean {
  if (job.spec?.suspend || job.metadata?.deletionTimestamp || job.status?.conditions?.some((c) => c.status === "True" && ["Complete", "Failed"].includes(c.type))) return false;
  const name = job.metadata?.name;
  if (pods.some((pod) => pod.metadata?.labels?.["batch.kubernetes.io/job-name"] === name || pod.metadata?.labels?.["job-name"] === name)) return false;
  return nowMs - new Date(job.metadata?.creationTimestamp ?? nowMs).getTime() >= POD_CREATE_CHECK_MS;
}

export interface Observed {
  ftj: FineTuneJobObject;
  /** FailedCreate messages of stage Jobs without pods (see podCreateSuspect), by Job name. */
  podCreateFailures?: Readonly<Record<string, string>>;
  /** Referenced objects found missing before the run started; the job waits for them. */
  missing?: readonly MissingReference[];
  /** Result of validating the spec and the resolved Axolotl config. */
  validation: { spec?: FineTuneJobSpec; issues: ValidationIssue[] };
  axolotlConfig?: Record<string, unknown>;
  children: {
    configMap: boolean;
    /** The namespace's shared launcher ConfigMap (renderLauncherConfigMap) is in the cache. */
    launcher: boolean;
    service: boolean;
    claim?: V1PersistentVolumeClaim;
    jobs: readonly V1Job[];
    pods: readonly V1Pod[];
  };
  settings: PlannerSettings;
  now: Date;
}

export type Action =
  | { kind: "create"; object: KubernetesObject & { apiVersion: string; kind: string } }
  | { kind: "delete"; apiVersion: string; resource: "jobs"; namespace: string; name: string; reason: string }
  | { kind: "deleteFineTuneJob"; reason: string };

export interface PlannedEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface Decision {
  status: FineTuneJobStatus;
  statusChanged: boolean;
  actions: Action[];
  events: PlannedEvent[];
  requeueAfterMs?: number;
}

const STAGE_PHASE: Record<Stage, Phase> = { preprocess: "Preprocessing", train: "Training", smoke: "SmokeTesting", merge: "Merging" };
const STAGE_CONDITION = { preprocess: "Preprocessed", train: "Trained", smoke: "SmokeTested", merge: "Merged" } as const;

class Planner {
  readonly status: FineTuneJobStatus;
  readonly actions: Action[] = [];
  readonly events: PlannedEvent[] = [];
  requeueAfterMs: number | undefined;
  readonly now: string;
  readonly nowMs: number;
  readonly generation: number | undefined;

  readonly obs: Observed;

  constructor(obs: Observed) {
    this.obs = obs;
    this.status = structuredClone(obs.ftj.status ?? {}) as FineTuneJobStatus;
    this.now = obs.now.toISOString();
    this.nowMs = obs.now.getTime();
    this.generation = obs.ftj.metadata.generation;
  }

  condition(input: ConditionInput): void {
    this.status.conditions = setCondition(this.status.conditions, input, this.generation, this.now);
  }

  requeue(ms: number): void {
    const bounded = Math.max(0, Math.ceil(ms));
    this.requeueAfterMs = this.requeueAfterMs === undefined ? bounded : Math.min(this.requeueAfterMs, bounded);
  }

  event(type: PlannedEvent["type"], reason: string, message: string): void {
    this.events.push({ type, reason, message });
  }
}

export function decide(obs: Observed): Decision {
  const p = new Planner(obs);
  const before = obs.ftj.status ?? {};
  if (!obs.ftj.metadata.deletionTimestamp) run(p);
  const statusChanged = !isDeepStrictEqual(stripUndefined(before), stripUndefined(p.status));
  if (statusChanged && before.phase !== p.status.phase && p.status.phase) {
    p.event(p.status.phase === "Failed" ? "Warning" : "Normal", p.status.phase, phaseMessage(p.status));
  }
  return { status: p.status, statusChanged, actions: p.actions, events: p.events, ...(p.requeueAfterMs !== undefined ? { requeueAfterMs: p.requeueAfterMs } : {}) };
}

function phaseMessage(st: FineTuneJobStatus): string {
  return st.message ?? `phase ${st.phase}`;
}

function run(p: Planner): void {
  const st = p.status;
  const gen = p.generation;
  const invalidFailure = st.phase === "Failed" && getCondition(st.conditions, "Validated")?.status === "False";
  if (st.phase === "Succeeded" || (st.phase === "Failed" && !(invalidFailure && st.observedGeneration !== gen))) {
    finished(p);
    return;
  }
  if (waitForReferences(p)) return;
  if (!validate(p)) return;
  const spec = p.obs.validation.spec!;
  const config = p.obs.axolotlConfig ?? {};
  // A started run renders every attempt with what it started with; a changed image or shape is reported (driftCheck), not applied.
  const input: RenderInput = { job: jobRef(p.obs.ftj), spec: st.startedWith ? { ...spec, ...st.startedWith } : spec, axolotlConfig: config, settings: p.obs.settings };

  driftCheck(p, spec);
  if (spec.suspend) {
    suspend(p);
    return;
  }
  if (isTrue(st.conditions, "Suspended")) {
    p.condition({ type: "Suspended", status: "False", reason: Reason.Resumed, message: "resumed; the interrupted stage starts a new attempt" });
  }

  if (lossHealth(p, spec)) return;

  // Storage, the rendered config and the rank Service are created first; the first stage's Job is created in the same
  // pass, after them (actions run in order and stop at the first error), which saves a round trip through the queue
  // per job. Status says Pending, truthfully, until the cache shows the base objects.
  const baseObserved = ensureBaseObjects(p, input);
  const stages = enabledStages(spec, config);
  st.outputs = { ...outputPaths(input), ...(st.outputs ?? {}) };
  markSkippedStages(p, spec, config);
  const next = stages.find((stage) => stageStatus(st, stage).phase !== "Succeeded");
  if (!next) {
    succeed(p, stages);
    return;
  }
  runStage(p, input, next, stageStatus(st, next), stages);
  if (!baseObserved) {
    st.phase = "Pending";
    st.message = "preparing the output claim, rendered config and rank Service";
  }
}

function jobRef(ftj: FineTuneJobObject) {
  return { name: ftj.metadata.name ?? "", namespace: ftj.metadata.namespace ?? "", uid: ftj.metadata.uid ?? "" };
}

export function enabledStages(spec: FineTuneJobSpec, config: Record<string, unknown>): Stage[] {
  const stages: Stage[] = [];
  if (spec.preprocess.enabled) stages.push("preprocess");
  stages.push("train");
  if (spec.smokeTest.enabled ?? trainsMergeableAdapter(config)) stages.push("smoke");
  if (spec.merge.enabled ?? trainsMergeableAdapter(config)) stages.push("merge");
  return stages;
}

function stageStatus(st: FineTuneJobStatus, stage: Stage): StageStatus {
  st.stages ??= {};
  const existing = st.stages[stage];
  if (existing) return existing;
  const created: StageStatus = { phase: "Pending", attempt: 0, retries: 0 };
  st.stages[stage] = created;
  return created;
}

const MISSING_REASON = { ConfigMap: Reason.ConfigNotFound, Secret: Reason.SecretNotFound, PersistentVolumeClaim: Reason.ClaimNotFound } as const;

/**
 * A referenced ConfigMap, Secret or claim that does not exist yet means waiting (condition ReferencesResolved=False,
 * an Event, a requeue), never failing: GitOps applies objects in any order. A spec that is invalid anyway fails now.
 * Validation waits too, so the config is validated once it can be read.
 */
function waitForReferences(p: Planner): boolean {
  const st = p.status;
  const missing = p.obs.missing ?? [];
  const cond = getCondition(st.conditions, "ReferencesResolved");
  if (missing.length === 0) {
    // Pod-level reasons (a Secret the kubelet cannot find) are resolved by reportPodReferences, from the pods.
    if (cond?.status === "False" && !POD_REFERENCE_REASONS.has(cond.reason)) {
      p.condition({ type: "ReferencesResolved", status: "True", reason: Reason.ReferencesFound, message: "every referenced object exists" });
      p.event("Normal", Reason.ReferencesFound, `found ${cond.message.replace(/ not found.*$/, "")}; the job proceeds`);
    }
    return false;
  }
  if (p.obs.validation.issues.some((i) => i.severity === "error")) return false;
  const ns = p.obs.ftj.metadata.namespace ?? "";
  const message = missing.map((m) => `${m.kind} ${m.name} (${m.path}) not found in namespace ${ns}`).join("; ");
  const reason = MISSING_REASON[missing[0]!.kind];
  if (cond?.status !== "False" || cond.message !== message) p.event("Warning", reason, `${message}; waiting for it to be created`);
  p.condition({ type: "ReferencesResolved", status: "False", reason, message });
  st.phase = "Pending";
  st.message = `waiting: ${message}`;
  st.observedGeneration = p.generation;
  p.requeue(MISSING_REFERENCE_RECHECK_MS);
  return true;
}

/** Validates once per generation; an invalid spec fails the job without creating anything and without a retry loop. */
function validate(p: Planner): boolean {
  const st = p.status;
  const validated = getCondition(st.conditions, "Validated");
  const { issues } = p.obs.validation;
  const errors = issues.filter((i) => i.severity === "error");
  if (errors.length > 0) {
    const message = errors.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join("; ") + (errors.length > 5 ? ` (and ${errors.length - 5} more)` : "");
    const already = validated?.status === "False" && validated.observedGeneration === p.generation && validated.message === message;
    p.condition({ type: "Validated", status: "False", reason: Reason.InvalidSpec, message });
    if (st.specHash) {
      // An invalid edit of a job that is already running is reported, never acted on: the run keeps its GPUs and its settings.
      st.observedGeneration = p.generation;
      if (!already) p.event("Warning", Reason.InvalidSpec, `edit rejected, the running job continues unchanged: ${message}`);
      return false;
    }
    p.condition({ type: "Failed", status: "True", reason: Reason.InvalidSpec, message });
    st.phase = "Failed";
    st.message = `invalid spec: ${message}`;
    st.observedGeneration = p.generation;
    if (!already) p.event("Warning", Reason.InvalidSpec, message);
    return false;
  }
  if (validated?.status !== "True" || validated.observedGeneration !== p.generation) {
    const warnings = issues.filter((i) => i.severity === "warning");
    const message = warnings.length ? `valid with ${warnings.length} warning(s): ${warnings.slice(0, 5).map((i) => `${i.path}: ${i.message}`).join("; ")}` : "spec and Axolotl config are valid";
    p.condition({ type: "Validated", status: "True", reason: Reason.Valid, message });
    if (warnings.length) p.event("Warning", Reason.ConfigWarnings, message);
    if (getCondition(st.conditions, "Failed")?.reason === Reason.InvalidSpec) {
      p.condition({ type: "Failed", status: "False", reason: Reason.Valid, message: "the spec was fixed" });
      delete st.phase;
      delete st.message;
    }
  }
  st.observedGeneration = p.generation;
  st.phase ??= "Pending";
  return true;
}

/** Parts of a started run cannot change under it; changes are reported, never silently ignored. */
function driftCheck(p: Planner, spec: FineTuneJobSpec): void {
  const st = p.status;
  const hash = specHash(spec);
  if (!st.specHash) return;
  if (st.specHash !== hash) {
    if (!isTrue(st.conditions, "SpecChangeRejected")) p.event("Warning", Reason.SpecChangeRejected, "config, image, nodes or GPUs changed after the job started; the run continues with the settings it started with. Delete and re-create the FineTuneJob to apply them.");
    p.condition({ type: "SpecChangeRejected", status: "True", reason: Reason.SpecChangeRejected, message: "config, image, nodes or gpusPerNode changed after start and are not applied to this run" });
  } else if (getCondition(st.conditions, "SpecChangeRejected")) {
    p.condition({ type: "SpecChangeRejected", status: "False", reason: Reason.Valid, message: "spec matches the running job" });
  }
}

/**
 * Records what the smoke test answered (from the launcher's termination message) and its checks. False when the
 * checks failed under smokeTest.action Fail: the job fails and nothing is merged. Under Warn the run goes on to the
 * merge with SmokeTested=False and a Warning Event.
 */
function smokeTestPassed(p: Planner, input: RenderInput, pods: readonly V1Pod[]): boolean {
  const st = p.status;
  if (st.smokeTest) return st.smokeTest.result !== "Failed";
  const summaries = pods.map((pod) => parseTerminationMessage(pod.status?.containerStatuses?.[0]?.state?.terminated?.message).summary);
  const verdict = assessSmokeTest(summaries.find((s) => s?.smoke)?.smoke, input.spec.smokeTest.action);
  st.smokeTest = { ...verdict.status, answersFile: smokeAnswersPath(input), ...(verdict.status.answers.length > 0 ? { answersConfigMap: smokeAnswersConfigMapName(input.job.name) } : {}) };
  if (verdict.status.result === "Passed") return true;
  const message = `${verdict.status.message}${verdict.status.hint ? `. Hint: ${verdict.status.hint}` : ""}`;
  p.condition({ type: "SmokeTested", status: "False", reason: verdict.reason, message });
  p.event("Warning", verdict.reason, message);
  if (verdict.status.result !== "Failed") return true;
  const ss = stageStatus(st, "smoke");
  ss.phase = "Failed";
  st.lastFailure = { stage: "smoke", attempt: ss.attempt, reason: verdict.reason, message: verdict.status.message, ...(verdict.status.hint ? { hint: verdict.status.hint } : {}), time: p.now, permanent: true };
  fail(p, verdict.reason, `smoke test failed (spec.smokeTest.action is Fail), nothing merged: ${message}`);
  return false;
}

/**
 * LossHealthy from status.lossHistory (written by the progress paths). The
 * condition message of a healthy loss does not quote values, so new progress
 * alone never makes the reconciler write status. True when the run must stop
 * (a non-finite loss under lossGuard.action Fail).
 */
function lossHealth(p: Planner, spec: FineTuneJobSpec): boolean {
  const st = p.status;
  const verdict = assessLoss(st.lossHistory, spec.lossGuard);
  if (!verdict) return false;
  const prev = getCondition(st.conditions, "LossHealthy");
  const status = verdict.healthy ? "True" : "False";
  p.condition({ type: "LossHealthy", status, reason: verdict.reason, message: verdict.message });
  if (prev?.status !== status || prev.reason !== verdict.reason) {
    if (!verdict.healthy) p.event("Warning", verdict.reason, verdict.message);
    else if (prev) p.event("Normal", verdict.reason, "the training loss looks healthy again");
  }
  if (!verdict.nonFinite || spec.lossGuard.action !== "Fail") return false;
  stopForLoss(p, verdict.message);
  return true;
}

/**
 * Fails the job and stops whatever stage runs. Deleting the training Job sends SIGTERM: the launcher asks Axolotl to
 * save a checkpoint first (dynamic_checkpoint), and nothing on the claim is deleted, so the checkpoints stay.
 */
function stopForLoss(p: Planner, why: string): void {
  const st = p.status;
  for (const job of p.obs.children.jobs) {
    if (!isFinishedJob(job) && !job.metadata?.deletionTimestamp) deleteJob(p, job, "spec.lossGuard.action is Fail and the loss is not finite");
  }
  const ss = st.stages?.train;
  const message = `training stopped by spec.lossGuard (action Fail): ${why}`;
  if (ss && ss.phase !== "Succeeded") {
    ss.phase = "Failed";
    ss.completionTime ??= p.now;
    const record = findRecord(st, "train", ss.attempt);
    if (record && !record.endTime) Object.assign(record, { endTime: p.now, result: "Failed", reason: Reason.LossNotFinite, counted: false });
    p.condition({ type: "Trained", status: "False", reason: Reason.LossNotFinite, message });
  }
  st.lastFailure = { stage: "train", ...(ss ? { attempt: ss.attempt } : {}), reason: Reason.LossNotFinite, message, time: p.now, permanent: true };
  fail(p, Reason.LossNotFinite, message);
}

/** Creates the missing base objects; true when all of them are observed. Never waits for the claim to bind (WaitForFirstConsumer classes bind only once a pod uses it). */
function ensureBaseObjects(p: Planner, input: RenderInput): boolean {
  const c = p.obs.children;
  // A stage Job in the cache proves they existed (they are created before it); a later deletion must not stall the run.
  if (c.jobs.length > 0) {
    if (!c.configMap) p.actions.push({ kind: "create", object: renderConfigMap(input) as never });
    if (!c.launcher) p.actions.push({ kind: "create", object: renderLauncherConfigMap(input.job.namespace, input.settings) as never });
    if (!c.service) p.actions.push({ kind: "create", object: renderService(input) as never });
    return true;
  }
  const claim = renderOutputClaim(input);
  if (claim && !c.claim) p.actions.push({ kind: "create", object: claim as never });
  if (!c.configMap) p.actions.push({ kind: "create", object: renderConfigMap(input) as never });
  if (!c.launcher) p.actions.push({ kind: "create", object: renderLauncherConfigMap(input.job.namespace, input.settings) as never });
  if (!c.service) p.actions.push({ kind: "create", object: renderService(input) as never });
  return p.actions.length === 0;
}

function markSkippedStages(p: Planner, spec: FineTuneJobSpec, config: Record<string, unknown>): void {
  const st = p.status;
  if (!spec.preprocess.enabled && !getCondition(st.conditions, "Preprocessed")) {
    p.condition({ type: "Preprocessed", status: "True", reason: Reason.Disabled, message: "spec.preprocess.enabled is false" });
  }
  if (!(spec.smokeTest.enabled ?? trainsMergeableAdapter(config)) && !getCondition(st.conditions, "SmokeTested")) {
    const off = spec.smokeTest.enabled === false;
    p.condition({ type: "SmokeTested", status: "False", reason: off ? Reason.Disabled : Reason.NotApplicable, message: off ? "spec.smokeTest.enabled is false" : "no LoRA/QLoRA adapter is trained, nothing to smoke-test" });
  }
  if (!(spec.merge.enabled ?? trainsMergeableAdapter(config)) && !getCondition(st.conditions, "Merged")) {
    const why = spec.merge.enabled === false ? "spec.merge.enabled is false" : "no LoRA/QLoRA adapter is trained, nothing to merge";
    p.condition({ type: "Merged", status: "False", reason: spec.merge.enabled === false ? Reason.Disabled : Reason.NotApplicable, message: why });
  }
}

function jobsOf(p: Planner, stage: Stage): V1Job[] {
  return p.obs.children.jobs.filter((j) => j.metadata?.labels?.[LABEL_STAGE] === stage);
}

function podsOf(p: Planner, stage: Stage, attempt?: number): V1Pod[] {
  return p.obs.children.pods.filter(
    (pod) => pod.metadata?.labels?.[LABEL_STAGE] === stage && (attempt === undefined || pod.metadata?.labels?.[LABEL_ATTEMPT] === String(attempt)),
  );
}

const attemptOf = (obj: { metadata?: { labels?: Record<string, string> } }) => Number(obj.metadata?.labels?.[LABEL_ATTEMPT] ?? -1);

function findRecord(st: FineTuneJobStatus, stage: Stage, attempt: number): AttemptRecord | undefined {
  return st.attempts?.find((a) => a.stage === stage && a.attempt === attempt);
}

function addRecord(p: Planner, record: AttemptRecord): void {
  const list = [...(p.status.attempts ?? []), record];
  p.status.attempts = list.slice(-p.obs.settings.attemptHistoryLimit);
}

function jobCondition(job: V1Job, ...types: string[]): boolean {
  return job.status?.conditions?.some((c) => types.includes(c.type) && c.status === "True") ?? false;
}

function renderStageJob(input: RenderInput, stage: Stage, attempt: number): V1Job {
  if (stage === "preprocess") return renderPreprocessJob(input, attempt);
  if (stage === "train") return renderTrainJob(input, attempt);
  if (stage === "smoke") return renderSmokeTestJob(input, attempt);
  return renderMergeJob(input, attempt);
}

function retryLimit(p: Planner, stage: Stage, spec: FineTuneJobSpec): number {
  return stage === "train" ? spec.maxRestarts : p.obs.settings.auxStageRetries;
}

function runStage(p: Planner, input: RenderInput, stage: Stage, ss: StageStatus, stages: readonly Stage[]): void {
  const st = p.status;
  const name = input.job.name;
  st.phase = STAGE_PHASE[stage];
  st.message = `${stage} attempt ${ss.attempt}: Job ${stageJobName(name, stage, ss.attempt)}`;
  const jobs = jobsOf(p, stage);
  const current = jobs.find((j) => j.metadata?.name === stageJobName(name, stage, ss.attempt));
  // Leftovers of earlier attempts (e.g. the operator died mid-teardown) go first.
  for (const old of jobs) {
    if (attemptOf(old) < ss.attempt && !old.metadata?.deletionTimestamp) deleteJob(p, old, "superseded by a newer attempt");
  }
  const record = findRecord(st, stage, ss.attempt);
  if (record?.endTime) {
    startNextAttempt(p, input, stage, ss, record, current);
    return;
  }
  if (!current) {
    if (!record) addRecord(p, { stage, attempt: ss.attempt, startTime: p.now, result: "Running" });
    ss.jobName = stageJobName(name, stage, ss.attempt);
    ss.startTime ??= p.now;
    st.startTime ??= p.now;
    st.specHash ??= specHash(input.spec);
    st.startedWith ??= { image: input.spec.image, nodes: input.spec.nodes, gpusPerNode: input.spec.gpusPerNode };
    if (stage === "train") syncTrainCounters(st);
    p.actions.push({ kind: "create", object: renderStageJob(input, stage, ss.attempt) as never });
    return;
  }
  copyCounts(ss, current);
  if (jobCondition(current, "Complete")) {
    stageSucceeded(p, stage, ss, current);
    if (stage === "smoke" && !smokeTestPassed(p, input, podsOf(p, stage, ss.attempt))) return;
    const next = stages[stages.indexOf(stage) + 1];
    if (next) runStage(p, input, next, stageStatus(st, next), stages);
    else succeed(p, stages);
    return;
  }
  const pods = podsOf(p, stage, ss.attempt);
  let failure: AttemptFailure | undefined;
  let missing: MissingPodReference | undefined;
  if (jobCondition(current, "Failed", "FailureTarget")) {
    failure = classifyFailure(stage, current, pods, input.spec.permanentExitCodes ?? []);
  } else {
    const stuck = stuckPods(pods, p.nowMs, p.obs.settings.imagePullGraceMs);
    if (stuck.recheckAt !== undefined) p.requeue(stuck.recheckAt - p.nowMs);
    failure = stuck.failure;
    missing = stuck.missing;
  }
  if (failure) {
    attemptEnded(p, input, stage, ss, failure, current, pods);
    return;
  }
  // A Job whose pods have run is Running until its Complete/Failed condition: between a pod's exit and that condition
  // the Job shows no active pod (and may not have counted the exit yet), which is not a return to Pending.
  const started = ss.phase === "Running" || (current.status?.active ?? 0) + (current.status?.succeeded ?? 0) + (current.status?.failed ?? 0) > 0;
  ss.phase = current.spec?.suspend ? "Pending" : started ? "Running" : "Pending";
  st.message = `${stage} attempt ${ss.attempt}: ${current.status?.ready ?? 0}/${current.spec?.parallelism ?? 1} pod(s) ready (Job ${current.metadata?.name})`;
  if (current.spec?.suspend) st.message = `${stage} Job ${current.metadata?.name} is queued (suspended until admitted, e.g. by Kueue)`;
  const resume = resumePoint(pods);
  if (resume && record && record.resumedFrom === undefined && resume !== "none") record.resumedFrom = resume;
  reportScheduling(p, stage, ss, pods);
  reportPodCreation(p, stage, ss, current, pods);
  reportPodReferences(p, missing);
  p.condition({ type: STAGE_CONDITION[stage], status: "False", reason: ss.phase === "Running" ? Reason.Running : Reason.Pending, message: `${stage} attempt ${ss.attempt}: ${ss.phase.toLowerCase()}` });
}

const POD_REFERENCE_REASONS = new Set<string>([Reason.SecretNotFound, Reason.ConfigMapNotFound]);

/**
 * A Secret or ConfigMap the pods need (spec.secrets, env, envFrom) that does not exist yet: the job waits (the
 * kubelet starts the container once it exists) with ReferencesResolved=False and one Event, instead of failing.
 * The operator cannot read Secrets; the kubelet's CreateContainerConfigError is how it learns of them.
 */
function reportPodReferences(p: Planner, missing: MissingPodReference | undefined): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "ReferencesResolved");
  if (missing) {
    const message = `${missing.kind} ${missing.name} not found in namespace ${p.obs.ftj.metadata.namespace ?? ""} (needed by pod ${missing.pod}: spec.secrets, env or envFrom)`;
    const reason = missing.kind === "Secret" ? Reason.SecretNotFound : Reason.ConfigMapNotFound;
    if (cond?.status !== "False" || cond.message !== message) p.event("Warning", reason, `${message}; the pod starts once it exists`);
    p.condition({ type: "ReferencesResolved", status: "False", reason, message });
    st.message = `${st.message}; waiting: ${message}`;
  } else if (cond?.status === "False" && POD_REFERENCE_REASONS.has(cond.reason)) {
    p.condition({ type: "ReferencesResolved", status: "True", reason: Reason.ReferencesFound, message: "every referenced object exists" });
    p.event("Normal", Reason.ReferencesFound, "the missing Secret/ConfigMap exists now; the pods start");
  }
}

/**
 * Pods the API server refuses to create (a Pod Security level, a ResourceQuota, a LimitRange, an unknown
 * PriorityClass) show only in the Job controller's FailedCreate Events: the refusal goes into status (message,
 * PodsCreated=False with reason FailedCreate) and one Event per episode. The job waits; fixing the namespace lets
 * the Job controller create the pods. While a Job has no pod the planner looks again.
 */
function reportPodCreation(p: Planner, stage: Stage, ss: StageStatus, job: V1Job, pods: readonly V1Pod[]): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "PodsCreated");
  const refused = p.obs.podCreateFailures?.[job.metadata?.name ?? ""];
  const podless = !job.spec?.suspend && !pods.some((pod) => attemptOf(pod) === ss.attempt);
  if (podless) {
    const createdAt = new Date(job.metadata?.creationTimestamp ?? p.now).getTime();
    const due = createdAt + POD_CREATE_CHECK_MS - p.nowMs;
    // First look when the Job is old enough to be suspect, then every 15 s (each look lists the Job's Events).
    p.requeue(due > 0 ? due : 15_000);
  }
  if (refused && podless) {
    const message = `${stage} attempt ${ss.attempt}: pods of Job ${job.metadata?.name} are refused: ${refused}`;
    if (cond?.status !== "False") p.event("Warning", Reason.FailedCreate, message);
    p.condition({ type: "PodsCreated", status: "False", reason: Reason.FailedCreate, message });
    st.message = `${st.message}; ${message}`;
  } else if (cond?.status === "False" && !podless) {
    p.condition({ type: "PodsCreated", status: "True", reason: Reason.Created, message: `pods of ${stage} attempt ${ss.attempt} were created` });
  }
}

/** The scheduler's reason for a pod it cannot place goes into status (message, PodsScheduled) and one Event per episode. */
function reportScheduling(p: Planner, stage: Stage, ss: StageStatus, pods: readonly V1Pod[]): void {
  const st = p.status;
  const cond = getCondition(st.conditions, "PodsScheduled");
  const stuck = firstUnschedulable(pods);
  if (stuck) {
    const message = `${stage} attempt ${ss.attempt}: pod ${stuck.pod} cannot be scheduled: ${stuck.message}`;
    if (cond?.status !== "False") p.event("Warning", Reason.Unschedulable, message);
    p.condition({ type: "PodsScheduled", status: "False", reason: Reason.Unschedulable, message });
    st.message = `${st.message}; ${message}`;
  } else if (cond?.status === "False" && pods.length > 0 && pods.every((pod) => pod.spec?.nodeName)) {
    p.condition({ type: "PodsScheduled", status: "True", reason: Reason.Scheduled, message: `every pod of ${stage} attempt ${ss.attempt} is scheduled` });
  }
}

/** The checkpoint the launcher resumed from, from the termination message of a finished pod (running pods have none yet). */
function resumePoint(pods: readonly V1Pod[]): string | undefined {
  for (const pod of pods) {
    const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
    const { summary } = parseTerminationMessage(term?.message);
    if (summary && summary.resumeFrom !== undefined) return summary.resumeFrom ?? "none";
  }
  return undefined;
}

/**
 * Mirrors the Job's active and ready pods (what `kubectl finetune status` shows). Not its succeeded/failed counts:
 * they change on the way to the Job's own Complete/Failed condition, which is what the planner acts on, and each
 * mirrored change would be one more status write.
 */
function copyCounts(ss: StageStatus, job: V1Job): void {
  ss.jobName = job.metadata?.name;
  ss.active = job.status?.active ?? 0;
  ss.ready = job.status?.ready ?? 0;
}

function syncTrainCounters(st: FineTuneJobStatus): void {
  const train = st.stages?.train;
  if (!train) return;
  st.attempt = train.attempt;
  st.restarts = train.retries;
}

function stageSucceeded(p: Planner, stage: Stage, ss: StageStatus, job: V1Job): void {
  const st = p.status;
  ss.phase = "Succeeded";
  ss.completionTime ??= p.now;
  const record = findRecord(st, stage, ss.attempt);
  if (record && !record.endTime) {
    record.endTime = p.now;
    record.result = "Succeeded";
    const resume = resumePoint(podsOf(p, stage, ss.attempt));
    if (resume && resume !== "none" && record.resumedFrom === undefined) record.resumedFrom = resume;
  }
  if (stage === "train") syncTrainCounters(st);
  p.condition({ type: STAGE_CONDITION[stage], status: "True", reason: Reason.Completed, message: `${stage} Job ${job.metadata?.name} completed` });
  p.event("Normal", STAGE_SUCCEEDED_REASON[stage], `${stage} completed (Job ${job.metadata?.name}, attempt ${ss.attempt})`);
}

function attemptEnded(p: Planner, input: RenderInput, stage: Stage, ss: StageStatus, failure: AttemptFailure, current: V1Job, pods: readonly V1Pod[]): void {
  const st = p.status;
  let record = findRecord(st, stage, ss.attempt);
  if (!record) {
    record = { stage, attempt: ss.attempt, result: "Running" };
    addRecord(p, record);
    record = findRecord(st, stage, ss.attempt)!;
  }
  const counted = failure.kind === "Failed";
  record.endTime = p.now;
  record.result = failure.kind;
  record.reason = failure.reason;
  record.message = failure.message;
  record.counted = counted;
  const resume = resumePoint(pods);
  if (resume && resume !== "none" && record.resumedFrom === undefined) record.resumedFrom = resume;
  if (counted) ss.retries += 1;
  else if (stage === "train") st.disruptions = (st.disruptions ?? 0) + 1;
  st.lastFailure = {
    stage,
    attempt: ss.attempt,
    reason: failure.reason,
    message: failure.message,
    ...(failure.hint ? { hint: failure.hint } : {}),
    ...(failure.exitCode !== undefined ? { exitCode: failure.exitCode } : {}),
    ...(failure.pod ? { pod: failure.pod } : {}),
    ...(failure.node ? { node: failure.node } : {}),
    time: p.now,
    permanent: failure.permanent,
  };
  if (stage === "train") syncTrainCounters(st);
  const limit = retryLimit(p, stage, input.spec);
  if (counted && (failure.permanent || ss.retries > limit)) {
    ss.phase = "Failed";
    ss.completionTime = p.now;
    const why = failure.permanent ? "a retry cannot fix this" : `retry limit reached (${limit})`;
    const message = `${stage} failed (${why}): ${failure.message}${failure.hint ? `. Hint: ${failure.hint}` : ""}`;
    fail(p, failure.permanent ? Reason.PermanentFailure : Reason.BackoffLimitExceeded, message);
    // The last failure ended the job; it did not cause a restart.
    if (stage === "train") st.restarts = Math.max(0, ss.retries - 1);
    p.condition({ type: STAGE_CONDITION[stage], status: "False", reason: Reason.StageFailed, message: failure.message });
    // Failed pods stay for `kubectl logs`; anything still running is stopped.
    if ((current.status?.active ?? 0) > 0 || !jobCondition(current, "Failed")) deleteJob(p, current, "job failed");
    return;
  }
  const what = counted ? `failed (${failure.reason}; restart ${ss.retries} of ${limit})` : `was disrupted (not counted)`;
  p.event("Warning", counted ? STAGE_FAILED_REASON[stage] : Reason.Disrupted, `${stage} attempt ${ss.attempt} ${what}: ${failure.message}${failure.hint ? `. Hint: ${failure.hint}` : ""}`);
  ss.phase = "Pending";
  startNextAttempt(p, input, stage, ss, record, current);
}

/** Tears the ended attempt down, waits for its pods to be gone and for the backoff, then starts the next one. */
function startNextAttempt(p: Planner, input: RenderInput, stage: Stage, ss: StageStatus, record: AttemptRecord, current: V1Job | undefined): void {
  const st = p.status;
  if (current && !current.metadata?.deletionTimestamp) deleteJob(p, current, `attempt ${ss.attempt} ended (${record.result})`);
  // A rank still shutting down may be writing a checkpoint: never let two attempts share the output directory.
  const lingering = podsOf(p, stage).filter((pod) => attemptOf(pod) <= ss.attempt && !isTerminal(pod));
  if (lingering.length > 0 || (current && !isFinishedJob(current) && current.metadata?.deletionTimestamp)) {
    st.message = `waiting for ${lingering.length} pod(s) of ${stage} attempt ${ss.attempt} to stop before the next attempt`;
    ss.phase = "Pending";
    return;
  }
  if (record.result === "Failed") {
    const delay = Math.min(p.obs.settings.restartBackoffBaseMs * 2 ** Math.max(0, ss.retries - 1), p.obs.settings.restartBackoffMaxMs);
    const startAt = new Date(record.endTime ?? p.now).getTime() + delay;
    if (p.nowMs < startAt) {
      st.message = `${stage} attempt ${ss.attempt + 1} starts after backoff at ${new Date(startAt).toISOString()}`;
      p.requeue(startAt - p.nowMs);
      return;
    }
  }
  ss.attempt += 1;
  ss.phase = "Pending";
  ss.jobName = stageJobName(input.job.name, stage, ss.attempt);
  delete ss.active;
  delete ss.ready;
  addRecord(p, { stage, attempt: ss.attempt, startTime: p.now, result: "Running" });
  if (stage === "train") syncTrainCounters(st);
  st.message = `${stage} attempt ${ss.attempt}: Job ${ss.jobName}`;
  p.event("Normal", Reason.Restarting, `starting ${stage} attempt ${ss.attempt}${stage === "train" ? "; it resumes from the newest complete checkpoint" : ""}`);
  p.actions.push({ kind: "create", object: renderStageJob(input, stage, ss.attempt) as never });
}

function isTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

function isFinishedJob(job: V1Job): boolean {
  return jobCondition(job, "Complete", "Failed");
}

function deleteJob(p: Planner, job: V1Job, reason: string): void {
  const name = job.metadata?.name;
  if (!name) return;
  if (p.actions.some((a) => a.kind === "delete" && a.name === name)) return;
  p.actions.push({ kind: "delete", apiVersion: "batch/v1", resource: "jobs", namespace: job.metadata?.namespace ?? "", name, reason });
}

function fail(p: Planner, reason: string, message: string): void {
  const st = p.status;
  st.phase = "Failed";
  st.message = message;
  st.completionTime ??= p.now;
  p.condition({ type: "Failed", status: "True", reason, message });
  p.condition({ type: "Succeeded", status: "False", reason, message });
}

function succeed(p: Planner, stages: readonly Stage[]): void {
  const st = p.status;
  st.phase = "Succeeded";
  st.completionTime ??= p.now;
  const merged = stages.includes("merge");
  st.message = merged ? `merged model at ${st.outputs?.mergedModelPath} on claim ${st.outputs?.claimName}` : `adapter/model at ${st.outputs?.adapterPath} on claim ${st.outputs?.claimName}`;
  if (!merged && st.outputs) delete st.outputs.mergedModelPath;
  p.condition({ type: "Succeeded", status: "True", reason: Reason.Succeeded, message: st.message });
}

/** Stops the running stage's pods (the attempt ends as Suspended, not counted) and keeps all data. */
function suspend(p: Planner): void {
  const st = p.status;
  for (const stage of STAGES) {
    const ss = st.stages?.[stage];
    if (!ss || ss.phase === "Succeeded" || ss.phase === "Failed") continue;
    const current = jobsOf(p, stage).find((j) => attemptOf(j) === ss.attempt);
    const record = findRecord(st, stage, ss.attempt);
    if (record && !record.endTime) {
      record.endTime = p.now;
      record.result = "Suspended";
      record.counted = false;
    }
    ss.phase = "Pending";
    if (current && !current.metadata?.deletionTimestamp) deleteJob(p, current, "suspended");
  }
  if (!isTrue(st.conditions, "Suspended")) {
    p.condition({ type: "Suspended", status: "True", reason: Reason.Suspended, message: "spec.suspend is true: pods stopped, data kept" });
  }
  st.phase = "Suspended";
  st.message = "suspended: pods stopped, output data kept; set spec.suspend=false to continue";
}

/** Terminal jobs: nothing runs; TTL deletes the FineTuneJob when asked. */
function finished(p: Planner): void {
  const st = p.status;
  const ttl = p.obs.validation.spec?.ttlSecondsAfterFinished ?? (p.obs.ftj.spec as { ttlSecondsAfterFinished?: number }).ttlSecondsAfterFinished;
  if (ttl === undefined || !st.completionTime) return;
  const expireAt = new Date(st.completionTime).getTime() + ttl * 1000;
  if (p.nowMs >= expireAt) p.actions.push({ kind: "deleteFineTuneJob", reason: `ttlSecondsAfterFinished (${ttl}s) expired` });
  else p.requeue(expireAt - p.nowMs);
}

/** JSON round-trip semantics: undefined members are absent. */
function stripUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value ?? {})) as T;
}
