/**
 * The state of one decision: the status being decided (a copy of the recorded one), the actions and Events it
 * plans, and the requeue it asks for. Policies write into it; phase, message and the train counters are written
 * into status once, by conclude() at the end (see decide.ts), from what the policies concluded.
 */
import type { V1Job, V1Pod } from "@kubernetes/client-node";
import { LABEL_ATTEMPT, LABEL_STAGE, type Stage } from "../../api/group.ts";
import type { AttemptRecord, FineTuneJobStatus, Phase, StageStatus } from "../../api/schema.ts";
import type { Creatable } from "../../render/desired.ts";
import { setCondition, type ConditionInput } from "../conditions.ts";
import type { Reason } from "../reasons.ts";
import type { Action, Observed, PlannedEvent } from "./types.ts";

export class Planner {
  readonly status: FineTuneJobStatus;
  /** The recorded status as JSON, to tell whether the decided one differs (decide.ts). */
  readonly recordedStatusJson: string;
  readonly actions: Action[] = [];
  readonly events: PlannedEvent[] = [];
  requeueAfterMs: number | undefined;
  readonly now: string;
  readonly nowMs: number;
  readonly generation: number | undefined;
  readonly obs: Observed;
  /** What this decision concluded about the job as a whole; undefined keeps the recorded phase and message. */
  outcome: { phase: Phase; message: string; notes: string[] } | undefined;

  constructor(obs: Observed) {
    this.obs = obs;
    // Status came from JSON (the API server), so a JSON round trip copies it whole, and cheaper than structuredClone.
    this.recordedStatusJson = JSON.stringify(obs.ftj.status ?? {});
    this.status = JSON.parse(this.recordedStatusJson) as FineTuneJobStatus;
    this.now = obs.now.toISOString();
    this.nowMs = obs.now.getTime();
    this.generation = obs.ftj.metadata.generation;
  }

  /** The job's phase and the one-line message that says why; a later, more specific conclusion replaces it. */
  conclude(phase: Phase, message: string): void {
    this.outcome = { phase, message, notes: [] };
  }

  /** Something the user should also read (a pod that cannot be scheduled, a refused create), appended to the message. */
  note(message: string): void {
    this.outcome?.notes.push(message);
  }

  condition(input: ConditionInput): void {
    this.status.conditions = setCondition(this.status.conditions, input, this.generation, this.now);
  }

  requeue(ms: number): void {
    const bounded = Math.max(0, Math.ceil(ms));
    this.requeueAfterMs = this.requeueAfterMs === undefined ? bounded : Math.min(this.requeueAfterMs, bounded);
  }

  event(type: PlannedEvent["type"], reason: Reason, message: string): void {
    this.events.push({ type, reason, message });
  }

  create(object: Creatable): void {
    this.actions.push({ kind: "create", object });
  }

  deleteJob(job: V1Job, reason: string): void {
    const name = job.metadata?.name;
    if (!name) return;
    if (this.actions.some((a) => a.kind === "delete" && a.name === name)) return;
    this.actions.push({ kind: "delete", apiVersion: "batch/v1", resource: "jobs", namespace: job.metadata?.namespace ?? "", name, reason });
  }

  jobsOf(stage: Stage): V1Job[] {
    return this.obs.children.jobs.filter((j) => j.metadata?.labels?.[LABEL_STAGE] === stage);
  }

  podsOf(stage: Stage, attempt?: number): V1Pod[] {
    return this.obs.children.pods.filter(
      (pod) => pod.metadata?.labels?.[LABEL_STAGE] === stage && (attempt === undefined || pod.metadata?.labels?.[LABEL_ATTEMPT] === String(attempt)),
    );
  }

  /** The stage's status, created Pending at attempt 0 the first time it is asked for. */
  stage(stage: Stage): StageStatus {
    this.status.stages ??= {};
    const existing = this.status.stages[stage];
    if (existing) return existing;
    const created: StageStatus = { phase: "Pending", attempt: 0, retries: 0 };
    this.status.stages[stage] = created;
    return created;
  }

  findRecord(stage: Stage, attempt: number): AttemptRecord | undefined {
    return this.status.attempts?.find((a) => a.stage === stage && a.attempt === attempt);
  }

  /** Appends to the bounded attempt history; returns the record as stored. */
  addRecord(record: AttemptRecord): AttemptRecord {
    const list = [...(this.status.attempts ?? []), record];
    this.status.attempts = list.slice(-this.obs.settings.attemptHistoryLimit);
    return record;
  }
}

/** The job's phase while a stage runs, and the condition that reports the stage. */
export const STAGE_PHASE: Record<Stage, Phase> = { preprocess: "Preprocessing", train: "Training", smoke: "SmokeTesting", merge: "Merging" };
export const STAGE_CONDITION = { preprocess: "Preprocessed", train: "Trained", smoke: "SmokeTested", merge: "Merged" } as const satisfies Record<Stage, string>;

export const attemptOf = (obj: { metadata?: { labels?: Record<string, string> } }) => Number(obj.metadata?.labels?.[LABEL_ATTEMPT] ?? -1);

export function jobCondition(job: V1Job, ...types: string[]): boolean {
  return job.status?.conditions?.some((c) => types.includes(c.type) && c.status === "True") ?? false;
}

export function isFinishedJob(job: V1Job): boolean {
  return jobCondition(job, "Complete", "Failed");
}

export function isTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}
