/**
 * The operator's only door to the API server. Every call is counted by verb
 * and resource (finetune_api_requests_total), so the cost per FineTuneJob is
 * visible, and wrapped in a trace span.
 */
import {
  BatchV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type KubernetesObject,
  type CoreV1Event, type V1ConfigMap, type V1Job, type V1PersistentVolumeClaim, type V1Service,
} from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import { traced } from "../observability/tracing.ts";
import { statusCode } from "./errors.ts";

export interface ApiCallObserver {
  (verb: string, resource: string, code: number | undefined): void;
}

export class KubeApi {
  readonly core: CoreV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
  readonly #observe: ApiCallObserver;

  constructor(kc: KubeConfig, observe: ApiCallObserver = () => {}) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.batch = kc.makeApiClient(BatchV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.#observe = observe;
  }

  async #call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    return traced(`k8s ${verb} ${resource}`, async (span) => {
      try {
        const result = await fn();
        this.#observe(verb, resource, 200);
        span.setAttribute("k8s.status_code", 200);
        return result;
      } catch (err) {
        const code = statusCode(err);
        this.#observe(verb, resource, code);
        if (typeof code === "number") span.setAttribute("k8s.status_code", code);
        throw err;
      }
    }, { "k8s.verb": verb, "k8s.resource": resource });
  }

  /** Creates a child object of one of the kinds the operator owns. */
  create(obj: KubernetesObject): Promise<unknown> {
    const namespace = obj.metadata?.namespace ?? "";
    switch (obj.kind) {
      case "Job":
        return this.#call("create", "jobs", () => this.batch.createNamespacedJob({ namespace, body: obj as V1Job }));
      case "ConfigMap":
        return this.#call("create", "configmaps", () => this.core.createNamespacedConfigMap({ namespace, body: obj as V1ConfigMap }));
      case "Service":
        return this.#call("create", "services", () => this.core.createNamespacedService({ namespace, body: obj as V1Service }));
      case "PersistentVolumeClaim":
        return this.#call("create", "persistentvolumeclaims", () => this.core.createNamespacedPersistentVolumeClaim({ namespace, body: obj as V1PersistentVolumeClaim }));
      default:
        throw new Error(`the operator does not create ${obj.kind}`);
    }
  }

  /** Background propagation: the Job goes at once and garbage collection removes its pods (the planner waits for them). */
  deleteJob(namespace: string, name: string): Promise<unknown> {
    return this.#call("delete", "jobs", () => this.batch.deleteNamespacedJob({ namespace, name, propagationPolicy: "Background" }));
  }

  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    return this.#call("get", "configmaps", () => this.core.readNamespacedConfigMap({ namespace, name }));
  }

  /**
   * Whether a claim exists. A LIST by name, not a GET: the operator's role has list/watch on claims (its informer
   * sees only the claims it labels), and one filtered LIST per check, only while a job waits for it, is cheap.
   */
  async claimExists(namespace: string, name: string): Promise<boolean> {
    const list = await this.#call("list", "persistentvolumeclaims", () => this.core.listNamespacedPersistentVolumeClaim({ namespace, fieldSelector: `metadata.name=${name}`, limit: 1 }));
    return list.items.length > 0;
  }

  /**
   * The newest FailedCreate message the Job controller recorded for a Job (Pod Security, ResourceQuota, LimitRange,
   * an unknown PriorityClass: pod creates the API server refused), or undefined. Such refusals show only as Events.
   */
  async podCreateFailure(namespace: string, jobName: string): Promise<string | undefined> {
    const list = await this.#call("list", "events", () =>
      this.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate` }),
    );
    const time = (e: CoreV1Event) => new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
    const newest = list.items.sort((a, b) => time(b) - time(a))[0];
    return newest?.message?.trim();
  }

  /** Replaces status through the status subresource; the resourceVersion in `obj` makes a stale write fail with 409. */
  replaceStatus(obj: FineTuneJobObject): Promise<FineTuneJobObject> {
    const { namespace = "", name = "" } = obj.metadata;
    return this.#call("update", "finetunejobs/status", () =>
      this.custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: obj }),
    ) as Promise<FineTuneJobObject>;
  }

  /** Merge patch of part of status (progress reports): touches only the fields given. */
  patchStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<unknown> {
    return this.#call("patch", "finetunejobs/status", () =>
      this.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)),
    );
  }

  /**
   * The last lines of a container's log (the log-tail progress fallback). The
   * API server proxies this to the pod's kubelet; tailLines and limitBytes
   * bound the work on both and the size of the answer.
   */
  readPodLogTail(namespace: string, name: string, opts: { container?: string; tailLines: number; limitBytes: number }): Promise<string> {
    return this.#call("get", "pods/log", () =>
      this.core.readNamespacedPodLog({ namespace, name, tailLines: opts.tailLines, limitBytes: opts.limitBytes, ...(opts.container ? { container: opts.container } : {}) }),
    );
  }

  deleteFineTuneJob(namespace: string, name: string): Promise<unknown> {
    return this.#call("delete", "finetunejobs", () => this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, propagationPolicy: "Background" }));
  }

  createEvent(event: CoreV1Event): Promise<unknown> {
    return this.#call("create", "events", () => this.core.createNamespacedEvent({ namespace: event.metadata?.namespace ?? "", body: event }));
  }
}
