/**
 * Latency recorder: watches (from the harness, not the controller) the user
 * jobs, the training Jobs and the training pods of one namespace, and records
 * when each was first seen in each state, in ms. Controller specifics come
 * from the SystemUnderTest (selectors, owner of a child, terminal phase).
 */
import { Watch, type KubeConfig, type KubernetesObject, type V1Pod } from "@kubernetes/client-node";
import type { SystemUnderTest } from "../sut/types.ts";

export const ownerKey = (job: string, attempt: number) => `${job}@${attempt}`;

export interface CreateRecord {
  /** When the harness sent the create request, and when the API server answered (the object exists). */
  requestMs: number;
  createdMs: number;
}

/** Time the `size`-th pod of a gang reached a state (undefined until `size` pods did). */
export function gangTime(times: Map<string, number> | undefined, size: number): number | undefined {
  if (!times || times.size < size) return undefined;
  return [...times.values()].sort((a, b) => a - b)[size - 1];
}

export class LifecycleRecorder {
  readonly creates = new Map<string, CreateRecord>();
  /** user job → first time the controller's acknowledgement (first status) was seen. */
  readonly acknowledged = new Map<string, number>();
  /** owner key → first time a training Job of that attempt was seen. */
  readonly trainingJobSeen = new Map<string, number>();
  /** owner key → pod name → first seen (created) / first seen Running. */
  readonly podCreated = new Map<string, Map<string, number>>();
  readonly podRunning = new Map<string, Map<string, number>>();
  /** owner key → pod name → first seen with a node (spec.nodeName: the scheduler's binding). */
  readonly podScheduled = new Map<string, Map<string, number>>();
  /** user job → first time its output claim was seen Bound (controllers that make claims only). */
  readonly claimBound = new Map<string, number>();
  /** Latest training pods by name (for failing a rank). */
  readonly pods = new Map<string, V1Pod>();
  /** user job → terminal phase and when it was first seen. */
  readonly finished = new Map<string, { phase: string; atMs: number }>();
  watchErrors = 0;
  readonly #aborts: AbortController[] = [];
  #stopped = false;

  readonly kc: KubeConfig;
  readonly sut: SystemUnderTest;
  readonly namespace: string;

  constructor(kc: KubeConfig, sut: SystemUnderTest, namespace: string) {
    this.kc = kc;
    this.sut = sut;
    this.namespace = namespace;
  }

  async start(): Promise<void> {
    const ns = this.namespace;
    const r = this.sut.jobResource;
    await Promise.all([
      this.#watch(`/apis/${r.group}/${r.version}/namespaces/${ns}/${r.plural}`, undefined, (o) => this.#onJob(o)),
      this.#watch(`/apis/batch/v1/namespaces/${ns}/jobs`, this.sut.trainingJobSelector, (o) => this.#onTrainingJob(o)),
      this.#watch(`/api/v1/namespaces/${ns}/pods`, this.sut.trainingPodSelector, (o) => this.#onPod(o as V1Pod)),
      ...(this.sut.claimOwner ? [this.#watch(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, undefined, (o) => this.#onClaim(o))] : []),
    ]);
  }

  stop(): void {
    this.#stopped = true;
    for (const a of this.#aborts) a.abort();
  }

  noteCreate(job: string, rec: CreateRecord): void {
    this.creates.set(job, rec);
  }

  #onJob(o: KubernetesObject): void {
    const name = o.metadata?.name;
    if (name && !this.acknowledged.has(name) && this.sut.acknowledged(o)) this.acknowledged.set(name, Date.now());
    const phase = this.sut.terminalPhase(o);
    if (name && phase && !this.finished.has(name)) this.finished.set(name, { phase, atMs: Date.now() });
  }

  #onTrainingJob(o: KubernetesObject): void {
    const owner = this.sut.ownerOf(o);
    if (!owner) return;
    const key = ownerKey(owner.job, owner.attempt);
    if (!this.trainingJobSeen.has(key)) this.trainingJobSeen.set(key, Date.now());
  }

  #onPod(p: V1Pod): void {
    const owner = this.sut.ownerOf(p);
    const name = p.metadata?.name;
    if (!owner || !name) return;
    const now = Date.now();
    const key = ownerKey(owner.job, owner.attempt);
    this.pods.set(name, p);
    const created = this.podCreated.get(key) ?? new Map<string, number>();
    if (!created.has(name)) created.set(name, now);
    this.podCreated.set(key, created);
    if (p.spec?.nodeName) firstSeen(this.podScheduled, key, name, now);
    if (p.status?.phase === "Running") {
      const running = this.podRunning.get(key) ?? new Map<string, number>();
      if (!running.has(name)) running.set(name, now);
      this.podRunning.set(key, running);
    }
  }

  #onClaim(o: KubernetesObject): void {
    const job = this.sut.claimOwner?.(o);
    if (job && (o as { status?: { phase?: string } }).status?.phase === "Bound" && !this.claimBound.has(job)) this.claimBound.set(job, Date.now());
  }

  /** A watch that re-establishes itself from the last resourceVersion (from scratch after 410 Gone). */
  async #watch(path: string, labelSelector: string | undefined, handle: (o: KubernetesObject) => void): Promise<void> {
    let rv: string | undefined;
    const connect = async (): Promise<void> => {
      if (this.#stopped) return;
      const query: Record<string, string | boolean> = { allowWatchBookmarks: true };
      if (labelSelector) query.labelSelector = labelSelector;
      if (rv) query.resourceVersion = rv;
      const restart = () => {
        if (!this.#stopped) setTimeout(() => connect().catch(() => restart()), 200);
      };
      const abort = await new Watch(this.kc).watch(
        path,
        query,
        (type: string, obj: any) => {
          if (type === "ERROR") {
            this.watchErrors++;
            if (obj?.code === 410) rv = undefined;
            return;
          }
          if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (type === "ADDED" || type === "MODIFIED") handle(obj as KubernetesObject);
        },
        (err: unknown) => {
          if (err) this.watchErrors++;
          restart();
        },
      );
      this.#aborts.push(abort);
    };
    await connect();
  }
}

function firstSeen(times: Map<string, Map<string, number>>, key: string, name: string, now: number): void {
  const byPod = times.get(key) ?? new Map<string, number>();
  if (!byPod.has(name)) byPod.set(name, now);
  times.set(key, byPod);
}
