/**
 * Pure builders: FineTuneJob (+ operator settings) -> the Kubernetes objects
 * it needs. No I/O here; the controller decides when to create them and the
 * CLI prints them (`kubectl finetune render`). Golden tests pin the output.
 */
import type {
  V1ConfigMap,
  V1Container,
  V1EnvVar,
  V1Job,
  V1PersistentVolumeClaim,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { stringifyAxolotlYaml } from "../axolotl/yaml.ts";
import { KUEUE_QUEUE_LABEL, LABEL_COMPONENT, LABEL_MANAGED_BY, MANAGED_BY, type Stage } from "../api/group.ts";
import { defaultAccessModes, type FineTuneJobSpec } from "../api/schema.ts";
import { dynamicCheckpointEnabled, dynamicCheckpointTrigger, hubModelOf, renderAxolotlConfig } from "./axolotl-config.ts";
import { childLabels, ownerReference, type JobRef } from "./labels.ts";
import {
  CONFIG_FILE,
  LAUNCHER_FILE,
  MASTER_PORT,
  MOUNT_CACHE,
  MOUNT_CONFIG,
  MOUNT_LAUNCHER,
  MOUNT_OUTPUT,
  OUTPUT_DIR,
  PROGRESS_TOKEN_PATH,
  SMOKE_ANSWERS_FILE,
  TRAINER_CONTAINER,
  configMapName,
  launcherConfigMapName,
  outputClaimName,
  progressAudience,
  serviceName,
  stageJobName,
  type LauncherSource,
} from "./names.ts";

/** Settings of the operator installation (flags / Helm values), not of one job. */
export interface OperatorSettings {
  /** The files of src/trainer/launcher/, shipped to pods in the namespace's shared launcher ConfigMap (one key each). */
  launcherSource: LauncherSource;
  /** Where trainers push progress (optional; logs are the fallback). */
  progressUrl?: string;
  /** PEM CA bundle the trainer uses to verify an https progressUrl signed by a private CA (optional). */
  progressCaBundle?: string;
}

/** A built object: apiVersion and kind are always set, so it can be created as it is. */
export type Rendered<T> = T & { apiVersion: string; kind: string };

export interface RenderInput {
  job: JobRef;
  spec: FineTuneJobSpec;
  /** The user's Axolotl config, resolved from spec.config or spec.configFrom. */
  axolotlConfig: Record<string, unknown>;
  settings: OperatorSettings;
}

const PROGRESS_CA_KEY = "progress-ca.crt";

function meta(input: RenderInput, name: string, stage?: Stage, attempt?: number, owned = true) {
  return {
    name,
    namespace: input.job.namespace,
    labels: childLabels(input.job, stage, attempt),
    ...(owned ? { ownerReferences: [ownerReference(input.job)] } : {}),
  };
}

function outputSubPath(input: RenderInput): string {
  const out = input.spec.storage.output;
  return out.subPath ?? (out.existingClaim ? input.job.name : "");
}

function outputClaim(input: RenderInput): string {
  return input.spec.storage.output.existingClaim ?? outputClaimName(input.job.name);
}

/** Paths of the results inside the output claim, for status.outputs. */
export function outputPaths(input: RenderInput) {
  const prefix = outputSubPath(input) ? `${outputSubPath(input)}/` : "";
  return { claimName: outputClaim(input), outputDir: OUTPUT_DIR, adapterPath: `${prefix}model`, mergedModelPath: `${prefix}model/merged` };
}

/** Where the smoke test's answers are, inside the output claim (for status.smokeTest). */
export function smokeAnswersPath(input: RenderInput): string {
  const prefix = outputSubPath(input) ? `${outputSubPath(input)}/` : "";
  return `${prefix}${SMOKE_ANSWERS_FILE.slice(MOUNT_OUTPUT.length + 1)}`;
}

export function renderConfigMap(input: RenderInput): Rendered<V1ConfigMap> {
  const { config } = renderAxolotlConfig(input.axolotlConfig);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(input, configMapName(input.job.name)),
    data: {
      // Written so that PyYAML (YAML 1.1) reads back exactly these values: a string "yes" or "2e-4" is quoted.
      "config.yaml": stringifyAxolotlYaml(config),
      // Shipped with the job (not mounted from the operator's namespace): trainers run in the job's namespace.
      ...(input.settings.progressUrl && input.settings.progressCaBundle ? { [PROGRESS_CA_KEY]: input.settings.progressCaBundle } : {}),
    },
  };
}

/**
 * The launcher, once per namespace and launcher version rather than once per job: 75 KB per job would add up to
 * hundreds of MB in etcd and in every ConfigMap LIST with thousands of jobs. Immutable (kubelets do not watch it)
 * and not owned by any one job; old versions stay after an upgrade (label finetune.dev/component=launcher).
 * Every module is a key, and the volume mounts all keys as one folder, so the entry imports its siblings there.
 */
