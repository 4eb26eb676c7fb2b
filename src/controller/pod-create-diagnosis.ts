/**
 * Why a stage Job has no pod yet, looked up off the reconcile's path. A refused pod create (Pod Security, a
 * ResourceQuota, a LimitRange, an unknown PriorityClass) shows only in the Job controller's FailedCreate Events, and
 * the only way to read them is a LIST of the namespace's Events: the API server filters them field by field, so one
 * LIST costs as much as the namespace has Events. A Job without pods is usually just a busy Job controller: in a burst
 * of 5000 jobs thousands of Jobs waited more than 10 s for their pods, every reconcile of them listed Events, each
 * LIST took over a second, and the workers spent more than a minute on them instead of on the jobs that had
 * finished. So the lookups run in the background, a few at a time, at most once per recheck interval per Job, and a
 * reconcile reads the last answer. A lookup that finds a refusal requeues the job, so it is reported at once.
 */
import type { Logger } from "pino";
import { errorMessage, statusCode } from "../kube/errors.ts";

export interface PodCreateDiagnosisOptions {
  /** The newest FailedCreate message of the Job, or undefined (KubeApi.podCreateFailure). */
  lookup: (namespace: string, jobName: string) => Promise<string | undefined>;
  /** Reconcile the owner again: a lookup found a refusal the owner has not seen. */
  requeue: (ownerKey: string) => void;
  logger: Logger;
  /** How soon the same Job is looked up again. */
  recheckMs: number;
  /** Lookups in flight at once, for the whole operator. */
  maxInFlight?: number;
  now?: () => number;
}

interface Entry {
  /** When the last lookup started (0 while none has). */
  startedAt: number;
  inFlight: boolean;
  message: string | undefined;
}

/** Past this many remembered Jobs, those not looked up for a while are dropped (they found pods or went away). */
const MAX_ENTRIES = 4096;

export class PodCreateDiagnosis {
  readonly #opts: PodCreateDiagnosisOptions;
  readonly #maxInFlight: number;
  readonly #entries = new Map<string, Entry>();
  #inFlight = 0;
  #warnedForbidden = false;

  constructor(opts: PodCreateDiagnosisOptions) {
    this.#opts = opts;
    this.#maxInFlight = opts.maxInFlight ?? 2;
  }

  /**
   * The refusal last found for this Job (undefined: none found, or not looked up yet). Starts a lookup when the last
   * one is older than the recheck interval and a slot is free; a later reconcile (the planner requeues podless Jobs)
   * asks again otherwise.
   */
  known(ownerKey: string, namespace: string, jobName: string): string | undefined {
    const key = `${namespace}/${jobName}`;
    const now = this.#now();
    let entry = this.#entries.get(key);
    if (!entry) {
      this.#prune(now);
      entry = { startedAt: 0, inFlight: false, message: undefined };
      this.#entries.set(key, entry);
    }
    if (!entry.inFlight && this.#inFlight < this.#maxInFlight && (entry.startedAt === 0 || now - entry.startedAt >= this.#opts.recheckMs)) {
      this.#start(entry, ownerKey, namespace, jobName, now);
    }
    return entry.message;
  }

  /** Lookups running now (tests, metrics). */
  get inFlight(): number {
    return this.#inFlight;
  }

  #start(entry: Entry, ownerKey: string, namespace: string, jobName: string, now: number): void {
    entry.inFlight = true;
    entry.startedAt = now;
    this.#inFlight++;
    void this.#opts
      .lookup(namespace, jobName)
      .then(
        (message) => {
          const news = message !== undefined && message !== entry.message;
          entry.message = message;
          if (news) this.#opts.requeue(ownerKey);
        },
        (err: unknown) => {
          // A role from an older chart may lack `list events`: such jobs only miss this diagnosis.
          if (statusCode(err) === 403) {
            if (!this.#warnedForbidden) this.#opts.logger.warn("cannot list Events (RBAC): refused pod creates are not reported");
            this.#warnedForbidden = true;
          } else {
            this.#opts.logger.warn({ job: `${namespace}/${jobName}`, err: errorMessage(err) }, "could not list the Job's Events; will look again");
          }
        },
      )
      .finally(() => {
        entry.inFlight = false;
        this.#inFlight--;
      });
  }

  #prune(now: number): void {
    if (this.#entries.size < MAX_ENTRIES) return;
    for (const [key, entry] of this.#entries) {
      if (!entry.inFlight && now - entry.startedAt > 4 * this.#opts.recheckMs) this.#entries.delete(key);
    }
  }

  #now(): number {
    return this.#opts.now?.() ?? Date.now();
  }
}
