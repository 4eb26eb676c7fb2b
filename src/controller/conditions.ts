/**
 * Kubernetes-convention conditions: keyed by type; lastTransitionTime moves
 * only when status flips; reason/message updates do not count as transitions.
 */
import type { Condition } from "../api/schema.ts";
import type { Reason } from "./reasons.ts";

const CONDITION_TYPES = [
  "Validated",
  "Preprocessed",
  "Trained",
  "SmokeTested",
  "Merged",
  "Succeeded",
  "Failed",
  "Suspended",
  "SpecChangeRejected",
  "LossHealthy",
  "ReferencesResolved",
  "PodsScheduled",
  "PodsCreated",
  "ObjectsCreated",
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

export interface ConditionInput {
  type: ConditionType;
  status: "True" | "False" | "Unknown";
  reason: Reason;
  message: string;
}

/** Returns a new list with the condition set; the input list is not mutated. */
export function setCondition(list: readonly Condition[] | undefined, input: ConditionInput, generation: number | undefined, now: string): Condition[] {
  const existing = (list ?? []).find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: existing && existing.status === input.status ? existing.lastTransitionTime : now,
  };
  const others = (list ?? []).filter((c) => c.type !== input.type);
  // Keep a stable order (the declared one) so unchanged status serialises identically.
  return [...others, next].sort((a, b) => order(a.type) - order(b.type));
}

export function getCondition(list: readonly Condition[] | undefined, type: ConditionType): Condition | undefined {
  return (list ?? []).find((c) => c.type === type);
}

export function isTrue(list: readonly Condition[] | undefined, type: ConditionType): boolean {
  return getCondition(list, type)?.status === "True";
}

function order(type: string): number {
  const i = (CONDITION_TYPES as readonly string[]).indexOf(type);
  return i < 0 ? CONDITION_TYPES.length : i;
}