export function renderLauncherConfigMap(namespace: string, settings: OperatorSettings): Rendered<V1ConfigMap> {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: launcherConfigMapName(settings.launcherSource), namespace, labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_COMPONENT]: "launcher" } },
    immutable: true,
    data: { ...settings.launcherSource },
  };
}

/** The output claim the operator creates (none when existingClaim is set). Retained claims carry no ownerReference, so garbage collection cannot take them. */
export function renderOutputClaim(input: RenderInput): Rendered<V1PersistentVolumeClaim> | undefined {
  const out = input.spec.storage.output;
  if (out.existingClaim) return undefined;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: meta(input, outputClaimName(input.job.name), undefined, undefined, out.deletionPolicy === "Delete"),
    spec: {
      accessModes: defaultAccessModes(input.spec),
      resources: { requests: { storage: String(out.size) } },
      ...(out.storageClassName !== undefined ? { storageClassName: out.storageClassName } : {}),
    },
  };
}

/** Only a gang of several nodes meets over the network; one node's torchrun rendezvous stays on loopback. */
export const needsRankService = (input: RenderInput): boolean => input.spec.nodes > 1;

/**
 * Headless Service giving every training pod a stable DNS name, so rank 0 is reachable as `<job>-0.<service>`.
 * None for a single node: nothing resolves it, and it would be one more object and write per job.
 */
export function renderService(input: RenderInput): Rendered<V1Service> | undefined {
  if (!needsRankService(input)) return undefined;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(input, serviceName(input.job.name), "train"),
    spec: {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: childLabels(input.job, "train"),
      ports: [{ name: "rendezvous", port: MASTER_PORT, targetPort: MASTER_PORT }],
    },
  };
}

function volumes(input: RenderInput): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const spec = input.spec;
  const subPath = outputSubPath(input);
  const vols: V1Volume[] = [
    { name: "finetune-config", configMap: { name: configMapName(input.job.name) } },
    { name: "finetune-launcher", configMap: { name: launcherConfigMapName(input.settings.launcherSource) } },
    { name: "finetune-output", persistentVolumeClaim: { claimName: outputClaim(input) } },
    // NCCL and dataloader workers need far more than the container runtime's 64 MiB /dev/shm (SIGBUS otherwise).
    { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: String(spec.sharedMemory) } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: "finetune-config", mountPath: MOUNT_CONFIG, readOnly: true },
    { name: "finetune-launcher", mountPath: MOUNT_LAUNCHER, readOnly: true },
    { name: "finetune-output", mountPath: MOUNT_OUTPUT, ...(subPath ? { subPath } : {}) },
    { name: "dshm", mountPath: "/dev/shm" },
  ];
  const cache = spec.storage.cache;
  if (cache) {
    vols.push({ name: "finetune-cache", persistentVolumeClaim: { claimName: cache.existingClaim } });
    mounts.push({ name: "finetune-cache", mountPath: MOUNT_CACHE, ...(cache.subPath ? { subPath: cache.subPath } : {}) });
  }
  if (input.settings.progressUrl) {
    vols.push({
      name: "finetune-progress-token",
      projected: { sources: [{ serviceAccountToken: { audience: progressAudience(input.job), expirationSeconds: 3600, path: "token" } }] },
    });
    mounts.push({ name: "finetune-progress-token", mountPath: PROGRESS_TOKEN_PATH.replace(/\/token$/, ""), readOnly: true });
  }
  vols.push(...((spec.volumes ?? []) as unknown as V1Volume[]));
  mounts.push(...((spec.volumeMounts ?? []) as unknown as V1VolumeMount[]));
  return { volumes: vols, mounts };
}

