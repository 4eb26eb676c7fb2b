/**
 * One reconcile of one FineTuneJob: gather what the caches say, let the pure
 * planner decide, write status (first, with optimistic concurrency), then act
 * and emit events. Every step is idempotent.
 */
import type { V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { FineTuneJobObject } from "../api/schema.ts";
import { errorMessage, isAlreadyExists, isConflict, isNotFound, isRefusal } from "../kube/errors.ts";
import type { KubeApi } from "../kube/api.ts";
import { traced } from "../observability/tracing.ts";
import { Expectations } from "../runtime/expectations.ts";
import { VersionedMemo } from "../runtime/versioned-memo.ts";
import { deepFreeze } from "../runtime/store.ts";
import type { Creatable } from "../render/desired.ts";
import { configMapName, launcherConfigMapName, outputClaimName, serviceName } from "../render/names.ts";
import { resolveAxolotlConfig } from "../validation/config.ts";
import { validateNameAndSpec, type JobValidation, type ValidationIssue } from "../validation/job.ts";
import { getCondition } from "./conditions.ts";
import { trimJob } from "./cache-shape.ts";
import { buildEvent } from "./events.ts";
import { EventRecorder } from "./event-recorder.ts";
import { Reason } from "./reasons.ts";
import { PodCreateDiagnosis } from "./pod-create-diagnosis.ts";
import { recordSmokeAnswers } from "./smoke-answers.ts";
import { createKey } from "./planner/creates.ts";
import { decide, POD_CREATE_RECHECK_MS, podCreateSuspect, type Action, type MissingReference, type Observed, type PlannerSettings } from "./planner/index.ts";

/** Read-only views of the informer caches the reconciler needs. */
export interface Caches {
  getFineTuneJob(key: string): FineTuneJobObject | undefined;
  /** Children carrying `finetune.dev/job-name=<name>` in the namespace. */
  jobsOf(namespace: string, name: string): V1Job[];
  podsOf(namespace: string, name: string): V1Pod[];
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
  service(namespace: string, name: string): V1Service | undefined;
  claim(namespace: string, name: string): V1PersistentVolumeClaim | undefined;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcilerDeps {
  api: KubeApi;
  caches: Caches;
  settings: PlannerSettings;
  logger: Logger;
  identity: string;
  now?: () => Date;
  /** Own writes not yet in the caches; the controller feeds it informer events (a private one when unset: tests). */
  expectations?: Expectations<V1Job>;
  /** Called with every decision (metrics: phase transitions, stage durations). */
  onDecision?: (ftj: FineTuneJobObject, status: FineTuneJobObject["status"]) => void;
  /** Reconcile a job again soon (the controller's queue): a background lookup found something its last pass did not see. */
  requeue?: (key: string) => void;
}

let reconcileCounter = 0;

/** How long a found existing claim is taken as existing without asking the API server again. */
export const CLAIM_SEEN_TTL_MS = 60_000;
const CLAIMS_SEEN_MAX = 1024;

export class Reconciler {
  readonly #deps: ReconcilerDeps;
  readonly #expect: Expectations<V1Job>;

  /** Repeats become counts on one Event; a flood per object is cut (client-go's correlator). */
  readonly #events: EventRecorder;
  /**
   * Each job's validated spec, by `<uid>@<generation>` (the API server moves the generation with every spec change;
   * validating the spec on every reconcile was about 8 % of the operator's CPU in a burst of 100). Frozen, since
   * reconciles share them.
   */
  readonly #validatedSpecs = new VersionedMemo<JobValidation>();
  /** Each job's rendered config.yaml, parsed, by the ConfigMap's resourceVersion (config.ts). */
  readonly #renderedConfigs = new VersionedMemo<Record<string, unknown>>();
  /** When this replica last wrote each job's status (memory only: after a restart the first write is not held back). */
  readonly #lastStatusWrite = new Map<string, number>();
  /**
   * The API server's refusals of this replica's creates, by job key, then `Kind/name` (memory only: another replica
   * finds a lasting refusal again on its first try). The planner reports those it still wants to create.
   */
  readonly #createRefusals = new Map<string, Map<string, string>>();
  /** Existing output claims (`namespace/name`) seen lately, and when: jobs sharing one claim check it once a minute, not each. */
  readonly #claimsSeen = new Map<string, number>();
  /** FailedCreate Events of podless Jobs, listed in the background, a few at a time. */
  readonly #podCreates: PodCreateDiagnosis;

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
    this.#expect = deps.expectations ?? new Expectations<V1Job>();
    this.#events = new EventRecorder(
      { create: (e) => deps.api.createEvent(e), patch: (ns, name, body) => deps.api.patchEvent(ns, name, body) },
      deps.now ? { now: () => deps.now!().getTime() } : {},
    );
    this.#podCreates = new PodCreateDiagnosis({
      lookup: (ns, jobName) => deps.api.podCreateFailure(ns, jobName),
      requeue: (key) => deps.requeue?.(key),
      logger: deps.logger,
      recheckMs: POD_CREATE_RECHECK_MS,
      ...(deps.now ? { now: () => deps.now!().getTime() } : {}),
    });
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const ftj = this.#deps.caches.getFineTuneJob(key);
    if (!ftj) {
      this.#expect.forget(key);
      this.#lastStatusWrite.delete(key);
      this.#createRefusals.delete(key);
      this.#validatedSpecs.forget(key);
      this.#renderedConfigs.forget(key);
      return {}; // deleted: garbage collection removes its children
    }
    // Children created right after a status write send events that can arrive before the job's own update: deciding
    // from the job as it was before the write would only repeat the write (409 Conflict) and the creates (409
    // AlreadyExists). The update event the write causes enqueues the job again; the requeue is a safety net.
    if (this.#expect.awaitingStatusWrite(key, ftj.metadata.resourceVersion)) return { requeueAfterMs: this.#expect.timeoutMs };
    const reconcileId = (++reconcileCounter).toString(36);
    const log = this.#deps.logger.child({ job: key, reconcileId });
    return traced("reconcile FineTuneJob", () => this.#reconcile(ftj, log), { "finetune.job": key, "finetune.reconcile_id": reconcileId });
  }

  #validatedSpec(ftj: FineTuneJobObject): JobValidation {
    const { uid, generation, name } = ftj.metadata;
    if (!uid || generation === undefined) return validateNameAndSpec(name, ftj.spec);
    const key = `${ftj.metadata.namespace}/${name}`;
    return this.#validatedSpecs.get(key, `${uid}@${generation}`, () => deepFreeze(validateNameAndSpec(name, ftj.spec)));
  }

  /** Observe, decide, write status (first), act: each step idempotent. */
  async #reconcile(ftj: FineTuneJobObject, log: Logger): Promise<ReconcileResult> {
    const decision = decide(await this.#observe(ftj));
    trace.getActiveSpan()?.setAttributes({ "finetune.phase": decision.status.phase ?? "", "finetune.actions": decision.actions.length });
    if (decision.statusChanged) {
      const key = `${ftj.metadata.namespace}/${ftj.metadata.name}`;
      const holdMs = countsOnlyHold(ftj.status, decision, this.#lastStatusWrite.get(key), Date.now());
      if (holdMs > 0) return { requeueAfterMs: Math.min(holdMs, decision.requeueAfterMs ?? holdMs) };
      const written = await this.#writeStatus(ftj, decision.status, log);
      if (written !== "gone" && written !== "conflict") this.#lastStatusWrite.set(key, Date.now());
      if (written === "gone") return {};
      // Our cache was behind: decide again from fresher state; act on nothing decided from stale state.
      if (written === "conflict") return { requeueAfterMs: 200 };
      this.#deps.onDecision?.(ftj, decision.status);
    }
    // Events first: they tell what was decided, and an action the API server refuses (it throws) must not swallow them.
    for (const event of decision.events) this.#emit(ftj, event.type, event.reason, event.message, log);
    for (const batch of executionBatches(decision.actions)) await Promise.all(batch.map((action) => this.#execute(ftj, action, log)));
    await this.#copySmokeAnswers(ftj, decision.status, log);
    if (decision.statusChanged || decision.actions.length) {
      log.info({ phase: decision.status.phase, actions: decision.actions.map(describe), requeueAfterMs: decision.requeueAfterMs }, "reconciled");
    }
    return decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs } : {};
  }

  /**
   * Whether a claim the job names (storage.output.existingClaim) exists. Only a found claim is remembered, for
   * CLAIM_SEEN_TTL_MS: a job applied before its claim (GitOps order) asks again on every try, while a thousand jobs
   * writing into one team claim cost one LIST a minute. A claim deleted within that minute shows as the pod's
   * scheduling failure instead.
   */
  async #claimExists(namespace: string, name: string, nowMs: number): Promise<boolean> {
    const key = `${namespace}/${name}`;
    const seen = this.#claimsSeen.get(key);
    if (seen !== undefined && nowMs - seen < CLAIM_SEEN_TTL_MS) return true;
    const exists = await this.#deps.api.claimExists(namespace, name);
    if (exists) {
      this.#claimsSeen.set(key, nowMs);
      if (this.#claimsSeen.size > CLAIMS_SEEN_MAX) this.#claimsSeen.delete(this.#claimsSeen.keys().next().value!);
    } else this.#claimsSeen.delete(key);
    return exists;
  }

  /** What the planner decides from: the job validated, its config resolved, its children as the caches show them. */
  async #observe(ftj: FineTuneJobObject): Promise<Observed> {
    const { caches, settings, api } = this.#deps;
    const now = this.#deps.now?.() ?? new Date();
    const ns = ftj.metadata.namespace ?? "";
    const name = ftj.metadata.name ?? "";
    const { spec, issues: specIssues } = this.#validatedSpec(ftj);
    const issues: ValidationIssue[] = [...specIssues];
    const rendered = caches.configMap(ns, configMapName(name));
    const needsValidation = getCondition(ftj.status?.conditions, "Validated")?.observedGeneration !== ftj.metadata.generation;
    const missing: MissingReference[] = [];

    // The Axolotl config the run uses (the rendered copy once it exists, else the user's), with its issues.
    const resolved = await resolveAxolotlConfig({
      namespace: ns,
      spec,
      rendered,
      needsValidation,
      started: Boolean(ftj.status?.specHash),
      getConfigMap: (namespace, cm) => api.getConfigMap(namespace, cm),
      renderedMemo: { get: (version, parse) => this.#renderedConfigs.get(`${ns}/${name}`, version, parse) },
    });
    const axolotlConfig = resolved.axolotlConfig;
    issues.push(...resolved.issues);
    if (resolved.missingConfigMap) missing.push({ kind: "ConfigMap", ...resolved.missingConfigMap });
    const existingClaim = spec?.storage.output.existingClaim;
    if (existingClaim && !ftj.status?.specHash && !(await this.#claimExists(ns, existingClaim, now.getTime()))) {
      missing.push({ kind: "PersistentVolumeClaim", name: existingClaim, path: "spec.storage.output.existingClaim" });
    }

    return {
      ftj,
      ...(missing.length > 0 ? { missing } : {}),
      validation: { ...(spec ? { spec } : {}), issues },
      ...(axolotlConfig ? { axolotlConfig } : {}),
      children: {
        configMap: rendered !== undefined,
        launcher: caches.configMap(ns, launcherConfigMapName(settings.launcherSource)) !== undefined,
        service: caches.service(ns, serviceName(name)) !== undefined,
        ...(caches.claim(ns, outputClaimName(name)) ? { claim: caches.claim(ns, outputClaimName(name))! } : {}),
        jobs: this.#observedJobs(`${ns}/${name}`, caches.jobsOf(ns, name)),
        pods: caches.podsOf(ns, name),
      },
      ...this.#podCreateFailures(`${ns}/${name}`, ns, caches.jobsOf(ns, name), caches.podsOf(ns, name), now),
      ...(this.#createRefusals.has(`${ns}/${name}`) ? { createRefusals: Object.fromEntries(this.#createRefusals.get(`${ns}/${name}`)!) } : {}),
      settings,
      now,
    };
  }

  /** Writes the decided status with the resourceVersion it was decided from (a stale cache loses with a conflict). */
  async #writeStatus(ftj: FineTuneJobObject, status: FineTuneJobObject["status"], log: Logger): Promise<"written" | "gone" | "conflict"> {
    try {
      const written = await this.#deps.api.replaceStatus({ ...ftj, status });
      const before = ftj.metadata.resourceVersion;
      // Only a write that produced a new resourceVersion causes an update event to wait for.
      if (before && written?.metadata?.resourceVersion && written.metadata.resourceVersion !== before) {
        this.#expect.expectStatusWrite(`${ftj.metadata.namespace}/${ftj.metadata.name}`, before, written.metadata.resourceVersion);
      }
      return "written";
    } catch (err) {
      if (isNotFound(err)) return "gone";
      if (isConflict(err)) {
        log.debug("status conflict; requeue");
        return "conflict";
      }
      throw err;
    }
  }

  /**
   * Refusals found in the FailedCreate Events of Jobs that have had no pod for POD_CREATE_CHECK_MS (a refused pod
   * create is visible nowhere else). The LISTs run in the background (pod-create-diagnosis.ts): this pass uses what
   * they found so far, and a new finding requeues the job.
   */
  #podCreateFailures(key: string, ns: string, jobs: readonly V1Job[], pods: readonly V1Pod[], now: Date): { podCreateFailures?: Record<string, string> } {
    const out: Record<string, string> = {};
    for (const job of jobs) {
      const jobName = job.metadata?.name ?? "";
      if (!podCreateSuspect(job, pods, now.getTime())) continue;
      const message = this.#podCreates.known(key, ns, jobName);
      if (message) out[jobName] = message;
    }
    return Object.keys(out).length > 0 ? { podCreateFailures: out } : {};
  }

  /** The smoke test's answers in full into their ConfigMap (once judged); a failure is retried by a later reconcile. */
  async #copySmokeAnswers(ftj: FineTuneJobObject, status: FineTuneJobObject["status"], log: Logger): Promise<void> {
    const { api, caches } = this.#deps;
    try {
      const done = await recordSmokeAnswers(ftj, status, {
        configMap: (ns, name) => caches.configMap(ns, name),
        podsOf: (ns, name) => caches.podsOf(ns, name),
        readPodLogTail: (ns, name, opts) => api.readPodLogTail(ns, name, opts),
        create: (obj) => api.create(obj),
      });
      if (done) log.info({ source: done.source }, "smoke-test answers copied into their ConfigMap");
    } catch (err) {
      if (!isAlreadyExists(err)) log.warn({ err: errorMessage(err) }, "could not copy the smoke-test answers into their ConfigMap");
    }
  }

  /**
   * The cached Jobs plus the ones created here that the cache does not show yet, and those deleted here shown as being
   * deleted (read-your-writes): the planner sees them as just created or deleted instead of asking again, because a
   * Job's watch event can trail the FineTuneJob's (a Job deleted in the foreground stays until its pods are gone).
   */
  #observedJobs(key: string, cached: V1Job[]): readonly V1Job[] {
    const pending = this.#expect.pendingCreations(key, cached);
    return this.#expect.withPendingDeletions(key, pending.length > 0 ? [...cached, ...pending] : cached);
  }

  /** Remembers (message) or forgets (undefined) the API server's refusal of one create of this job. */
  #noteCreate(ftj: FineTuneJobObject, object: Creatable, message: string | undefined): void {
    const key = `${ftj.metadata.namespace}/${ftj.metadata.name}`;
    const known = this.#createRefusals.get(key);
    if (message === undefined) {
      known?.delete(createKey(object));
      if (known?.size === 0) this.#createRefusals.delete(key);
      return;
    }
    if (known) known.set(createKey(object), message);
    else this.#createRefusals.set(key, new Map([[createKey(object), message]]));
  }

  async #execute(ftj: FineTuneJobObject, action: Action, log: Logger): Promise<void> {
    const { api } = this.#deps;
    switch (action.kind) {
      case "create":
        try {
          const created = await api.create(action.object);
          this.#noteCreate(ftj, action.object, undefined);
          if (action.object.kind === "Job") {
            // What the API server answered, as the cache would keep it, with no status yet: the planner treats it as just created.
            const job = (created && typeof created === "object" ? created : action.object) as V1Job;
            this.#expect.expectCreation(
              `${ftj.metadata.namespace}/${ftj.metadata.name}`,
              trimJob({ metadata: { ...job.metadata }, ...(job.spec ? { spec: job.spec } : {}), status: {} }),
            );
          }
        } catch (err) {
          if (isAlreadyExists(err)) return; // a lagging cache: it is there already
          if (isRefusal(err)) this.#noteCreate(ftj, action.object, errorMessage(err));
          throw err;
        }
        return;
      case "delete":
        try {
          await api.deleteJob(action.namespace, action.name);
          this.#expect.expectDeletion(`${ftj.metadata.namespace}/${ftj.metadata.name}`, action.name);
          this.#emit(ftj, "Normal", Reason.JobDeleted, `deleted Job ${action.name}: ${action.reason}`, log);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        return;
      case "deleteFineTuneJob":
        try {
          this.#emit(ftj, "Normal", Reason.TTLExpired, action.reason, log);
          await api.deleteFineTuneJob(ftj.metadata.namespace ?? "", ftj.metadata.name ?? "");
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        return;
    }
  }

  /** Events are best effort: losing one must never fail or repeat a reconcile. */
  #emit(ftj: FineTuneJobObject, type: "Normal" | "Warning", reason: Reason, message: string, log: Logger): void {
    const event = buildEvent(ftj, type, reason, message, this.#deps.now?.() ?? new Date(), this.#deps.identity);
    this.#events.record(event).catch((err: unknown) => log.warn({ err: errorMessage(err), reason }, "could not record event"));
  }
}

