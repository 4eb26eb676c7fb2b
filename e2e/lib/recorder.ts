/**
 * An independent watch recorder for the chaos suite: it lists and watches FineTuneJobs, Jobs and pods of one
 * namespace with plain client-node watches (not the operator's informers, not its counters), reconnects and
 * relists whenever the API server goes away, and checks the invariants on every event it sees:
 * - a FineTuneJob's phase never moves backwards (Suspended aside);
 * - a training Job name (one attempt number) is never created twice (two uids);
 * - two training Jobs of one FineTuneJob never exist at once (not counting one being deleted);
 * - pods of two attempts of one FineTuneJob are never alive at once.
 */
import { Watch, type KubeConfig, type KubernetesObject, type V1Job, type V1Pod } from "@kubernetes/client-node";
import { GROUP, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE, PLURAL, VERSION } from "../../src/api/group.ts";
import type { FineTuneJobObject } from "../../src/api/schema.ts";

const PHASE_RANK: Record<string, number> = { Pending: 0, Preprocessing: 1, Training: 2, SmokeTesting: 3, Merging: 4, Succeeded: 5, Failed: 5 };

type Obj = KubernetesObject;
type ListFn = () => Promise<{ items: Obj[]; metadata?: { resourceVersion?: string } }>;
/** One list call per collection (typed clients are fine: only metadata, labels and status are read). */
export interface Lists {
  ftjs: ListFn;
  jobs: ListFn;
  pods: ListFn;
}

class Collection<T extends Obj> {
  readonly items = new Map<string, T>();
  reconnects = 0;
}

export class Recorder {
  readonly ftjs = new Collection<FineTuneJobObject & Obj>();
  readonly jobs = new Collection<V1Job>();
  readonly pods = new Collection<V1Pod>();
  readonly violations: string[] = [];
  /** For each violation that has them, the objects behind it as the recorder saw them. */
  readonly details: string[] = [];
  /** Highest phase rank seen per FineTuneJob. */
  readonly #phaseRank = new Map<string, number>();
  /** Training Job name -> first uid seen. */
  readonly #trainJobUids = new Map<string, string>();
  readonly #aborts: AbortController[] = [];
  #stopped = false;
  readonly #kc: KubeConfig;
  readonly #namespace: string;
  readonly #lists: Lists;

  constructor(kc: KubeConfig, namespace: string, lists: Lists) {
    this.#kc = kc;
    this.#namespace = namespace;
    this.#lists = lists;
  }

  start(): void {
    const ns = this.#namespace;
    void this.#run(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}`, this.#lists.ftjs, this.ftjs, (o) => this.#onFtj(o as FineTuneJobObject));
    void this.#run(`/apis/batch/v1/namespaces/${ns}/jobs`, this.#lists.jobs, this.jobs, (o) => this.#onJob(o as V1Job));
    void this.#run(`/api/v1/namespaces/${ns}/pods`, this.#lists.pods, this.pods, () => this.#checkPods());
  }

