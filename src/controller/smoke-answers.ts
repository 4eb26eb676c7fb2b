/**
 * Copies the smoke test's answers, in full, into a ConfigMap once the smoke stage has been judged
 * (status.smokeTest is set). Level-triggered: whenever the job has a verdict and the ConfigMap is not in the cache,
 * it is built from the smoke pod's log (the launcher's FINETUNE_SMOKE_ANSWERS line), or, when that pod or line is
 * gone (pods of a finished job may be deleted, kwok pods have no log), from status.smokeTest's cut answers, marked
 * as such. One log read and one create per job, once; AlreadyExists means another replica or a lagging cache won.
 */
import type { V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import { LABEL_ATTEMPT, LABEL_STAGE } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import { smokeAnswersConfigMapName, TRAINER_CONTAINER } from "../render/names.ts";
import { renderSmokeAnswersConfigMap, type SmokeAnswer, type SmokeAnswersRecord, type SmokeAnswersSource } from "../render/smoke-answers.ts";

/** The launcher's stdout line (src/trainer/launcher/smoke.py run_smoke). */
export const SMOKE_ANSWERS_TAG = "FINETUNE_SMOKE_ANSWERS ";
/** The line is printed last but for the exit summary; a few KiB of lines after it at most. */
const LOG_TAIL_LINES = 50;
const LOG_LIMIT_BYTES = 1024 * 1024;

/** The newest well-formed answers line in a log, or undefined. */
export function parseSmokeAnswersLog(log: string): SmokeAnswersRecord | undefined {
  const lines = log.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.replace(/\r$/, "");
    if (!line.startsWith(SMOKE_ANSWERS_TAG)) continue;
    try {
      const parsed = JSON.parse(line.slice(SMOKE_ANSWERS_TAG.length)) as { eosToken?: unknown; answers?: unknown };
      if (!Array.isArray(parsed.answers)) continue;
      const answers: SmokeAnswer[] = [];
      for (const a of parsed.answers as Array<Record<string, unknown>>) {
        if (typeof a?.prompt !== "string" || typeof a.answer !== "string") continue;
        answers.push({ prompt: a.prompt, answer: a.answer, ...(typeof a.stopped === "boolean" || a.stopped === null ? { stopped: a.stopped } : {}) });
      }
      return { eosToken: typeof parsed.eosToken === "string" ? parsed.eosToken : null, answers };
    } catch {
      continue; // a line cut by limitBytes or interleaved output: look further up
    }
  }
  return undefined;
}

export interface SmokeAnswersDeps {
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
  podsOf(namespace: string, name: string): V1Pod[];
  readPodLogTail(namespace: string, name: string, opts: { container?: string; tailLines: number; limitBytes: number }): Promise<string>;
  create(obj: V1ConfigMap): Promise<unknown>;
}

/** Whether this job's answers still need copying: a verdict with answers, and no ConfigMap in the cache. */
export function needsSmokeAnswers(ftj: FineTuneJobObject, status: FineTuneJobObject["status"], deps: Pick<SmokeAnswersDeps, "configMap">): boolean {
  const smoke = status?.smokeTest;
  if (!smoke || smoke.answers.length === 0) return false;
  return deps.configMap(ftj.metadata.namespace ?? "", smokeAnswersConfigMapName(ftj.metadata.name ?? "")) === undefined;
}

/**
 * Builds the ConfigMap from the newest succeeded smoke pod's log, else from status. Returns the object created
 * (for the caller's log), or undefined when nothing was needed.
 */
export async function recordSmokeAnswers(
  ftj: FineTuneJobObject,
  status: FineTuneJobObject["status"],
  deps: SmokeAnswersDeps,
): Promise<{ source: SmokeAnswersSource } | undefined> {
  if (!needsSmokeAnswers(ftj, status, deps)) return undefined;
  const ns = ftj.metadata.namespace ?? "";
  const name = ftj.metadata.name ?? "";
  const attempt = status?.stages?.smoke?.attempt ?? 0;
  const pod = deps
    .podsOf(ns, name)
    .filter((p) => p.metadata?.labels?.[LABEL_STAGE] === "smoke" && p.metadata.labels[LABEL_ATTEMPT] === String(attempt) && p.status?.phase === "Succeeded")
    .sort((a, b) => String(b.metadata?.creationTimestamp ?? "").localeCompare(String(a.metadata?.creationTimestamp ?? "")))[0];
  let record: SmokeAnswersRecord | undefined;
  if (pod?.metadata?.name) {
    try {
      record = parseSmokeAnswersLog(
        await deps.readPodLogTail(ns, pod.metadata.name, { container: TRAINER_CONTAINER, tailLines: LOG_TAIL_LINES, limitBytes: LOG_LIMIT_BYTES }),
      );
    } catch {
      record = undefined; // no log (node gone, kwok): the cut answers below are what is left
    }
  }
  const source: SmokeAnswersSource = record && record.answers.length > 0 ? "pod-log" : "status-truncated";
  if (source === "status-truncated") record = { answers: status!.smokeTest!.answers };
  const job = { name, namespace: ns, uid: ftj.metadata.uid ?? "" };
  await deps.create(renderSmokeAnswersConfigMap(job, attempt, record!, source));
  return { source };
}
