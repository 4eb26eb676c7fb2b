/**
 * Pure pieces of running Kubeflow Trainer and JobSet as local processes beside
 * the benchmark's control plane: which release objects to install, how their
 * webhooks and the JobSet CRD change outside a cluster, the processes' config
 * files, and the TrainJob the scenarios create. No I/O here; kubeflow-trainer.ts
 * does the installing and starting.
 */
import { stringify } from "yaml";
import type { Obj } from "./kustomize.ts";

export const NAMESPACE = "kubeflow-system";
export const TRAINER_SERVICE_ACCOUNT = "kubeflow-trainer-controller-manager";
export const JOBSET_SERVICE_ACCOUNT = "jobset-controller-manager";
export const RUNTIME = "torch-distributed";
/** The runtime's replicatedJob that runs training (torch-distributed has only this one). */
export const TRAINER_REPLICATED_JOB = "node";
/** Manager of the benchmark's runtime patch (TrainJob spec.runtimePatches[].manager); its webhook wants a domain-prefixed path. */
export const PATCH_MANAGER = "bench.finetune.dev/harness";

export const JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name";
export const RESTART_ATTEMPT_LABEL = "jobset.sigs.k8s.io/restart-attempt";
export const REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name";

/** Kinds the benchmark installs from the release trees; the rest (Deployment, Service, Secret, ConfigMap) the local processes replace. */
const INSTALLED_KINDS = new Set([
  "Namespace",
  "CustomResourceDefinition",
  "ServiceAccount",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
  "MutatingWebhookConfiguration",
  "ValidatingWebhookConfiguration",
]);

export interface Ports {
  health: number;
  metrics: number;
  webhook: number;
}

/**
 * The objects to install, in order: namespace, CRDs, RBAC, webhooks. JobSet's own Namespace (renamed by its tree's
 * `namespace`) is dropped: both run in Trainer's namespace, as Trainer's release installs JobSet.
 */
export function selectInstallObjects(trainer: readonly Obj[], jobset: readonly Obj[]): Obj[] {
  const keep = (o: Obj) => INSTALLED_KINDS.has(o.kind ?? "");
  const all = [...trainer.filter(keep), ...jobset.filter((o) => keep(o) && o.kind !== "Namespace")];
  const order = (o: Obj) => ["Namespace", "CustomResourceDefinition"].indexOf(o.kind ?? "") >>> 0;
  return all
    .map((o, i) => ({ o, i }))
    .sort((a, b) => order(a.o) - order(b.o) || a.i - b.i)
    .map(({ o }) => o);
}

/** The ClusterTrainingRuntime the TrainJobs refer to. */
export function selectRuntime(runtimes: readonly Obj[], name = RUNTIME): Obj {
  const r = runtimes.find((o) => o.kind === "ClusterTrainingRuntime" && o.metadata?.name === name);
  if (!r) throw new Error(`no ClusterTrainingRuntime ${name} in the runtimes tree`);
  return r;
}

/** A webhook configuration that calls a local process: each webhook's Service reference becomes a URL on 127.0.0.1, trusted through `caBundle`. */
export function webhookToLocal(o: Obj, port: number, caBundleB64: string): Obj {
  const out = structuredClone(o);
  for (const w of (out.webhooks ?? []) as Array<{ clientConfig: { service?: { path?: string }; url?: string; caBundle?: string } }>) {
    const path = w.clientConfig.service?.path ?? "/";
    w.clientConfig = { url: `https://127.0.0.1:${port}${path}`, caBundle: caBundleB64 };
  }
  return out;
}

/** JobSet's CRD ships a conversion webhook; with one served version nothing converts, so strategy None (no Service needed). */
export function withoutConversionWebhook(crd: Obj): Obj {
  const out = structuredClone(crd);
  out.spec = { ...out.spec, conversion: { strategy: "None" } };
  delete out.metadata?.annotations?.["cert-manager.io/inject-ca-from"];
  return out;
}

export interface TrainerConfigOptions {
  ports: Ports;
  /** Outside a pod there is no namespace file, so the Lease's namespace is given. */
  leaseNamespace: string;
  /** Release settings unless a test says otherwise. */
  qps?: number;
  burst?: number;
  trainJobConcurrency?: number;
}

/**
 * Trainer's Configuration: the release file (manifests/base/manager/controller_manager_config.yaml) with what
 * differs outside a cluster: ports on 127.0.0.1, the Lease namespace, certificate management off (the serving
 * certificate is a file, see kubeflow-trainer.ts), and the status server (alpha, off by default) left out.
 */
