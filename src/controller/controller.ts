/**
 * Wires informers, the work queue and the reconciler. Event handlers only
 * compute a key and enqueue it; the reconcile rebuilds everything from the
 * caches (level-triggered). Child objects are watched with a label selector,
 * so the operator caches only what it owns.
 */
import type { KubernetesObject, V1ConfigMap, V1Job, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { GROUP, LABEL_COMPONENT, LABEL_JOB_NAME, LABEL_MANAGED_BY, MANAGED_BY, PLURAL, VERSION } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { KubeApi } from "../kube/api.ts";
import type { KubeClient } from "../kube/client.ts";
import { Expectations } from "../runtime/expectations.ts";
import { ResilientInformer } from "../runtime/informer.ts";
import { WorkQueue, type QueueMetrics } from "../runtime/workqueue.ts";
import { changedForController, trimClaim, trimConfigMap, trimFineTuneJob, trimJob, trimPod, trimService } from "./cache-shape.ts";
import { Reconciler, type Caches } from "./reconciler.ts";
import type { PlannerSettings } from "./planner/index.ts";

export interface ControllerOptions {
  /** The informers' connection to the API server. */
  client: KubeClient;
  api: KubeApi;
  settings: PlannerSettings;
  logger: Logger;
  identity: string;
  /** Watch one namespace only (tests, namespaced installs); all namespaces when unset. */
  namespace?: string;
  concurrency?: number;
  resyncIntervalMs?: number;
  /** How long a child's change waits for its siblings before the owner is reconciled (CHILD_EVENT_BATCH_MS). */
  childEventBatchMs?: number;
  queueMetrics?: QueueMetrics;
  onDecision?: ConstructorParameters<typeof Reconciler>[0]["onDecision"];
  /** Called after every reconcile with its outcome and duration (metrics). */
  onReconciled?: (outcome: "success" | "error" | "requeue_after", seconds: number) => void;
}

const OWNED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_JOB_NAME}`;
const MANAGED_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
const BY_JOB = "byJob";
/**
 * A child's change (a pod, a Job, a claim) reaches the owner's reconcile this much later, together with whatever else
 * changed meanwhile. One transition moves several objects within about a second: a pod runs, then the Job
 * controller, which batches pod changes for 1 s itself, counts it ready; a pod exits, then its Job finishes. Each
 * reconciled alone cost a reconcile apiece and at times a status write for a state that lasted a second.
 */
export const CHILD_EVENT_BATCH_MS = 1000;

function collection(group: string, version: string, resource: string, namespace?: string): string {
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  return namespace ? `${base}/namespaces/${namespace}/${resource}` : `${base}/${resource}`;
}

const ownerKey = (obj: KubernetesObject): string[] => {
  const job = obj.metadata?.labels?.[LABEL_JOB_NAME];
  return job ? [`${obj.metadata?.namespace}/${job}`] : [];
};

export class Controller {
  readonly queue: WorkQueue;
  readonly ftjs: ResilientInformer<FineTuneJobObject & KubernetesObject>;
  readonly jobs: ResilientInformer<V1Job>;
  readonly pods: ResilientInformer<V1Pod>;
  readonly configMaps: ResilientInformer<V1ConfigMap>;
  readonly services: ResilientInformer<V1Service>;
  readonly claims: ResilientInformer<V1PersistentVolumeClaim>;
  readonly reconciler: Reconciler;
  readonly #opts: ControllerOptions;
  #stopResync: (() => void) | undefined;

  constructor(opts: ControllerOptions) {
    this.#opts = opts;
    const { client, namespace, logger } = opts;
    const informer = <T extends KubernetesObject>(name: string, path: string, labelSelector?: string, transform?: (o: T) => T) =>
      new ResilientInformer<T>({ client, path, name, logger, ...(labelSelector ? { labelSelector } : {}), ...(transform ? { transform } : {}) });
    this.ftjs = informer("finetunejobs", collection(GROUP, VERSION, PLURAL, namespace), undefined, trimFineTuneJob);
    // Caches keep only what the controller reads (cache-shape.ts): thousands of jobs must fit in a small operator.
    this.jobs = informer("jobs", collection("batch", "v1", "jobs", namespace), OWNED_SELECTOR, trimJob);
    this.pods = informer("pods", collection("", "v1", "pods", namespace), OWNED_SELECTOR, trimPod);
    // Also the shared launcher ConfigMaps (no job name); trimConfigMap drops their 75 KB payload from the cache.
    this.configMaps = informer("configmaps", collection("", "v1", "configmaps", namespace), MANAGED_SELECTOR, trimConfigMap);
    this.services = informer("services", collection("", "v1", "services", namespace), OWNED_SELECTOR, trimService);
    this.claims = informer("persistentvolumeclaims", collection("", "v1", "persistentvolumeclaims", namespace), LABEL_JOB_NAME, trimClaim);
    for (const inf of [this.jobs, this.pods] as ResilientInformer<KubernetesObject>[]) inf.addIndex(BY_JOB, ownerKey);

    // Own writes the caches do not show yet, cleared by the events that show them (the reconciler records them).
    const expectations = new Expectations<V1Job>();
    const keyOf = (obj: KubernetesObject) => `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    this.ftjs.on("add", (obj) => expectations.statusObserved(keyOf(obj), obj.metadata?.resourceVersion));
    this.ftjs.on("delete", (obj) => expectations.forget(keyOf(obj)));
    this.jobs.on("add", (job) => {
      for (const owner of ownerKey(job)) expectations.creationObserved(owner, job.metadata?.name);
    });

    this.queue = new WorkQueue({ name: "finetunejob", logger, ...(opts.queueMetrics ? { metrics: opts.queueMetrics } : {}) });
    const enqueueSelf = (obj: KubernetesObject) => this.queue.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
    this.ftjs.on("add", enqueueSelf);
    this.ftjs.on("update", (obj, old) => {
      // The echo of the reconciler's own status write has nothing new to decide from (Expectations.statusObserved).
      const echo = expectations.statusObserved(keyOf(obj), obj.metadata?.resourceVersion);
      if (obj.metadata?.resourceVersion !== old.metadata?.resourceVersion && !echo) enqueueSelf(obj);
    });
    this.ftjs.on("delete", enqueueSelf);
    const batchMs = opts.childEventBatchMs ?? CHILD_EVENT_BATCH_MS;
    const enqueueOwner = (obj: KubernetesObject) => {
      for (const key of ownerKey(obj)) this.queue.addAfter(key, batchMs);
      // The shared launcher ConfigMap belongs to no one job: when it appears or goes, every job of its namespace may care.
      if (obj.metadata?.labels?.[LABEL_COMPONENT] === "launcher") {
        for (const ftj of this.ftjs.list()) if (ftj.metadata?.namespace === obj.metadata.namespace) enqueueSelf(ftj);
      }
    };
    for (const inf of [this.jobs, this.pods, this.configMaps, this.services, this.claims] as ResilientInformer<KubernetesObject>[]) {
      inf.on("add", enqueueOwner);
      // Caches hold trimmed objects: an update the trim makes invisible (a claim being bound) is no reason to reconcile.
      inf.on("update", (obj, old) => {
        if (changedForController(obj, old)) enqueueOwner(obj);
      });
      inf.on("delete", enqueueOwner);
    }

    const caches: Caches = {
      getFineTuneJob: (key) => this.ftjs.getByKey(key),
      jobsOf: (ns, name) => this.jobs.byIndex(BY_JOB, `${ns}/${name}`),
      podsOf: (ns, name) => this.pods.byIndex(BY_JOB, `${ns}/${name}`),
      configMap: (ns, name) => this.configMaps.get(ns, name),
      service: (ns, name) => this.services.get(ns, name),
      claim: (ns, name) => this.claims.get(ns, name),
    };
    this.reconciler = new Reconciler({
      api: opts.api,
      caches,
      settings: opts.settings,
      logger,
      identity: opts.identity,
      expectations,
      ...(opts.onDecision ? { onDecision: opts.onDecision } : {}),
      requeue: (key) => this.queue.add(key),
    });
  }

  get informers(): ResilientInformer<KubernetesObject>[] {
    return [this.ftjs, this.jobs, this.pods, this.configMaps, this.services, this.claims] as ResilientInformer<KubernetesObject>[];
  }

  /** The cached pods of one FineTuneJob (by the job-name label index). */
  podsOf(namespace: string, name: string): V1Pod[] {
    return this.pods.byIndex(BY_JOB, `${namespace}/${name}`);
  }

  /** Starts the caches (all replicas keep them warm, so a new leader acts at once). */
  async startCaches(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  /** Starts reconciling (leader only). */
  startWorkers(): void {
    const observe = this.#opts.onReconciled;
    this.queue.start(
      async (key) => {
        const start = performance.now();
        try {
          const result = await this.reconciler.reconcile(key);
          observe?.(result.requeueAfterMs !== undefined ? "requeue_after" : "success", (performance.now() - start) / 1000);
          return result;
        } catch (err) {
          observe?.("error", (performance.now() - start) / 1000);
          throw err;
        }
      },
      { concurrency: this.#opts.concurrency ?? 4 },
    );
    for (const key of this.ftjs.keys()) this.queue.add(key);
    this.#stopResync = this.queue.resyncEvery(this.#opts.resyncIntervalMs ?? 10 * 60_000, () => this.ftjs.keys());
  }

  async stop(drainTimeoutMs = 10_000): Promise<void> {
    this.#stopResync?.();
    await this.queue.shutdown({ drainTimeoutMs });
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
