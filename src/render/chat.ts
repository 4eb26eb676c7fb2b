/**
 * `kubectl finetune chat`: a short-lived pod on the job's output claim running Axolotl's Gradio UI
 * (`axolotl inference CONFIG --gradio`) on the adapter or on the merged model, and the ConfigMap with its config.
 * Pure; src/cli/chat.ts creates them, port-forwards and deletes the pod when the command ends.
 *
 * Gradio settings (axolotl/cli/inference.py do_inference_gradio reads them from the config): `gradio_share: false`
 * (Axolotl's default, true, would open a public gradio.live tunnel from the cluster), `gradio_server_name:
 * 127.0.0.1` (kubectl port-forward reaches the pod's loopback; nothing else in the cluster can), a fixed port.
 */
import type { V1ConfigMap, V1Pod } from "@kubernetes/client-node";
import { API_VERSION, KIND, LABEL_ATTEMPT, LABEL_COMPONENT, LABEL_JOB_NAME, LABEL_MANAGED_BY, LABEL_STAGE, MANAGED_BY } from "../api/group.ts";
import { stringifyAxolotlYaml } from "../axolotl/yaml.ts";
import { renderSmokeTestJob, type RenderInput } from "./children.ts";
import { MERGED_DIR, MOUNT_CONFIG, MOUNT_LAUNCHER, OUTPUT_DIR, TRAINER_CONTAINER } from "./names.ts";

export const CHAT_PORT = 7860;
const CHAT_CONFIG_DIR = "/etc/finetune-chat";

export interface ChatOptions {
  /** Pod and ConfigMap name (the CLI adds a random suffix so several users can chat at once). */
  name: string;
  merged: boolean;
}

/** The config the job trained with (its rendered ConfigMap), pointed at the merged model when asked, with Gradio kept private. */
export function chatConfig(trained: Record<string, unknown>, merged: boolean): Record<string, unknown> {
  const config: Record<string, unknown> = { ...trained, gradio_share: false, gradio_server_name: "127.0.0.1", gradio_server_port: CHAT_PORT };
  if (merged) {
    // The merged model is a plain model: no adapter to load on top, no quantisation of it.
    config.base_model = MERGED_DIR;
    for (const key of ["adapter", "lora_model_dir", "load_in_4bit", "load_in_8bit", "peft_use_dora"]) delete config[key];
  }
  return config;
}

export function renderChatConfigMap(input: RenderInput, trained: Record<string, unknown>, opts: ChatOptions): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: opts.name, namespace: input.job.namespace, labels: chatLabels(input) },
    data: { "config.yaml": stringifyAxolotlYaml(chatConfig(trained, opts.merged)) },
  };
}

/** The smoke-test pod's shape (image, claim, cache, scheduling, one GPU), running the Gradio UI directly. */
export function renderChatPod(input: RenderInput, opts: ChatOptions): V1Pod {
  const template = structuredClone(renderSmokeTestJob(input, 0).spec!.template);
  const spec = template.spec!;
  const container = spec.containers.find((c) => c.name === TRAINER_CONTAINER)!;
  container.command = ["axolotl", "inference", `${CHAT_CONFIG_DIR}/config.yaml`, ...(opts.merged ? [] : [`--lora-model-dir=${OUTPUT_DIR}`]), "--gradio"];
  container.env = (container.env ?? []).filter((e) => !e.name.startsWith("FINETUNE_"));
  container.ports = [{ name: "gradio", containerPort: CHAT_PORT }];
  // No launcher (nothing to resume or report) and the chat config instead of the job's.
  container.volumeMounts = (container.volumeMounts ?? [])
    .filter((m) => m.mountPath !== MOUNT_LAUNCHER)
    .map((m) => (m.mountPath === MOUNT_CONFIG ? { ...m, mountPath: CHAT_CONFIG_DIR } : m));
  spec.volumes = (spec.volumes ?? [])
    .filter((v) => v.name !== "finetune-launcher")
    .map((v) => (v.name === "finetune-config" ? { name: v.name, configMap: { name: opts.name } } : v));
  spec.restartPolicy = "Never";
  // No stage or attempt label: the planner counts a stage's pods by them, and this pod is no stage's.
  const labels = { ...(template.metadata?.labels ?? {}), ...chatLabels(input) };
  delete labels[LABEL_STAGE];
  delete labels[LABEL_ATTEMPT];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: opts.name,
      namespace: input.job.namespace,
      labels,
      ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
      // Deleting the FineTuneJob deletes a chat left behind by a killed CLI (not a controller reference: the operator does not manage it).
      ownerReferences: [{ apiVersion: API_VERSION, kind: KIND, name: input.job.name, uid: input.job.uid }],
    },
    spec,
  };
}

function chatLabels(input: RenderInput): Record<string, string> {
  return { [LABEL_JOB_NAME]: input.job.name, [LABEL_COMPONENT]: "chat", [LABEL_MANAGED_BY]: MANAGED_BY };
}
