/**
 * Simulated container logs for kwok pods.
 *
 *   await setPodLogs(ns, 'trainer-0', 'step 1 loss=2.3\nstep 2 loss=1.9\n');
 *   await appendPodLogs(ns, 'trainer-0', 'step 3 loss=1.5\n');   // a follower sees this
 *   // GET /api/v1/namespaces/<ns>/pods/trainer-0/log  ->  the text
 *
 * How it works: the text is written, in the CRI log format, to a file under the
 * cluster state dir (pod-logs/<ns>/<pod>/<container|_all>.log), and a kwok `Logs`
 * object (kwok.x-k8s.io/v1alpha1, named like the pod) points kwok's kubelet server
 * at it. The apiserver proxies pods/log to kwok (node InternalIP 127.0.0.1, the
 * kwok port as kubelet port). Pods without a Logs object read an empty log.
 *
 * Supported: container selection, tailLines, limitBytes, timestamps, sinceSeconds,
 * follow (streams appended text). Caveat: kwok cannot tell when a container exits,
 * so a follow request never ends by itself - abort it (or use a timeout).
 */
import { existsSync } from "node:fs";
import { appendFile, mkdir, readdir, rename, writeFile } from "node:fs/promises";
import { get as httpsGet, type RequestOptions } from "node:https";
import { join } from "node:path";
import { layout } from "../cluster/paths.ts";
import { applyObjects } from "./apply.ts";
import { ignoreNotFound, kubeClients } from "./kube.ts";
import { waitFor } from "./wait.ts";

export interface PodLogsOptions {
  /** Only this container (default: every container of the pod without its own text). */
  container?: string;
  /** Wait until the API serves the text (only when the pod exists and is scheduled). Default true. */
  wait?: boolean;
}

const ALL = "_all";

/** Text -> CRI log lines ("<RFC3339Nano> stdout F <line>"); a last line without "\n" is tagged P (partial). */
function toCri(text: string): string {
  if (text === "") return "";
  const ts = new Date().toISOString().replace("Z", "000000Z");
  const lines = text.split("\n");
  const last = lines.pop()!; // '' when text ends with a newline
  let out = lines.map((l) => `${ts} stdout F ${l}\n`).join("");
  if (last !== "") out += `${ts} stdout P ${last}\n`;
  return out;
}

function podDir(namespace: string, pod: string): string {
  return join(layout().podLogs, namespace, pod);
}

async function syncLogsObject(namespace: string, pod: string): Promise<void> {
  const k = await kubeClients();
  const dir = podDir(namespace, pod);
  const files = (await readdir(dir)).filter((f) => f.endsWith(".log"));
  const logs = files.map((f) => {
    const c = f.slice(0, -".log".length);
    return c === ALL ? { containers: [] as string[], logsFile: join(dir, f), follow: true } : { containers: [c], logsFile: join(dir, f), follow: true };
  });
  // Containers without their own file fall back to the empty log.
  if (!files.includes(`${ALL}.log`)) logs.push({ containers: [], logsFile: join(layout().podLogs, "empty.log"), follow: true });
  const podObj = await ignoreNotFound(k.core.readNamespacedPod({ name: pod, namespace }));
  await applyObjects(
    [
      {
        apiVersion: "kwok.x-k8s.io/v1alpha1",
        kind: "Logs",
        metadata: {
          name: pod,
          namespace,
          // Garbage-collected with the pod when it already exists.
          ...(podObj?.metadata?.uid ? { ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: pod, uid: podObj.metadata.uid }] } : {}),
        },
        spec: { logs },
      } as never,
    ],
    { clients: k },
  );
}

async function waitServed(namespace: string, pod: string, container: string | undefined, expected: string): Promise<void> {
  const k = await kubeClients();
  const p = await ignoreNotFound(k.core.readNamespacedPod({ name: pod, namespace }));
  if (!p?.spec?.nodeName) return;
  const name = container ?? p.spec.containers[0]?.name;
  await waitFor(
    `pods/log of ${namespace}/${pod}${name ? ` (container ${name})` : ""} to serve the text set by setPodLogs`,
    async () => (await k.core.readNamespacedPodLog({ name: pod, namespace, ...(name ? { container: name } : {}) })) === expected,
    { timeoutMs: 15_000, intervalMs: 100 },
  );
}

/** Replaces the log text of a pod (or one container). A running follow stream restarts from the new text. */
export async function setPodLogs(namespace: string, pod: string, text: string, opts: PodLogsOptions = {}): Promise<void> {
  const dir = podDir(namespace, pod);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${opts.container ?? ALL}.log`);
  // Write-then-rename so followers see a new file instead of a truncated one.
  await writeFile(`${file}.tmp`, toCri(text));
  await rename(`${file}.tmp`, file);
  await syncLogsObject(namespace, pod);
  if (opts.wait !== false) await waitServed(namespace, pod, opts.container, text);
}

/** Appends text to a pod's (or container's) log; `follow` readers receive it. */
export async function appendPodLogs(namespace: string, pod: string, text: string, opts: Omit<PodLogsOptions, "wait"> = {}): Promise<void> {
  const dir = podDir(namespace, pod);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${opts.container ?? ALL}.log`);
  const isNew = !existsSync(file);
  await appendFile(file, toCri(text));
  // A new file needs the Logs object to point at it.
  if (isNew) await syncLogsObject(namespace, pod);
}

export interface LogFollower {
  /** Everything received so far. */
  text(): string;
  /** Closes the stream (the server never ends a kwok follow stream by itself). */
  stop(): void;
}

/**
 * Opens `GET pods/<pod>/log?follow=true` and collects the text. Unlike client-node's
 * Log.log(), stopping it does not raise an unhandled AbortError.
 */
export async function followPodLogs(namespace: string, pod: string, opts: { container?: string } = {}): Promise<LogFollower> {
  const k = await kubeClients();
  const cluster = k.kc.getCurrentCluster();
  if (!cluster) throw new Error("kubeconfig has no current cluster");
  const url = new URL(`${cluster.server}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`);
  url.searchParams.set("follow", "true");
  if (opts.container) url.searchParams.set("container", opts.container);
  const reqOpts: RequestOptions = {};
  await k.kc.applyToHTTPSOptions(reqOpts);
  return new Promise((resolve, reject) => {
    let received = "";
    const req = httpsGet(url, reqOpts, (res) => {
      res.setEncoding("utf8");
      if (res.statusCode !== 200) {
        let body = "";
        res.on("data", (c: string) => (body += c));
        res.on("end", () => reject(new Error(`follow logs of ${namespace}/${pod}: HTTP ${res.statusCode}: ${body}`)));
        return;
      }
      res.on("data", (c: string) => (received += c));
      res.on("error", () => {});
      resolve({ text: () => received, stop: () => req.destroy() });
    });
    req.on("error", reject); // no-op once resolved (stop() destroys with an error)
  });
}
