/**
 * Creates the API server refused. The operator's own creates (the output claim, the rendered config, the rank
 * Service, a stage's Job) can be refused for good: a ResourceQuota, an admission webhook, a LimitRange, a name too
 * long for a label. The reconciler remembers each refusal's message (Observed.createRefusals); while the planner still
 * wants to create that object, the refusal goes into status (message, ObjectsCreated=False with reason CreateRefused)
 * and one Warning Event per episode. The create is retried with the queue's backoff, so fixing the namespace lets the
 * job go on.
 */
import { getCondition } from "../conditions.ts";
import { Reason } from "../reasons.ts";
import type { Planner } from "./context.ts";

/** The key of a refusal: `Kind/name`, as the reconciler records it. */
export function createKey(object: { kind?: string; metadata?: { name?: string } }): string {
  return `${object.kind ?? ""}/${object.metadata?.name ?? ""}`;
}

export function reportRefusedCreates(p: Planner): void {
  const refusals = p.obs.createRefusals;
  const cond = getCondition(p.status.conditions, "ObjectsCreated");
  const refused = refusals ? p.actions.flatMap((a) => (a.kind === "create" && refusals[createKey(a.object)] !== undefined ? [createKey(a.object)] : [])) : [];
  if (refused.length > 0) {
    const first = refused[0]!;
    const message = `the API server refused to create ${first.replace("/", " ")}: ${refusals![first]}`;
    if (cond?.status !== "False" || cond.message !== message) p.event("Warning", Reason.CreateRefused, message);
    p.condition({ type: "ObjectsCreated", status: "False", reason: Reason.CreateRefused, message });
    // Nothing of the run exists until the refused object does: the job is Pending, whatever the stage planned.
    p.conclude("Pending", message);
  } else if (cond?.status === "False") {
    p.condition({ type: "ObjectsCreated", status: "True", reason: Reason.Created, message: "every object the job needs was created" });
  }
}
