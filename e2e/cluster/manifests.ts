/**
 * Objects and config files the local cluster is bootstrapped with, and the
 * contract constants tests rely on (node names/labels/taint, fate annotations,
 * storage class).
 */
import { stringify } from "yaml";

// ---- fake GPU nodes -------------------------------------------------------

export const NODE_PREFIX = "kwok-gpu-";
export const KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node";
/** Taint on every fake node; pods must tolerate it (see kwokToleration). */
export const KWOK_TAINT = { key: "kwok.x-k8s.io/node", value: "fake", effect: "NoSchedule" } as const;
export const kwokToleration = { key: KWOK_TAINT.key, operator: "Equal", value: KWOK_TAINT.value, effect: KWOK_TAINT.effect } as const;
export const GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3";
export const GPUS_PER_NODE = 8;
export const nodeLabels = {
  type: "kwok",
  "nvidia.com/gpu.product": GPU_PRODUCT,
  "nvidia.com/gpu.count": String(GPUS_PER_NODE),
  "node.kubernetes.io/instance-type": "gpu-8x-h100",
} as const;

/** Number of fake nodes: $FINETUNE_CLUSTER_NODES or 4. */
export function nodeCount(): number {
  const n = Number.parseInt(process.env["FINETUNE_CLUSTER_NODES"] ?? "4", 10);
  return Number.isFinite(n) && n >= 0 ? n : 4;
}

export function nodeNames(count = nodeCount()): string[] {
  return Array.from({ length: count }, (_, i) => `${NODE_PREFIX}${i}`);
}

export function fakeNode(name: string): object {
  const resources = { cpu: "96", memory: "1Ti", "nvidia.com/gpu": String(GPUS_PER_NODE), pods: "110", "ephemeral-storage": "10Ti" };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      annotations: { [KWOK_NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
      labels: {
        ...nodeLabels,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
      },
    },
    spec: { taints: [{ ...KWOK_TAINT }] },
    status: {
      capacity: resources,
      allocatable: resources,
      addresses: [
        { type: "InternalIP", address: "127.0.0.1" },
        { type: "Hostname", address: name },
      ],
    },
  };
}

// ---- pod fate annotations (implemented by kwok-stages.yaml) ----------------

/** `succeed` (default when absent) | `fail` | `run` (stay Running until patched or deleted). */
export const FATE_ANNOTATION = "sim.finetune.dev/fate";
/** Seconds from status.startTime until succeed/fail (default 2; one-second granularity). */
export const RUN_SECONDS_ANNOTATION = "sim.finetune.dev/run-seconds";
/** Container exit code for fate=fail (default 1; 137 gives reason OOMKilled). */
export const EXIT_CODE_ANNOTATION = "sim.finetune.dev/exit-code";
/** Terminated-state message for fate=fail (as if written to the termination message path). */
export const TERMINATION_MESSAGE_ANNOTATION = "sim.finetune.dev/termination-message";
/** Optional seconds before a scheduled pod becomes Running (default 0). */
export const START_SECONDS_ANNOTATION = "sim.finetune.dev/start-seconds";

// ---- storage ---------------------------------------------------------------

export const STORAGE_CLASS = "standard";
/** Provisioner name served by provisioner.ts (any StorageClass with this provisioner is handled). */
export const PROVISIONER_NAME = "finetune.dev/hostpath";

export const storageClass = {
  apiVersion: "storage.k8s.io/v1",
  kind: "StorageClass",
  metadata: { name: STORAGE_CLASS, annotations: { "storageclass.kubernetes.io/is-default-class": "true" } },
  provisioner: PROVISIONER_NAME,
  reclaimPolicy: "Delete",
  volumeBindingMode: "Immediate",
};

// ---- kwok Logs CRD (schema kept open; kwok validates on use) ----------------

export const kwokLogsCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "logs.kwok.x-k8s.io" },
  spec: {
    group: "kwok.x-k8s.io",
    names: { kind: "Logs", listKind: "LogsList", plural: "logs", singular: "logs" },
    scope: "Namespaced",
    versions: [
      {
        name: "v1alpha1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            },
          },
        },
      },
    ],
  },
};

/** kwok config document: every pod without a Logs object serves `logsFile` (an empty file). */
export function clusterLogsYaml(logsFile: string): string {
  return stringify({
    apiVersion: "kwok.x-k8s.io/v1alpha1",
    kind: "ClusterLogs",
    metadata: { name: "default-empty-logs" },
    spec: { selector: {}, logs: [{ containers: [], logsFile, follow: true }] },
  });
}

// ---- config files ----------------------------------------------------------

export interface KubeconfigInput {
  server: string;
  user: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A self-contained kubeconfig (credentials embedded, so the file can be copied). */
export function kubeconfigYaml(k: KubeconfigInput): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "finetune-local", cluster: { server: k.server, "certificate-authority-data": k.ca.toString("base64") } }],
    users: [{ name: k.user, user: { "client-certificate-data": k.cert.toString("base64"), "client-key-data": k.key.toString("base64") } }],
    contexts: [{ name: "finetune-local", context: { cluster: "finetune-local", user: k.user, namespace: "default" } }],
    "current-context": "finetune-local",
    preferences: {},
  });
}

export function schedulerConfigYaml(kubeconfigPath: string): string {
  return stringify({
    apiVersion: "kubescheduler.config.k8s.io/v1",
    kind: "KubeSchedulerConfiguration",
    clientConnection: { kubeconfig: kubeconfigPath, qps: 200, burst: 400 },
    leaderElection: { leaderElect: false },
  });
}
