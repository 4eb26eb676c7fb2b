/**
 * Starts the operator as a real process (`node src/main.ts`) against the test
 * cluster, so e2e tests exercise exactly what `npm start` runs: informers,
 * queue, leader election, HTTP endpoints. Also installs the CRD.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { V1Pod } from "@kubernetes/client-node";
import { progressAudience } from "../../src/render/names.ts";
import { ensureCluster } from "../cluster/cluster.ts";
import { kubeClients, type KubeClients } from "./kube.ts";
import { freshNamespace } from "./namespace.ts";
import { waitFor } from "./wait.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CRD_FILE = `${ROOT}crds/finetune.dev_finetunejobs.yaml`;

/** Applies the generated CRD (server-side apply) and waits until it is Established. */
export async function ensureCrd(): Promise<void> {
  const k = await kubeClients();
  const crd = parse(readFileSync(CRD_FILE, "utf8")) as { metadata: { name: string } };
  // kubectl, not client-node's object API: its serializer drops x-kubernetes-* schema fields (kubernetes-client/javascript #2384).
  await promisify(execFile)("kubectl", ["apply", "--server-side", "--force-conflicts", "--field-manager=finetune-e2e", "-f", CRD_FILE], {
    env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" },
  });
  await waitFor(`CRD ${crd.metadata.name} established`, async () => {
    const got = await k.apiext.readCustomResourceDefinition({ name: crd.metadata.name });
    return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
}

export interface OperatorProcess {
  proc: ChildProcess;
  /** Port of /healthz, /readyz, /metrics. */
  port: number;
  /** Port of the progress endpoint (when started with --progress-port). */
  progressPort?: number;
  /** Every log line so far (pino JSON objects). */
  logs: Record<string, unknown>[];
  /** Stops with SIGTERM (graceful) or SIGKILL, and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  metrics(): Promise<string>;
}

export interface StartOptions {
  namespace?: string;
  leaderElect?: boolean;
  leaseName?: string;
  leaseNamespace?: string;
  identity?: string;
  kubeconfig?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** The program: src/main.ts (default), or a compiled dist/main.js (the benchmark measures what the image runs). */
  entry?: string;
  /** node's own flags before the program (the Deployment's args, such as --no-opt --no-maglev). */
  nodeFlags?: string[];
}

export async function startOperator(opts: StartOptions = {}): Promise<OperatorProcess> {
  const k = await kubeClients();
  const args = [
    ...(opts.nodeFlags ?? []),
    "--no-warnings",
    opts.entry ?? `${ROOT}src/main.ts`,
    "--port=0",
    "--bind-address=127.0.0.1",
    "--restart-backoff-seconds=1",
    "--image-pull-grace-seconds=5",
    `--leader-elect=${opts.leaderElect ?? false}`,
    ...(opts.namespace ? [`--namespace=${opts.namespace}`] : []),
    ...(opts.leaseName ? [`--lease-name=${opts.leaseName}`] : []),
    ...(opts.leaseNamespace ? [`--lease-namespace=${opts.leaseNamespace}`] : []),
    ...(opts.identity ? [`--identity=${opts.identity}`] : []),
    ...(opts.extraArgs ?? []),
  ];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, KUBECONFIG: opts.kubeconfig ?? k.kubeconfigPath ?? "", ...(opts.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let buffer = "";
  let stderr = "";
  proc.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  proc.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const start = await waitFor(
    "operator to report its port",
    () => {
      if (proc.exitCode !== null) throw new Error(`operator exited with ${proc.exitCode}: ${stderr.slice(-2000)}`);
      return logs.find((l) => l.msg === "starting");
    },
    { timeoutMs: 30_000 },
  );
  return {
    proc,
    port: Number(start.port),
    ...(start.progressPort !== undefined ? { progressPort: Number(start.progressPort) } : {}),
    logs,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${Number(start.port)}/metrics`);
      return res.text();
    },
  };
}

/** Sum of a Prometheus counter/gauge over the series whose labels contain all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export interface SuiteNamespace {
  k: KubeClients;
  ns: string;
  /** Stops the given operators and deletes the namespace (kept with FINETUNE_E2E_KEEP_NAMESPACES=1). */
  cleanup(...operators: Array<OperatorProcess | undefined>): Promise<void>;
}

/** The start of every operator suite: cluster up, CRD applied, a fresh namespace for the suite's jobs. */
export async function suiteNamespace(prefix: string): Promise<SuiteNamespace> {
  await ensureCluster();
  await ensureCrd();
  const k = await kubeClients();
  const ns = await freshNamespace(prefix, { clients: k });
  return {
    k,
    ns: ns.name,
    async cleanup(...operators) {
      for (const op of operators) await op?.stop();
      await ns.cleanup();
    },
  };
}

/** A token as the kubelet projects it for a trainer: audience = the job, bound to the pod (what the progress endpoint checks). */
export async function progressToken(k: KubeClients, namespace: string, job: string, pod: V1Pod): Promise<string> {
  const res = await k.core.createNamespacedServiceAccountToken({
    namespace,
    name: "default",
    body: {
      spec: {
        audiences: [progressAudience({ namespace, name: job })],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata!.name!, uid: pod.metadata!.uid! },
      },
    },
  });
  return res.status!.token!;
}
