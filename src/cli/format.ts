/** Human output of FineTuneJob status for the CLI. Pure. */
import type { FineTuneJobObject } from "../api/schema.ts";
import { sparkline } from "../progress/loss.ts";

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** `Training  [#######-------------]  120/873  14%  loss 1.2345  ETA 1h10m` */
export function progressLine(job: FineTuneJobObject, width = 24): string | undefined {
  const p = job.status?.progress;
  if (!p || p.step === undefined) return undefined;
  const parts: string[] = [];
  if (p.totalSteps) {
    const frac = Math.min(1, p.step / p.totalSteps);
    const filled = Math.round(frac * width);
    parts.push(`[${"#".repeat(filled)}${"-".repeat(width - filled)}]`, `${p.step}/${p.totalSteps}`, `${Math.floor(frac * 100)}%`);
  } else parts.push(`step ${p.step}`);
  if (p.epoch !== undefined) parts.push(`epoch ${p.epoch.toFixed(2)}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (p.evalLoss !== undefined) parts.push(`eval ${p.evalLoss.toFixed(4)}`);
  if (p.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join("  ");
}

const WAITING_CONDITIONS = new Set(["PodsScheduled", "ReferencesResolved", "PodsCreated", "ObjectsCreated"]);

/** `▇▆▅▃▂▂▁  6.71 -> 2.04 (steps 1-120)`, plus the NaN step when there was one. */
export function lossCurveLine(job: FineTuneJobObject): string | undefined {
  const h = job.status?.lossHistory;
  const points = h?.points ?? [];
  const parts: string[] = [];
  if (points.length > 0) {
    const first = points[0]!;
    const last = points[points.length - 1]!;
    parts.push(sparkline(h), `${first.loss} -> ${last.loss} (steps ${first.step}-${last.step})`);
  }
  if (h?.nonFiniteStep !== undefined) parts.push(`NaN/inf at step ${h.nonFiniteStep}`);
  return parts.length ? parts.join("  ") : undefined;
}

export function describeStatus(job: FineTuneJobObject): string {
  const st = job.status ?? {};
  const lines: string[] = [];
  const row = (k: string, v: string | number | undefined) => {
    if (v !== undefined && v !== "") lines.push(`${(k + ":").padEnd(18)}${v}`);
  };
  row("Name", `${job.metadata.namespace}/${job.metadata.name}`);
  row("Phase", st.phase ?? "Pending");
  row("Message", st.message);
  const current = st.phase === "Preprocessing" ? "preprocess" : st.phase === "SmokeTesting" ? "smoke" : st.phase === "Merging" ? "merge" : "train";
  row("Stage", st.stages?.[current] ? `${current} (${st.stages[current]!.phase}, job ${st.stages[current]!.jobName ?? "-"})` : undefined);
  row("Nodes x GPUs", `${job.spec.nodes ?? 1} x ${job.spec.gpusPerNode ?? 1}`);
  row("Attempt", st.attempt);
  row(
    "Restarts",
    st.restarts !== undefined
      ? `${st.restarts} of ${job.spec.maxRestarts ?? 3}${st.disruptions ? ` (+${st.disruptions} disruptions, not counted)` : ""}`
      : undefined,
  );
  row("Progress", progressLine(job));
  row("Loss curve", lossCurveLine(job));
  row("Checkpoint", st.latestCheckpoint ? `step ${st.latestCheckpoint.step} at ${st.latestCheckpoint.path}` : undefined);
  if (st.outputs) {
    row("Output claim", st.outputs.claimName);
    row("Adapter", st.phase === "Succeeded" || st.stages?.train?.phase === "Succeeded" ? st.outputs.adapterPath : undefined);
    row("Merged model", st.stages?.merge?.phase === "Succeeded" ? st.outputs.mergedModelPath : undefined);
  }
  if (st.smokeTest) {
    const full = [
      st.smokeTest.answersConfigMap ? `ConfigMap ${st.smokeTest.answersConfigMap}` : "",
      st.smokeTest.answersFile ? `${st.smokeTest.answersFile} on the claim` : "",
    ]
      .filter(Boolean)
      .join(", ");
    row("Smoke test", `${st.smokeTest.result}: ${st.smokeTest.message}${full ? ` (all answers: ${full})` : ""}`);
    st.smokeTest.answers.forEach((a, i) => row(`  answer ${i + 1}`, `${a.prompt} => ${a.answer}${a.stopped === false ? " [no EOS]" : ""}`));
    row("  hint", st.smokeTest.hint);
  }
  if (st.lastFailure) {
    const f = st.lastFailure;
    row("Last failure", `${f.stage ?? ""} attempt ${f.attempt ?? "?"}: ${f.reason}${f.exitCode !== undefined ? ` (exit ${f.exitCode})` : ""}`);
    row("  message", f.message);
    row("  hint", f.hint);
  }
  // Conditions that say what a job waits for carry their message: that is the part to act on.
  for (const c of st.conditions ?? [])
    row(`  ${c.type}`, `${c.status} (${c.reason})${c.status === "False" && WAITING_CONDITIONS.has(c.type) ? `: ${c.message}` : ""}`);
  return lines.join("\n");
}
