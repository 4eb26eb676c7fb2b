/**
 * The ConfigMap that keeps the smoke test's answers in full (pure builder). status.smokeTest holds them cut to 200
 * characters and the claim file is out of reach of `kubectl`; this copy is what `kubectl get configmap -o yaml`
 * (or a GitOps tool, or a dashboard) reads. Owned by the FineTuneJob, so it goes with it.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { childLabels, ownerReference, type JobRef } from "./labels.ts";
import { smokeAnswersConfigMapName } from "./names.ts";

export interface SmokeAnswer {
  prompt: string;
  answer: string;
  /** Whether generation ended with the EOS token (false: it ran to the token limit); null when unknown. */
  stopped?: boolean | null;
}

export interface SmokeAnswersRecord {
  eosToken?: string | null;
  answers: SmokeAnswer[];
}

/** Where the answers came from: the smoke pod's log in full, or status.smokeTest cut (the pod was gone). */
export type SmokeAnswersSource = "pod-log" | "status-truncated";

/** A ConfigMap holds 1 MiB; 8 prompts of 1024 tokens are ~40 KB, so the cap only bounds a runaway answer. */
export const MAX_SMOKE_ANSWERS_BYTES = 512 * 1024;

export function renderSmokeAnswersConfigMap(job: JobRef, attempt: number, record: SmokeAnswersRecord, source: SmokeAnswersSource): V1ConfigMap {
  const perAnswer = Math.floor(MAX_SMOKE_ANSWERS_BYTES / Math.max(1, record.answers.length) / 4); // UTF-8: at most 4 bytes a character
  const answers = record.answers.map((a) => ({
    prompt: a.prompt,
    answer: a.answer.length > perAnswer ? a.answer.slice(0, perAnswer) : a.answer,
    ...(a.answer.length > perAnswer ? { truncatedFrom: a.answer.length } : {}),
    ...(a.stopped === undefined ? {} : { stopped: a.stopped }),
  }));
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: smokeAnswersConfigMapName(job.name),
      namespace: job.namespace,
      labels: childLabels(job, "smoke", attempt),
      ownerReferences: [ownerReference(job)],
    },
    data: {
      "answers.json": `${JSON.stringify({ eosToken: record.eosToken ?? null, answers }, null, 2)}\n`,
      source,
    },
  };
}
