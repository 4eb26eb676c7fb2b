/** TTL policy: a finished FineTuneJob is deleted ttlSecondsAfterFinished after its completion. */
import type { Planner } from "./context.ts";

/** Terminal jobs: nothing runs; TTL deletes the FineTuneJob when asked. */
export function expireFinished(p: Planner): void {
  const st = p.status;
  const ttl = p.obs.validation.spec?.ttlSecondsAfterFinished ?? (p.obs.ftj.spec as { ttlSecondsAfterFinished?: number }).ttlSecondsAfterFinished;
  if (ttl === undefined || !st.completionTime) return;
  const expireAt = new Date(st.completionTime).getTime() + ttl * 1000;
  if (p.nowMs >= expireAt) p.actions.push({ kind: "deleteFineTuneJob", reason: `ttlSecondsAfterFinished (${ttl}s) expired` });
  else p.requeue(expireAt - p.nowMs);
}
