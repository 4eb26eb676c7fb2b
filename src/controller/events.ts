import type { CoreV1Event } from "@kubernetes/client-node";
import { API_VERSION, KIND } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import type { Reason } from "./reasons.ts";

export const COMPONENT = "finetune-operator";

/** A core/v1 Event about a FineTuneJob (what `kubectl describe ftj` shows). */
export function buildEvent(ftj: FineTuneJobObject, type: "Normal" | "Warning", reason: Reason, message: string, now: Date, instance: string): CoreV1Event {
  const name = ftj.metadata.name ?? "";
  return {
    apiVersion: "v1",
    kind: "Event",
    metadata: { namespace: ftj.metadata.namespace ?? "", name: `${name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xfffff).toString(16)}` },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: KIND,
      name,
      namespace: ftj.metadata.namespace ?? "",
      uid: ftj.metadata.uid ?? "",
      ...(ftj.metadata.resourceVersion ? { resourceVersion: ftj.metadata.resourceVersion } : {}),
    },
    type,
    reason,
    // The API server caps messages; keep the start, which names the key or pod.
    message: message.length > 1000 ? `${message.slice(0, 997)}...` : message,
    source: { component: COMPONENT },
    reportingComponent: COMPONENT,
    reportingInstance: instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