function describe(action: Action): string {
  if (action.kind === "create") return `create ${action.object.kind}/${action.object.metadata?.name}`;
  if (action.kind === "delete") return `delete Job/${action.name}`;
  return "delete FineTuneJob";
}

/**
 * Actions in order, with runs of creates of independent base objects (claim, ConfigMap, Service) grouped to run
 * concurrently: one round trip instead of three. Everything else, a Job above all, waits for what precedes it, so
 * a Job is never created unless the objects its pods mount were.
 */
export function executionBatches(actions: readonly Action[]): Action[][] {
  const batches: Action[][] = [];
  for (const action of actions) {
    const independent = action.kind === "create" && action.object.kind !== "Job";
    const last = batches[batches.length - 1];
    if (independent && last?.every((a) => a.kind === "create" && a.object.kind !== "Job")) last.push(action);
    else batches.push([action]);
  }
  return batches;
}

/**
 * Pod counts settle in bursts (a gang's pods created, started and ready one after another, a second apart): a
 * status change that is only counts (stages' active/ready and the message that reports them), with nothing to act
 * on or announce, waits until STATUS_COALESCE_MS after this replica's last write of that job, then goes out as one
 * write with the counts as they are by then. Returns how long to hold the write (0: write now).
 */
export const STATUS_COALESCE_MS = 2_000;

export function countsOnlyHold(
  before: FineTuneJobObject["status"],
  decision: { status: FineTuneJobObject["status"]; actions: readonly unknown[]; events: readonly unknown[] },
  lastWriteMs: number | undefined,
  nowMs: number,
): number {
  if (lastWriteMs === undefined || decision.actions.length > 0 || decision.events.length > 0) return 0;
  const wait = lastWriteMs + STATUS_COALESCE_MS - nowMs;
  if (wait <= 0) return 0;
  return isDeepStrictEqual(withoutCounts(before), withoutCounts(decision.status)) ? wait : 0;
}

function withoutCounts(status: FineTuneJobObject["status"]): unknown {
  const copy = JSON.parse(JSON.stringify(status ?? {})) as { message?: string; stages?: Record<string, { active?: number; ready?: number }> };
  delete copy.message;
  for (const stage of Object.values(copy.stages ?? {})) {
    delete stage.active;
    delete stage.ready;
  }
  return copy;
}