function env(input: RenderInput, stage: Stage, attempt: number): V1EnvVar[] {
  const spec = input.spec;
  const vars: V1EnvVar[] = [
    { name: "FINETUNE_STAGE", value: stage },
    { name: "FINETUNE_ATTEMPT", value: String(attempt) },
    { name: "FINETUNE_OUTPUT_DIR", value: OUTPUT_DIR },
    { name: "FINETUNE_NNODES", value: String(stage === "train" ? spec.nodes : 1) },
    { name: "FINETUNE_TERMINATION_GRACE_SECONDS", value: String(spec.terminationGracePeriodSeconds) },
    { name: "PYTHONUNBUFFERED", value: "1" },
  ];
  if (stage === "train") {
    const trigger = dynamicCheckpointEnabled(input.axolotlConfig) ? dynamicCheckpointTrigger(input.axolotlConfig) : undefined;
    vars.push(
      // torchrun reads PET_* as defaults of its flags; the node rank comes from the Job's completion index.
      { name: "FINETUNE_NODE_RANK", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
      { name: "PET_NODE_RANK", valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
      { name: "FINETUNE_REQUIRE_FINAL_MODEL", value: "true" },
      { name: "FINETUNE_DYNAMIC_CHECKPOINT", value: String(dynamicCheckpointEnabled(input.axolotlConfig)) },
      // The launcher must create the file Axolotl watches: the config may name its own.
      ...(trigger ? [{ name: "FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER", value: trigger }] : []),
      { name: "TORCH_NCCL_ASYNC_ERROR_HANDLING", value: "1" },
    );
    if (input.settings.progressUrl) {
      vars.push(
        { name: "FINETUNE_PROGRESS_URL", value: `${input.settings.progressUrl.replace(/\/+$/, "")}/v1/progress/${input.job.namespace}/${input.job.name}` },
        { name: "FINETUNE_PROGRESS_TOKEN_FILE", value: PROGRESS_TOKEN_PATH },
      );
      if (input.settings.progressCaBundle) vars.push({ name: "FINETUNE_PROGRESS_CA_FILE", value: `${MOUNT_CONFIG}/${PROGRESS_CA_KEY}` });
    }
  } else {
    vars.push({ name: "FINETUNE_NODE_RANK", value: "0" });
  }
  if (!spec.telemetry) vars.push({ name: "AXOLOTL_DO_NOT_TRACK", value: "1" });
  if (spec.storage.cache) {
    vars.push({ name: "HF_HOME", value: `${MOUNT_CACHE}/huggingface` });
    // Preprocess fills the shared cache once, so training nodes load the model from it instead of each downloading it.
    const hub = stage === "preprocess" ? hubModelOf(input.axolotlConfig) : undefined;
    if (hub)
      vars.push({ name: "FINETUNE_PREFETCH_MODEL", value: hub.repo }, ...(hub.revision ? [{ name: "FINETUNE_PREFETCH_REVISION", value: hub.revision }] : []));
  }
  const token = spec.secrets?.huggingFaceToken;
  if (token) vars.push({ name: "HF_TOKEN", valueFrom: { secretKeyRef: { name: token.name, key: token.key } } });
  const wandb = spec.secrets?.wandbApiKey;
  if (wandb) vars.push({ name: "WANDB_API_KEY", valueFrom: { secretKeyRef: { name: wandb.name, key: wandb.key } } });
  // User variables last: they win over ours where names collide.
  vars.push(...((spec.env ?? []) as unknown as V1EnvVar[]));
  return vars;
}

interface ContainerPlan {
  stage: Stage;
  attempt: number;
  gpus: number;
  command: string[];
  extraEnv?: V1EnvVar[];
}

function podTemplate(input: RenderInput, plan: ContainerPlan, podSpecExtra: Partial<V1PodSpec>): V1PodTemplateSpec {
  const spec = input.spec;
  const { volumes: vols, mounts } = volumes(input);
  const requests: Record<string, string> = {};
  const limits: Record<string, string> = {};
  if (spec.resources?.cpu !== undefined) requests.cpu = String(spec.resources.cpu);
  if (spec.resources?.memory !== undefined) {
    requests.memory = String(spec.resources.memory);
    limits.memory = String(spec.resources.memory);
  }
  if (plan.gpus > 0) {
    requests[spec.gpuResourceName] = String(plan.gpus);
    limits[spec.gpuResourceName] = String(plan.gpus);
  }
  const container: V1Container = {
    name: TRAINER_CONTAINER,
    image: spec.image,
    imagePullPolicy: spec.imagePullPolicy,
    command: ["python3", LAUNCHER_FILE, "--", ...plan.command],
    env: [...env(input, plan.stage, plan.attempt), ...(plan.extraEnv ?? [])],
    ...(spec.envFrom ? { envFrom: spec.envFrom as V1Container["envFrom"] } : {}),
    resources: { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) },
    volumeMounts: mounts,
    // The launcher writes a JSON summary (exit code, resume point, log tail) here; the operator explains failures from it without reading logs.
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const scheduling = spec.scheduling;
  const podSpec: V1PodSpec = {
    restartPolicy: "Never",
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
    containers: [container],
    volumes: vols,
    enableServiceLinks: false,
    ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
    ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
    ...(scheduling?.nodeSelector ? { nodeSelector: scheduling.nodeSelector } : {}),
    ...(scheduling?.tolerations ? { tolerations: scheduling.tolerations as V1PodSpec["tolerations"] } : {}),
    ...(scheduling?.affinity ? { affinity: scheduling.affinity as V1PodSpec["affinity"] } : {}),
    ...(scheduling?.priorityClassName ? { priorityClassName: scheduling.priorityClassName } : {}),
    ...(scheduling?.schedulerName ? { schedulerName: scheduling.schedulerName } : {}),
    ...podSpecExtra,
  };
  return {
    metadata: {
      labels: { ...(spec.podLabels ?? {}), ...childLabels(input.job, plan.stage, plan.attempt) },
      ...(spec.podAnnotations ? { annotations: { ...spec.podAnnotations } } : {}),
    },
    spec: podSpec,
  };
}

function stageJob(input: RenderInput, plan: ContainerPlan, jobSpec: Partial<V1Job["spec"]>, podSpecExtra: Partial<V1PodSpec> = {}): Rendered<V1Job> {
  const queue = input.spec.scheduling?.queueName;
  const metadata = meta(input, stageJobName(input.job.name, plan.stage, plan.attempt), plan.stage, plan.attempt);
  if (queue) metadata.labels[KUEUE_QUEUE_LABEL] = queue;
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata,
    spec: {
      // The operator owns retries (it must restart all ranks together and resume), so the Job never retries a pod itself.
      backoffLimit: 0,
      // Kueue admits a queued Job by unsuspending it; created suspended, it waits for quota for ALL its pods.
      ...(queue ? { suspend: true } : {}),
      ...jobSpec,
      template: podTemplate(input, plan, podSpecExtra),
    },
  };
}

export function renderPreprocessJob(input: RenderInput, attempt: number): Rendered<V1Job> {
  return stageJob(
    input,
    // Tokenizing needs no GPU; keeping it off GPUs frees them and avoids NCCL timeouts while training ranks wait (Axolotl #2684).
    { stage: "preprocess", attempt, gpus: 0, command: ["axolotl", "preprocess", CONFIG_FILE], extraEnv: [{ name: "CUDA_VISIBLE_DEVICES", value: "" }] },
    { completions: 1, parallelism: 1 },
  );
}

export function renderTrainJob(input: RenderInput, attempt: number): Rendered<V1Job> {
  const spec = input.spec;
  const jobName = stageJobName(input.job.name, "train", attempt);
  const multiNode = needsRankService(input);
  const master = multiNode ? `${jobName}-0.${serviceName(input.job.name)}.${input.job.namespace}.svc` : "127.0.0.1";
  // Static rendezvous: rank 0 is pinned to pod index 0, every node names the same
  // master, and no random --rdzv_id can split the gang (see axolotl.md).
  const torchrun = [`--nnodes=${spec.nodes}`, `--nproc_per_node=${spec.gpusPerNode}`, `--master_addr=${master}`, `--master_port=${MASTER_PORT}`];
  return stageJob(
    input,
    { stage: "train", attempt, gpus: spec.gpusPerNode, command: ["axolotl", "train", CONFIG_FILE, "--launcher", "torchrun", "--", ...torchrun] },
    {
      completionMode: "Indexed",
      completions: spec.nodes,
      parallelism: spec.nodes,
      // A disruption fails the Job at once and says so in the Job's condition, so the
      // operator can restart the whole gang without counting it against maxRestarts.
      podFailurePolicy: { rules: [{ action: "FailJob", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] }] },
      podReplacementPolicy: "Failed",
    },
    multiNode ? { subdomain: serviceName(input.job.name) } : {},
  );
}

