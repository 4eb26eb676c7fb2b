/** FineTuneJob helpers for e2e tests: manifests, CRUD through CustomObjectsApi (plain JSON, nothing dropped), pod fates. */
import { PatchStrategy, setHeaderOptions, type V1ContainerState, type V1Pod, type V1PodCondition } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../src/api/group.ts";
import type { FineTuneJobObject, FineTuneJobSpecInput } from "../../src/api/schema.ts";
import { kwokToleration } from "../cluster/manifests.ts";
import type { KubeClients } from "./kube.ts";

export const LORA_CONFIG = {
  base_model: "meta-llama/Llama-3.1-8B",
  adapter: "lora",
  lora_r: 32,
  lora_alpha: 64,
  lora_dropout: 0.05,
  lora_target_linear: true,
  datasets: [{ path: "mhenrichsen/alpaca_2k_test", type: "alpaca" }],
  micro_batch_size: 1,
  gradient_accumulation_steps: 4,
  num_epochs: 1,
  learning_rate: 0.0002,
  sequence_len: 2048,
};

/**
 * A FineTuneJob that schedules on the fake GPU nodes (the kwok taint is tolerated through the pass-through scheduling
 * field). The smoke-test stage is off unless the test sets `smokeTest`: kwok pods write no launcher summary, so it
 * would only add a stage (and, with fate "run", a pod to finish) to tests about other things; e2e/smoke-stage.test.ts
 * covers it.
 */
export function ftjManifest(name: string, namespace: string, spec: Partial<FineTuneJobSpecInput> = {}): FineTuneJobObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "FineTuneJob",
    metadata: { name, namespace },
    spec: { config: LORA_CONFIG, smokeTest: { enabled: false }, ...spec, scheduling: { tolerations: [{ ...kwokToleration }], ...(spec.scheduling ?? {}) } },
  };
}

export async function createFtj(k: KubeClients, obj: FineTuneJobObject): Promise<FineTuneJobObject> {
  return (await k.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: obj.metadata.namespace!,
    plural: PLURAL,
    body: obj,
  })) as FineTuneJobObject;
}

export async function getFtj(k: KubeClients, namespace: string, name: string): Promise<FineTuneJobObject> {
  return (await k.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })) as FineTuneJobObject;
}

export async function patchFtjSpec(k: KubeClients, namespace: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await k.custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { spec } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

export async function deleteFtj(k: KubeClients, namespace: string, name: string): Promise<void> {
  await k.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name });
}

export async function listPods(k: KubeClients, namespace: string, selector: string): Promise<V1Pod[]> {
  return (await k.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
}

/**
 * Writes what a kubelet would report for a pod: its phase and every container in `state`, through the status
 * subresource (kwok does not run containers, so tests write their exits and waits themselves).
 */
export async function setPodState(
  k: KubeClients,
  pod: V1Pod,
  phase: string,
  state: V1ContainerState,
  extra: { conditions?: V1PodCondition[] } = {},
): Promise<void> {
  const body = {
    status: {
      phase,
      ...extra,
      containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image,
        imageID: "",
        ready: false,
        restartCount: 0,
        started: Boolean(state.running),
        state,
      })),
    },
  };
  await k.core.patchNamespacedPodStatus(
    { namespace: pod.metadata!.namespace!, name: pod.metadata!.name!, body },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
}

/** Ends a (fate=run) pod as if its container exited, through the status subresource. */
export async function finishPod(k: KubeClients, pod: V1Pod, exitCode: number, message?: string): Promise<void> {
  const now = new Date();
  const reason = exitCode === 0 ? "Completed" : exitCode === 137 ? "OOMKilled" : "Error";
  await setPodState(
    k,
    pod,
    exitCode === 0 ? "Succeeded" : "Failed",
    { terminated: { exitCode, reason, startedAt: now, finishedAt: now, ...(message ? { message } : {}) } },
    {
      conditions: [{ type: "Ready", status: "False", lastTransitionTime: now }],
    },
  );
}

/** Marks a pod as a disruption target (what preemption and eviction do) and fails it. */
export async function disruptPod(k: KubeClients, pod: V1Pod, reason = "PreemptionByScheduler"): Promise<void> {
  const now = new Date().toISOString();
  await k.core.patchNamespacedPodStatus(
    {
      namespace: pod.metadata!.namespace!,
      name: pod.metadata!.name!,
      body: {
        status: {
          phase: "Failed",
          reason: "Preempted",
          message: "preempted by a higher-priority pod",
          conditions: [{ type: "DisruptionTarget", status: "True", reason, message: "preempted", lastTransitionTime: now }],
        },
      },
    },
    setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
  );
}

/**
 * Where a namespace's pods stand on their way to Running, for a wait's progress note (so a timeout says which
 * step stalled): pods by step, claims not yet bound, the first scheduler message, and the named nodes' readiness.
 */
export async function podPipeline(k: KubeClients, namespace: string, selector: string, nodes: readonly string[] = []): Promise<string> {
  const pods = await listPods(k, namespace, selector);
  const scheduled = pods.filter((p) => p.spec?.nodeName);
  const running = pods.filter((p) => p.status?.phase === "Running");
  const waiting = pods.find((p) => !p.spec?.nodeName && p.status?.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False"));
  const claims = (await k.core.listNamespacedPersistentVolumeClaim({ namespace })).items;
  const unbound = claims.filter((c) => c.status?.phase !== "Bound").length;
  const nodeStates = await Promise.all(
    nodes.map(async (name) => {
      const node = await k.core.readNode({ name }).catch(() => undefined);
      const ready = node?.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "gone";
      const taints = (node?.spec?.taints ?? []).map((t) => t.key).join(",");
      return `${name} Ready=${ready}${taints ? ` taints=${taints}` : ""}`;
    }),
  );
  const why = waiting?.status?.conditions?.find((c) => c.type === "PodScheduled")?.message;
  return (
    `${pods.length} pods: ${pods.length - scheduled.length} unscheduled, ${scheduled.length - running.length} scheduled not Running, ${running.length} Running; ` +
    `claims ${claims.length - unbound}/${claims.length} bound` +
    (why ? `; scheduler: ${why}` : "") +
    (nodeStates.length > 0 ? `; ${nodeStates.join("; ")}` : "")
  );
}
