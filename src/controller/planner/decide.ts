/**
 * The planner: observed state in, desired status and actions out. Pure and
 * synchronous, so every branch is unit-tested without a cluster, and every
 * reconcile is safe to repeat: decisions come only from what is observed
 * (the FineTuneJob's recorded status plus its children), never from memory.
 *
 * decide() runs the policies in order (TTL for finished jobs, validation,
 * suspend, loss health, stage progression with its attempts and restarts),
 * each in its own file, then writes what they concluded (phase, message,
 * attempt, restarts) into status once.
 *
 * The reconciler writes the returned status FIRST (with the resourceVersion
 * it read, so a stale cache loses with a conflict), then performs the
 * actions. A crash between the two leaves a status that the next pass
 * completes: recorded facts (an attempt ended, a restart counted) are never
 * lost or counted twice, and deterministic child names make creates idempotent.
 */
import { isDeepStrictEqual } from "node:util";
import type { FineTuneJobObject } from "../../api/schema.ts";
import { outputPaths, type RenderInput } from "../../render/children.ts";
import { desiredObjects, enabledStages } from "../../render/desired.ts";
import { getCondition } from "../conditions.ts";
import { PHASE_EVENT_REASON } from "../reasons.ts";
import { Planner } from "./context.ts";
import { reportRefusedCreates } from "./creates.ts";
import { lossHealth } from "./health.ts";
import { trainCounters } from "./outcome.ts";
import { ensureBaseObjects, markSkippedStages, runStage, succeed } from "./stages.ts";
import { resumeIfSuspended, suspend } from "./suspend.ts";
import { expireFinished } from "./ttl.ts";
import type { Decision, Observed } from "./types.ts";
import { driftCheck, validate, waitForReferences } from "./validation.ts";

export function decide(obs: Observed): Decision {
  const p = new Planner(obs);
  const before = obs.ftj.status ?? {};
  if (!obs.ftj.metadata.deletionTimestamp) run(p);
  writeOutcome(p);
  const statusChanged = !sameAsJson(p.recordedStatusJson, p.status);
  if (statusChanged && before.phase !== p.status.phase && p.status.phase && p.status.phase in PHASE_EVENT_REASON) {
    p.event(p.status.phase === "Failed" ? "Warning" : "Normal", PHASE_EVENT_REASON[p.status.phase]!, p.status.message ?? `phase ${p.status.phase}`);
  }
  return {
    status: p.status,
    statusChanged,
    actions: p.actions,
    events: p.events,
    ...(p.requeueAfterMs !== undefined ? { requeueAfterMs: p.requeueAfterMs } : {}),
  };
}

/** Phase, message and the train counters, written once from what the policies concluded; no conclusion keeps the recorded ones. */
function writeOutcome(p: Planner): void {
  if (!p.outcome) return;
  const st = p.status;
  st.phase = p.outcome.phase;
  st.message = [p.outcome.message, ...p.outcome.notes].join("; ");
  const counters = trainCounters(st);
  if (counters) {
    st.attempt = counters.attempt;
    st.restarts = counters.restarts;
  }
}

function run(p: Planner): void {
  const st = p.status;
  const invalidFailure = st.phase === "Failed" && getCondition(st.conditions, "Validated")?.status === "False";
  if (st.phase === "Succeeded" || (st.phase === "Failed" && !(invalidFailure && st.observedGeneration !== p.generation))) {
    expireFinished(p);
    return;
  }
  if (waitForReferences(p)) return;
  if (!validate(p)) return;
  const spec = p.obs.validation.spec!;
  const config = p.obs.axolotlConfig ?? {};
  // A started run renders every attempt with what it started with; a changed image or shape is reported (driftCheck), not applied.
  const input: RenderInput = {
    job: jobRef(p.obs.ftj),
    spec: st.startedWith ? { ...spec, ...st.startedWith } : spec,
    axolotlConfig: config,
    settings: p.obs.settings,
  };

  driftCheck(p, spec);
  if (spec.suspend) {
    suspend(p);
    return;
  }
  resumeIfSuspended(p);

  if (lossHealth(p, spec)) return;

  // Storage, the rendered config and the rank Service are created first; the first stage's Job is created in the same
  // pass, after them (actions run in order and stop at the first error), which saves a round trip through the queue
  // per job, and status already says what the next pass would (the stage's Job created, no pod ready): one status
  // write less per job. Should a create be refused, the next pass says so (reportRefusedCreates).
  const desired = desiredObjects(input, enabledStages(spec, config));
  const baseObserved = ensureBaseObjects(p, desired);
  st.outputs = { ...outputPaths(input), ...(st.outputs ?? {}) };
  markSkippedStages(p, spec, config);
  const next = desired.stages.find((stage) => p.stage(stage).phase !== "Succeeded");
  if (!next) {
    succeed(p, desired.stages);
    return;
  }
  runStage(p, input, desired, next, p.stage(next));
  if (!baseObserved && !p.actions.some((a) => a.kind === "create" && a.object.kind === "Job")) {
    p.conclude("Pending", "preparing the output claim, rendered config and rank Service");
  }
  reportRefusedCreates(p);
}

function jobRef(ftj: FineTuneJobObject) {
  return { name: ftj.metadata.name ?? "", namespace: ftj.metadata.namespace ?? "", uid: ftj.metadata.uid ?? "" };
}

/**
 * Whether `value` is, as JSON (undefined members absent), what `json` says. Most passes change nothing, and the same
 * text answers that at once; different text may still be the same object with its keys in another order.
 */
function sameAsJson(json: string, value: unknown): boolean {
  const text = JSON.stringify(value ?? {});
  return text === json || isDeepStrictEqual(JSON.parse(text), JSON.parse(json));
}
