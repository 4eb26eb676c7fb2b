/**
 * Server-side apply of YAML (one or many documents), like `kubectl apply --server-side`.
 *
 *   const [job] = await applyYaml(`apiVersion: batch/v1\nkind: Job ...`, { namespace });
 *
 * Namespaced objects without metadata.namespace get `opts.namespace` (else "default").
 * Returns the applied objects as the server returned them, in document order.
 */
import { PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { kubeClients, type KubeClients } from "./kube.ts";

export const FIELD_MANAGER = "finetune-e2e";

export async function applyObjects<T extends KubernetesObject = KubernetesObject>(
  objects: KubernetesObject[],
  opts: { namespace?: string; clients?: KubeClients; fieldManager?: string } = {},
): Promise<T[]> {
  const k = opts.clients ?? (await kubeClients());
  const out: T[] = [];
  for (const obj of objects) {
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name)
      throw new Error(`applyYaml: object needs apiVersion, kind and metadata.name: ${JSON.stringify(obj).slice(0, 200)}`);
    const body: KubernetesObject = { ...obj, metadata: { ...obj.metadata } };
    if (await k.objects.isNamespaced(obj.apiVersion, obj.kind)) body.metadata!.namespace ??= opts.namespace ?? "default";
    else delete body.metadata!.namespace;
    out.push((await k.objects.patch(body, undefined, undefined, opts.fieldManager ?? FIELD_MANAGER, true, PatchStrategy.ServerSideApply)) as T);
  }
  return out;
}

export async function applyYaml<T extends KubernetesObject = KubernetesObject>(
  yamlText: string,
  opts: { namespace?: string; clients?: KubeClients; fieldManager?: string } = {},
): Promise<T[]> {
  const docs = parseAllDocuments(yamlText);
  const objects: KubernetesObject[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(`applyYaml: invalid YAML: ${d.errors.map((e) => e.message).join("; ")}`);
    const v = d.toJS() as KubernetesObject | null;
    if (v) objects.push(v);
  }
  return applyObjects<T>(objects, opts);
}
