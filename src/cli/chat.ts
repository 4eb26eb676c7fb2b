/**
 * `kubectl finetune chat NAME [--merged] [--port 7860]`: a short-lived pod on the job's claim running Axolotl's
 * Gradio UI on the adapter (or the merged model), port-forwarded to this machine with `kubectl port-forward`
 * (client-node's port-forward needs a WebSocket upgrade that proxies often break; kubectl is there anyway for a
 * kubectl plugin). The pod and its ConfigMap are deleted when the command ends: Ctrl+C, the port-forward or the pod
 * ending. A CLI killed outright leaves the pod until the FineTuneJob is deleted (it is owned by it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { V1Pod } from "@kubernetes/client-node";
import { parseAxolotlYaml } from "../axolotl/yaml.ts";
import { isNotFound } from "../kube/errors.ts";
import { CHAT_PORT, renderChatConfigMap, renderChatPod } from "../render/chat.ts";
import { configMapName } from "../render/names.ts";
import { validateFineTuneJob } from "../validation/job.ts";
import type { ClusterClient, ClusterOptions } from "./cluster.ts";
import { CliError } from "./documents.ts";

export interface ChatCliOptions extends ClusterOptions {
  merged: boolean;
  localPort: number;
  /** How long the pod may take to start (image pull, GPU scheduling). */
  startTimeoutMs?: number;
  /** Ends the chat (tests; the command itself ends on SIGINT/SIGTERM). */
  signal?: AbortSignal;
  kubectl?: string;
}

export async function chat(client: ClusterClient, name: string, opts: ChatCliOptions, out: (s: string) => void): Promise<number> {
  const ftj = await client.get(name);
  const stages = ftj.status?.stages;
  if (stages?.train?.phase !== "Succeeded")
    throw new CliError(`${name}: training has not succeeded yet (train stage ${stages?.train?.phase ?? "not started"}); nothing to chat with`, 1);
  if (opts.merged && stages?.merge?.phase !== "Succeeded")
    throw new CliError(`${name}: no merged model (merge stage ${stages?.merge?.phase ?? "not run"}); drop --merged to chat with the adapter`, 1);
  const { spec } = validateFineTuneJob(ftj);
  if (!spec) throw new CliError(`${name}: its spec no longer validates; fix it first`, 1);
  const trained = await trainedConfig(client, name);
  const input = {
    job: { name, namespace: client.namespace, uid: ftj.metadata.uid ?? "" },
    spec: ftj.status?.startedWith ? { ...spec, ...ftj.status.startedWith } : spec,
    axolotlConfig: trained,
    settings: { launcherSource: {} }, // the chat pod runs no launcher
  };
  const podName = `${name}-chat-${randomBytes(3).toString("hex")}`;
  const pod = renderChatPod(input, { name: podName, merged: opts.merged });
  const created = await client.core.createNamespacedPod({ namespace: client.namespace, body: pod });
  const configMap = renderChatConfigMap(input, trained, { name: podName, merged: opts.merged });
  // Owned by the pod: gone with it even if this process dies before its own cleanup.
  configMap.metadata!.ownerReferences = [{ apiVersion: "v1", kind: "Pod", name: podName, uid: created.metadata?.uid ?? "" }];
  let forward: ChildProcess | undefined;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  opts.signal?.addEventListener("abort", onSignal, { once: true });
  try {
    await client.core.createNamespacedConfigMap({ namespace: client.namespace, body: configMap });
    out(`pod ${podName}: starting axolotl inference --gradio on the ${opts.merged ? "merged model" : "adapter"}`);
    const running = await waitRunning(client, podName, opts.startTimeoutMs ?? 15 * 60_000, stop.signal);
    if (!running) return stop.signal.aborted ? 0 : 1;
    forward = spawn(
      opts.kubectl ?? "kubectl",
      [
        "port-forward",
        `pod/${podName}`,
        `${opts.localPort}:${CHAT_PORT}`,
        "-n",
        client.namespace,
        ...(opts.kubeconfig ? ["--kubeconfig", opts.kubeconfig] : []),
        ...(opts.context ? ["--context", opts.context] : []),
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    out(`Gradio UI at http://127.0.0.1:${opts.localPort} once the model is loaded (Ctrl+C ends the chat and deletes the pod)`);
    const ended = await new Promise<"stopped" | "forward">((resolve) => {
      stop.signal.addEventListener("abort", () => resolve("stopped"), { once: true });
      forward!.once("exit", () => resolve("forward"));
      forward!.once("error", () => resolve("forward"));
    });
    if (ended === "forward") out("port-forward ended");
    return ended === "stopped" ? 0 : 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    if (forward && forward.exitCode === null) forward.kill("SIGTERM");
    await client.core.deleteNamespacedPod({ namespace: client.namespace, name: podName, gracePeriodSeconds: 0 }).catch((err: unknown) => {
      if (!isNotFound(err)) out(`could not delete pod ${podName}: delete it with kubectl delete pod ${podName}`);
    });
    await client.core.deleteNamespacedConfigMap({ namespace: client.namespace, name: podName }).catch(() => undefined);
    out(`pod ${podName} deleted`);
  }
}

/** The config the job trained with: its rendered ConfigMap (output_dir and the rest as the operator set them). */
async function trainedConfig(client: ClusterClient, name: string): Promise<Record<string, unknown>> {
  try {
    const cm = await client.core.readNamespacedConfigMap({ namespace: client.namespace, name: configMapName(name) });
    const parsed = parseAxolotlYaml(cm.data?.["config.yaml"] ?? "");
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  throw new CliError(`${name}: its rendered config (ConfigMap ${configMapName(name)}) is missing`, 1);
}

async function waitRunning(client: ClusterClient, podName: string, timeoutMs: number, stop: AbortSignal): Promise<V1Pod | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (!stop.aborted && Date.now() < deadline) {
    const pod = await client.core.readNamespacedPod({ namespace: client.namespace, name: podName });
    if (pod.status?.phase === "Running") return pod;
    if (pod.status?.phase === "Failed" || pod.status?.phase === "Succeeded")
      throw new CliError(`pod ${podName} ended (${pod.status.phase}) before the UI started`, 1);
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (!stop.aborted) throw new CliError(`pod ${podName} did not start within ${Math.round(timeoutMs / 1000)} s`, 1);
  return undefined;
}