  stop(): void {
    this.#stopped = true;
    for (const a of this.#aborts) a.abort();
  }

  /** List, then watch from the list's resourceVersion; on any end or error, list again (the API server may be restarting). */
  async #run<T extends Obj>(path: string, listFn: ListFn, c: Collection<T>, check: (o: T) => void): Promise<void> {
    while (!this.#stopped) {
      try {
        const list = await listFn();
        c.items.clear();
        for (const o of list.items as T[]) {
          c.items.set(o.metadata!.name!, o);
          check(o);
        }
        await new Promise<void>((resolve) => {
          new Watch(this.#kc)
            .watch(
              path,
              { resourceVersion: list.metadata?.resourceVersion, allowWatchBookmarks: true },
              (type: string, obj: T) => {
                if (type === "BOOKMARK") return;
                if (type === "DELETED") c.items.delete(obj.metadata!.name!);
                else c.items.set(obj.metadata!.name!, obj);
                check(obj);
              },
              () => resolve(),
            )
            .then(
              (ac) => this.#aborts.push(ac),
              () => resolve(),
            );
        });
      } catch {
        /* the API server is away: list again below */
      }
      c.reconnects++;
      if (!this.#stopped) await new Promise((r) => setTimeout(r, 500));
    }
  }

  #onFtj(ftj: FineTuneJobObject): void {
    const name = ftj.metadata.name!;
    const phase = ftj.status?.phase;
    if (!phase || phase === "Suspended") return;
    const rank = PHASE_RANK[phase] ?? 0;
    const seen = this.#phaseRank.get(name) ?? -1;
    // After a resume the interrupted stage runs again; that is the same stage, not a step back.
    if (rank < seen) this.violations.push(`${name}: phase moved backwards to ${phase} (had reached rank ${seen})`);
    this.#phaseRank.set(name, Math.max(seen, rank));
  }

  #onJob(job: V1Job): void {
    if (job.metadata?.labels?.[LABEL_STAGE] !== "train") return;
    const name = job.metadata.name!;
    const first = this.#trainJobUids.get(name);
    if (first === undefined) this.#trainJobUids.set(name, job.metadata.uid!);
    else if (first !== job.metadata.uid) this.violations.push(`training Job ${name} (one attempt number) was created twice`);
    const owner = job.metadata.labels[LABEL_JOB_NAME];
    const live = [...this.jobs.items.values()].filter(
      (j) => j.metadata?.labels?.[LABEL_JOB_NAME] === owner && j.metadata?.labels?.[LABEL_STAGE] === "train" && !j.metadata?.deletionTimestamp,
    );
    if (live.length > 1) this.violations.push(`${owner}: two training Jobs at once: ${live.map((j) => j.metadata?.name).join(", ")}`);
  }

  #checkPods(): void {
    const alive = new Map<string, V1Pod[]>();
    for (const p of this.pods.items.values()) {
      if (p.metadata?.labels?.[LABEL_STAGE] !== "train" || p.status?.phase === "Succeeded" || p.status?.phase === "Failed") continue;
      const owner = p.metadata?.labels?.[LABEL_JOB_NAME] ?? "";
      const list = alive.get(owner);
      if (list) list.push(p);
      else alive.set(owner, [p]);
    }
    for (const [owner, pods] of alive) {
      const attempts = [...new Set(pods.map((p) => p.metadata?.labels?.[LABEL_ATTEMPT] ?? "?"))].sort();
      const v = `${owner}: pods of attempts ${attempts.join(" and ")} alive at once`;
      if (attempts.length < 2 || this.violations.includes(v)) continue;
      this.violations.push(v);
      // What each pod looked like then, and the Jobs seen, so that a rare failure can be explained from the log alone.
      const jobs = [...this.jobs.items.values()].filter((j) => j.metadata?.labels?.[LABEL_JOB_NAME] === owner);
      this.details.push(
        `${v}: pods ${pods.map(describePod).join("; ")}; Jobs ${jobs.map((j) => `${j.metadata?.name} rv ${j.metadata?.resourceVersion}${j.metadata?.deletionTimestamp ? " deleting" : ""} conditions [${(j.status?.conditions ?? []).map((c) => c.type).join(",")}]`).join("; ")}`,
      );
    }
  }

  /** Training Job names seen (attempt numbers used), per FineTuneJob. */
  trainAttempts(owner: string): string[] {
    return [...this.#trainJobUids.keys()].filter((n) => n.startsWith(`${owner}-train-`));
  }
}

function describePod(p: V1Pod): string {
  const m = p.metadata;
  return `${m?.name} rv ${m?.resourceVersion} phase ${p.status?.phase} created ${m?.creationTimestamp ? new Date(m.creationTimestamp).toISOString() : "?"}${m?.deletionTimestamp ? ` deleting since ${new Date(m.deletionTimestamp).toISOString()}` : ""}`;
}
