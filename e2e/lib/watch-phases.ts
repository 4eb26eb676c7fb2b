/** Records every phase a FineTuneJob goes through, from a watch (polling could miss short phases). */
import { Watch } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../src/api/group.ts";
import type { FineTuneJobObject } from "../../src/api/schema.ts";
import type { KubeClients } from "./kube.ts";
import { waitFor } from "./wait.ts";

export interface PhaseRecorder {
  phases: Map<string, string[]>;
  /** The phases of `name` once the watch has delivered `last` (the watch may trail a GET of the same object). */
  until(name: string, last: string): Promise<string[]>;
  stop(): void;
}

export async function recordPhases(k: KubeClients, namespace: string): Promise<PhaseRecorder> {
  const phases = new Map<string, string[]>();
  const watch = new Watch(k.kc);
  const controller = await watch.watch(
    `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
    {},
    (_type: string, obj: FineTuneJobObject) => {
      const name = obj.metadata.name ?? "";
      const phase = obj.status?.phase;
      if (!phase) return;
      const list = phases.get(name) ?? [];
      if (list[list.length - 1] !== phase) list.push(phase);
      phases.set(name, list);
    },
    () => {},
  );
  const until = (name: string, last: string) =>
    waitFor(`watch saw ${name} reach ${last}`, () => {
      const list = phases.get(name);
      return list?.[list.length - 1] === last ? [...list] : undefined;
    });
  return { phases, until, stop: () => controller.abort() };
}
