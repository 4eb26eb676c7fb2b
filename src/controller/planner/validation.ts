/**
 * Validation policy: referenced objects that do not exist yet (wait), an invalid spec (fail before anything is
 * created, or reject an edit of a running job), and drift (a started run's shape changed under it: reported,
 * never applied).
 */
import type { FineTuneJobSpec } from "../../api/schema.ts";
import { getCondition, isTrue } from "../conditions.ts";
import { Reason } from "../reasons.ts";
import { specHash } from "../spec-hash.ts";
import type { Planner } from "./context.ts";
import { POD_REFERENCE_REASONS } from "./pods.ts";

/** How often a job waiting for a referenced object looks again (user objects are not watched: no label selects them). */
export const MISSING_REFERENCE_RECHECK_MS = 10_000;

const MISSING_REASON = { ConfigMap: Reason.ConfigNotFound, Secret: Reason.SecretNotFound, PersistentVolumeClaim: Reason.ClaimNotFound } as const;

/**
 * A referenced ConfigMap, Secret or claim that does not exist yet means waiting (condition ReferencesResolved=False,
 * an Event, a requeue), never failing: GitOps applies objects in any order. A spec that is invalid anyway fails now.
 * Validation waits too, so the config is validated once it can be read. True while waiting.
 */
export function waitForReferences(p: Planner): boolean {
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
  p.conclude("Pending", `waiting: ${message}`);
  st.observedGeneration = p.generation;
  p.requeue(MISSING_REFERENCE_RECHECK_MS);
  return true;
}

/** Validates once per generation; an invalid spec fails the job without creating anything and without a retry loop. True when valid. */
export function validate(p: Planner): boolean {
  const st = p.status;
  const validated = getCondition(st.conditions, "Validated");
  const { issues } = p.obs.validation;
  const errors = issues.filter((i) => i.severity === "error");
  st.observedGeneration = p.generation;
  if (errors.length > 0) {
    const message =
      errors
        .slice(0, 5)
        .map((i) => `${i.path}: ${i.message}`)
        .join("; ") + (errors.length > 5 ? ` (and ${errors.length - 5} more)` : "");
    const already = validated?.status === "False" && validated.observedGeneration === p.generation && validated.message === message;
    p.condition({ type: "Validated", status: "False", reason: Reason.InvalidSpec, message });
    if (st.specHash) {
      // An invalid edit of a job that is already running is reported, never acted on: the run keeps its GPUs and its settings.
      if (!already) p.event("Warning", Reason.InvalidSpec, `edit rejected, the running job continues unchanged: ${message}`);
      return false;
    }
    p.condition({ type: "Failed", status: "True", reason: Reason.InvalidSpec, message });
    p.conclude("Failed", `invalid spec: ${message}`);
    if (!already) p.event("Warning", Reason.InvalidSpec, message);
    return false;
  }
  if (validated?.status !== "True" || validated.observedGeneration !== p.generation) {
    const warnings = issues.filter((i) => i.severity === "warning");
    const message = warnings.length
      ? `valid with ${warnings.length} warning(s): ${warnings
          .slice(0, 5)
          .map((i) => `${i.path}: ${i.message}`)
          .join("; ")}`
      : "spec and Axolotl config are valid";
    p.condition({ type: "Validated", status: "True", reason: Reason.Valid, message });
    if (warnings.length) p.event("Warning", Reason.ConfigWarnings, message);
    if (getCondition(st.conditions, "Failed")?.reason === Reason.InvalidSpec) {
      p.condition({ type: "Failed", status: "False", reason: Reason.Valid, message: "the spec was fixed" });
    }
  }
  return true;
}

/** Parts of a started run cannot change under it; changes are reported, never silently ignored. */
export function driftCheck(p: Planner, spec: FineTuneJobSpec): void {
  const st = p.status;
  const hash = specHash(spec);
  if (!st.specHash) return;
  if (st.specHash !== hash) {
    if (!isTrue(st.conditions, "SpecChangeRejected"))
      p.event(
        "Warning",
        Reason.SpecChangeRejected,
        "config, image, nodes or GPUs changed after the job started; the run continues with the settings it started with. Delete and re-create the FineTuneJob to apply them.",
      );
    p.condition({
      type: "SpecChangeRejected",
      status: "True",
      reason: Reason.SpecChangeRejected,
      message: "config, image, nodes or gpusPerNode changed after start and are not applied to this run",
    });
  } else if (getCondition(st.conditions, "SpecChangeRejected")) {
    p.condition({ type: "SpecChangeRejected", status: "False", reason: Reason.Valid, message: "spec matches the running job" });
  }
}