export function trainerConfig(o: TrainerConfigOptions): string {
  return stringify({
    apiVersion: "config.trainer.kubeflow.org/v1alpha1",
    kind: "Configuration",
    health: { healthProbeBindAddress: `127.0.0.1:${o.ports.health}`, readinessEndpointName: "readyz", livenessEndpointName: "healthz" },
    metrics: { bindAddress: `127.0.0.1:${o.ports.metrics}`, secureServing: true },
    webhook: { port: o.ports.webhook, host: "127.0.0.1" },
    leaderElection: {
      leaderElect: true,
      resourceName: "trainer.kubeflow.org",
      resourceNamespace: o.leaseNamespace,
      leaseDuration: "15s",
      renewDeadline: "10s",
      retryPeriod: "2s",
    },
    controller: {
      groupKindConcurrency: {
        "TrainJob.trainer.kubeflow.org": o.trainJobConcurrency ?? 5,
        "TrainingRuntime.trainer.kubeflow.org": 1,
        "ClusterTrainingRuntime.trainer.kubeflow.org": 1,
      },
    },
    certManagement: { enable: false },
    clientConnection: { qps: o.qps ?? 50, burst: o.burst ?? 100 },
  });
}

export interface JobsetConfigOptions {
  ports: Ports;
  leaseNamespace: string;
  /** Directory with tls.crt / tls.key for the webhook and metrics servers. */
  certDir: string;
  qps?: number;
  burst?: number;
}

/** JobSet's Configuration: its release file plus the same out-of-cluster differences; QPS/burst 500 are its defaults. */
export function jobsetConfig(o: JobsetConfigOptions): string {
  return stringify({
    apiVersion: "config.jobset.x-k8s.io/v1alpha1",
    kind: "Configuration",
    leaderElection: { leaderElect: true, resourceName: "6d4f6a47.jobset.x-k8s.io", resourceNamespace: o.leaseNamespace },
    internalCertManagement: { enable: false },
    // Endpoint names stay at their defaults ("/readyz", "/healthz"): JobSet hands them to the ServeMux as they are.
    health: { healthProbeBindAddress: `127.0.0.1:${o.ports.health}` },
    metrics: { bindAddress: `127.0.0.1:${o.ports.metrics}`, certDir: o.certDir },
    webhook: { port: o.ports.webhook, host: "127.0.0.1", certDir: o.certDir },
    clientConnection: { qps: o.qps ?? 500, burst: o.burst ?? 500 },
  });
}

export interface TrainJobShape {
  nodes: number;
  gpusPerNode: number;
  /** Pod annotations (kwok fate) and tolerations (the fake nodes' taint) patched into the training pods. */
  podAnnotations: Record<string, string>;
  tolerations: object[];
}

/** A TrainJob on the torch-distributed runtime; kwok's pod fate and the fake nodes' toleration go in through a runtime patch. */
export function trainJobManifest(name: string, namespace: string, shape: TrainJobShape): Obj {
  return {
    apiVersion: "trainer.kubeflow.org/v1alpha1",
    kind: "TrainJob",
    metadata: { name, namespace },
    spec: {
      runtimeRef: { name: RUNTIME },
      trainer: { numNodes: shape.nodes, resourcesPerNode: { limits: { "nvidia.com/gpu": String(shape.gpusPerNode) } } },
      runtimePatches: [
        {
          manager: PATCH_MANAGER,
          trainingRuntimeSpec: {
            template: {
              spec: {
                replicatedJobs: [
                  {
                    name: TRAINER_REPLICATED_JOB,
                    template: { spec: { template: { metadata: { annotations: shape.podAnnotations }, spec: { tolerations: shape.tolerations } } } },
                  },
                ],
              },
            },
          },
        },
      ],
    },
  };
}

/** A TrainJob's terminal state from its conditions (Complete / Failed), as Trainer mirrors them from the JobSet. */
export function trainJobTerminal(job: Obj): "Succeeded" | "Failed" | undefined {
  const conds = (job.status?.conditions ?? []) as Array<{ type: string; status: string }>;
  if (conds.some((c) => c.type === "Complete" && c.status === "True")) return "Succeeded";
  if (conds.some((c) => c.type === "Failed" && c.status === "True")) return "Failed";
  return undefined;
}
