/**
 * The operator's only door to the API server. Every call is counted by verb
 * and resource (finetune_api_requests_total), so the cost per FineTuneJob is
 * visible, and wrapped in a trace span.
 */
import type { CoreV1Event, KubernetesListObject, KubernetesObject, V1ConfigMap } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import { traced } from "../observability/tracing.ts";
import type { KubeClient, RequestOptions } from "./client.ts";
import { statusCode } from "./errors.ts";

export interface ApiCallObserver {
  (verb: string, resource: string, code: number | undefined): void;
}

/** Collection paths of the kinds the operator writes. */
const core = (namespace: string, resource: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/${resource}`;
const batch = (namespace: string, resource: string) => `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/${resource}`;
const ftjs = (namespace: string) => `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}`;
const one = (collection: string, name: string) => `${collection}/${encodeURIComponent(name)}`;

/** The child kinds the operator creates, by kind: the resource name for metrics and the collection path. */
const CREATABLE: Record<string, { resource: string; path: (namespace: string) => string }> = {
  Job: { resource: "jobs", path: (ns) => batch(ns, "jobs") },
  ConfigMap: { resource: "configmaps", path: (ns) => core(ns, "configmaps") },
  Service: { resource: "services", path: (ns) => core(ns, "services") },
  PersistentVolumeClaim: { resource: "persistentvolumeclaims", path: (ns) => core(ns, "persistentvolumeclaims") },
};

const MERGE_PATCH = "application/merge-patch+json";

export class KubeApi {
  readonly #client: KubeClient;
  readonly #observe: ApiCallObserver;

  constructor(client: KubeClient, observe: ApiCallObserver = () => {}) {
    this.#client = client;
    this.#observe = observe;
  }

  async #call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    return traced(
      `k8s ${verb} ${resource}`,
      async (span) => {
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
      },
      { "k8s.verb": verb, "k8s.resource": resource },
    );
  }

  #json<T>(verb: string, resource: string, method: string, path: string, opts?: RequestOptions): Promise<T> {
    return this.#call(verb, resource, () => this.#client.request<T>(method, path, opts));
  }

  /** Creates a child object of one of the kinds the operator owns. */
  create(obj: KubernetesObject): Promise<unknown> {
    const kind = CREATABLE[obj.kind ?? ""];
    if (!kind) throw new Error(`the operator does not create ${obj.kind}`);
    // The answer is read for its metadata and spec only (a Job's, as the cache would keep it).
    return this.#json("create", kind.resource, "POST", kind.path(obj.metadata?.namespace ?? ""), { body: obj, dropManagedFields: true });
  }

  /**
   * Foreground propagation: the API server keeps the Job (deletionTimestamp set) until garbage collection has removed
   * its pods, so the Job's presence tells the planner that a rank of it may still run.
   */
  deleteJob(namespace: string, name: string): Promise<unknown> {
    return this.#json("delete", "jobs", "DELETE", one(batch(namespace, "jobs"), name), { query: { propagationPolicy: "Foreground" }, dropManagedFields: true });
  }

  getConfigMap(namespace: string, name: string): Promise<V1ConfigMap> {
    return this.#json("get", "configmaps", "GET", one(core(namespace, "configmaps"), name));
  }

  /**
   * Whether a claim exists. A LIST by name, not a GET: the operator's role has list/watch on claims (its informer
   * sees only the claims it labels), and one filtered LIST per check, only while a job waits for it, is cheap.
   */
  async claimExists(namespace: string, name: string): Promise<boolean> {
    const list = await this.#json<KubernetesListObject<KubernetesObject>>("list", "persistentvolumeclaims", "GET", core(namespace, "persistentvolumeclaims"), {
      query: { fieldSelector: `metadata.name=${name}`, limit: 1 },
    });
    return (list.items ?? []).length > 0;
  }

  /**
   * The newest FailedCreate message the Job controller recorded for a Job (Pod Security, ResourceQuota, LimitRange,
   * an unknown PriorityClass: pod creates the API server refused), or undefined. Such refusals show only as Events.
   */
  async podCreateFailure(namespace: string, jobName: string): Promise<string | undefined> {
    const list = await this.#json<KubernetesListObject<CoreV1Event>>("list", "events", "GET", core(namespace, "events"), {
      query: { fieldSelector: `involvedObject.kind=Job,involvedObject.name=${jobName},reason=FailedCreate` },
    });
    // Raw JSON: the timestamps are RFC 3339 strings.
    const time = (e: CoreV1Event) => new Date(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? 0).getTime();
    const newest = (list.items ?? []).sort((a, b) => time(b) - time(a))[0];
    return newest?.message?.trim();
  }

  /** Replaces status through the status subresource; the resourceVersion in `obj` makes a stale write fail with 409. */
  replaceStatus(obj: FineTuneJobObject): Promise<FineTuneJobObject> {
    const { namespace = "", name = "" } = obj.metadata;
    return this.#json("update", "finetunejobs/status", "PUT", `${one(ftjs(namespace), name)}/status`, { body: obj, dropManagedFields: true });
  }

  /** Merge patch of part of status (progress reports): touches only the fields given. */
  patchStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<unknown> {
    return this.#json("patch", "finetunejobs/status", "PATCH", `${one(ftjs(namespace), name)}/status`, { body: { status }, contentType: MERGE_PATCH });
  }

  /**
   * The last lines of a container's log (the log-tail progress fallback). The
   * API server proxies this to the pod's kubelet; tailLines and limitBytes
   * bound the work on both and the size of the answer.
   */
  readPodLogTail(namespace: string, name: string, opts: { container?: string; tailLines: number; limitBytes: number }): Promise<string> {
    return this.#call("get", "pods/log", () =>
      this.#client.requestText("GET", `${one(core(namespace, "pods"), name)}/log`, {
        query: { tailLines: opts.tailLines, limitBytes: opts.limitBytes, container: opts.container },
      }),
    );
  }

  deleteFineTuneJob(namespace: string, name: string): Promise<unknown> {
    return this.#json("delete", "finetunejobs", "DELETE", one(ftjs(namespace), name), { query: { propagationPolicy: "Background" } });
  }

  createEvent(event: CoreV1Event): Promise<unknown> {
    return this.#json("create", "events", "POST", core(event.metadata?.namespace ?? "", "events"), { body: event });
  }

  /** Merge patch of a recorded Event: a repeat counted on it (count, lastTimestamp), as client-go's recorder does. */
  patchEvent(namespace: string, name: string, body: { count: number; lastTimestamp: Date }): Promise<unknown> {
    return this.#json("patch", "events", "PATCH", one(core(namespace, "events"), name), { body, contentType: MERGE_PATCH });
  }
}
