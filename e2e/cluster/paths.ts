/**
 * Where the local test control plane keeps its binaries and state.
 *
 *   binaries: $FINETUNE_CACHE_DIR/bin (default ~/.cache/finetune-operator/bin), built by build.sh
 *   state:    $FINETUNE_CLUSTER_DIR   (default ~/.cache/finetune-operator/cluster)
 *
 * The state dir holds certs, etcd data, pid files, logs, kubeconfigs, the chosen
 * ports (ports.json), hostPath volumes and pod log files. `down` deletes it.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const clusterSrcDir = dirname(fileURLToPath(import.meta.url));

export function cacheDir(): string {
  return process.env["FINETUNE_CACHE_DIR"] ?? join(homedir(), ".cache", "finetune-operator");
}

export function binDir(): string {
  return join(cacheDir(), "bin");
}

export function stateDir(): string {
  const dir = process.env["FINETUNE_CLUSTER_DIR"] ?? join(cacheDir(), "cluster");
  return resolve(dir);
}

/** Pinned versions from versions.env (KUBE_VERSION, ETCD_VERSION, KWOK_VERSION, HELM_VERSION). */
export function versions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(clusterSrcDir, "versions.env"), "utf8").split("\n")) {
    const m = /^\s*([A-Z_]+)=(\S+)/.exec(line);
    if (m?.[1] && m[2]) out[m[1]] = m[2];
  }
  return out;
}

export type Tool = "etcd" | "kwok" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "helm";
export const controlPlaneTools: Tool[] = ["etcd", "kwok", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];

/** Path of the cached binary for a tool at its pinned version (may not exist yet). */
export function binaryPath(tool: Tool): string {
  const v = versions();
  const version = tool === "etcd" ? v["ETCD_VERSION"] : tool === "kwok" ? v["KWOK_VERSION"] : tool === "helm" ? v["HELM_VERSION"] : v["KUBE_VERSION"];
  if (!version) throw new Error(`no version for ${tool} in versions.env`);
  return join(binDir(), `${tool}-${version}`);
}

/** Fixed layout inside the state dir. */
export function layout(root = stateDir()) {
  return {
    root,
    certs: join(root, "certs"),
    etcdData: join(root, "etcd"),
    pids: join(root, "pids"),
    logs: join(root, "logs"),
    config: join(root, "config"),
    volumes: join(root, "volumes"),
    podLogs: join(root, "pod-logs"),
    portsFile: join(root, "ports.json"),
    /** Admin kubeconfig (system:masters). This is what `cluster:kubeconfig` prints. */
    kubeconfig: join(root, "kubeconfig"),
    lockFile: join(root + ".lock"),
    readyFile: join(root, "ready.json"),
    /** API server audit log (JSON lines); only written when FINETUNE_CLUSTER_AUDIT_USERS is set at start. */
    auditLog: join(root, "logs", "audit.log"),
  };
}
export type Layout = ReturnType<typeof layout>;