/**
 * The smoke test: `axolotl inference CONFIG --lora-model-dir=OUTPUT_DIR` on the trained adapter, driven by the
 * launcher, which feeds each prompt on stdin (Axolotl reads one prompt until end of input, so one process per
 * prompt), writes the answers to the claim and a summary into the termination message.
 */
export function renderSmokeTestJob(input: RenderInput, attempt: number): Rendered<V1Job> {
  const smoke = input.spec.smokeTest;
  return stageJob(
    input,
    {
      stage: "smoke",
      attempt,
      gpus: smoke.onCPU ? 0 : 1,
      command: ["axolotl", "inference", CONFIG_FILE, `--lora-model-dir=${OUTPUT_DIR}`],
      extraEnv: [
        { name: "FINETUNE_SMOKE_PROMPTS", value: JSON.stringify(smoke.prompts) },
        { name: "FINETUNE_SMOKE_ANSWERS_FILE", value: SMOKE_ANSWERS_FILE },
        ...(smoke.onCPU ? [{ name: "CUDA_VISIBLE_DEVICES", value: "" }] : []),
      ],
    },
    { completions: 1, parallelism: 1 },
  );
}

export function renderMergeJob(input: RenderInput, attempt: number): Rendered<V1Job> {
  const onCPU = input.spec.merge.onCPU;
  return stageJob(
    input,
    {
      stage: "merge",
      attempt,
      gpus: onCPU ? 0 : 1,
      command: ["axolotl", "merge-lora", CONFIG_FILE, `--lora-model-dir=${OUTPUT_DIR}`],
      ...(onCPU ? { extraEnv: [{ name: "CUDA_VISIBLE_DEVICES", value: "" }] } : {}),
    },
    { completions: 1, parallelism: 1 },
  );
}
