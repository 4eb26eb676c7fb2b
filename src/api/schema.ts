/**
 * The FineTuneJob API, defined once. The CRD in crds/ is generated from these
 * schemas (see crd.ts), and the controller, CLI and tests parse with them, so
 * the three can never disagree about a field.
 */
import { z } from "zod";
import { DEFAULT_TRAINER_IMAGE, STAGES, type Stage } from "./group.ts";

/** Metadata keys that crd.ts turns into OpenAPI vendor extensions. */
const preserveUnknown = { "x-kubernetes-preserve-unknown-fields": true } as const;

/** An embedded Kubernetes object (Toleration, Affinity, Volume, ...) passed through as-is. */
const k8sObject = (description: string) => z.record(z.string(), z.unknown()).meta({ description, ...preserveUnknown });

const k8sList = (description: string) => z.array(k8sObject(description)).meta({ description });

/** A resource quantity such as "16Gi" or 8. */
const quantity = (description: string) =>
  z
    .union([z.string().regex(/^[0-9.]+([eE][-+]?[0-9]+|[numkKMGTPE]i?)?$/, "must be a Kubernetes quantity such as 16Gi"), z.number().nonnegative()])
    .meta({ description, "x-kubernetes-int-or-string": true });

const stringMap = (description: string) => z.record(z.string(), z.string()).meta({ description });

const secretKeyRef = z
  .object({
    name: z.string().min(1).meta({ description: "Secret name, in the FineTuneJob's namespace." }),
    key: z.string().min(1).default("token").meta({ description: "Key within the Secret." }),
  })
  .strict();

const accessMode = z.enum(["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod", "ReadOnlyMany"]);

const outputStorage = z
  .object({
    existingClaim: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "Use this PersistentVolumeClaim instead of creating one. It is never deleted by the operator." }),
    subPath: z
      .string()
      .optional()
      .meta({ description: "Directory inside the claim for this job's outputs. Default: the job's name when existingClaim is set, the claim root otherwise." }),
    size: quantity("Size of the output claim the operator creates.").default("100Gi"),
    storageClassName: z.string().optional().meta({ description: "StorageClass of the created claim; the cluster default when unset." }),
    accessModes: z.array(accessMode).min(1).optional().meta({
      description: "Access modes of the created claim. Default: ReadWriteOnce for one node, ReadWriteMany for several (every rank writes checkpoints).",
    }),
    deletionPolicy: z
      .enum(["Retain", "Delete"])
      .default("Retain")
      .meta({ description: "What happens to a claim the operator created when the FineTuneJob is deleted. Retain keeps the trained model." }),
  })
  .strict();

const cacheStorage = z
  .object({
    existingClaim: z
      .string()
      .min(1)
      .meta({ description: "A (ReadWriteMany) claim holding the shared Hugging Face model and dataset cache; mounted on every pod, HF_HOME points into it." }),
    subPath: z.string().optional(),
  })
  .strict();

const scheduling = z
  .object({
    nodeSelector: stringMap("Node labels every pod must match.").optional(),
    tolerations: k8sList("Tolerations added to every pod.").optional(),
    affinity: k8sObject("Affinity of every pod.").optional(),
    priorityClassName: z.string().optional(),
    schedulerName: z.string().optional().meta({ description: "For gang schedulers such as Volcano or scheduler-plugins coscheduling." }),
    queueName: z
      .string()
      .optional()
      .meta({ description: "Kueue LocalQueue. Jobs are created suspended with the kueue.x-k8s.io/queue-name label; Kueue admits them." }),
  })
  .strict();

/**
 * The reference grammar of distribution/reference (domain[:port]/path[:tag][@digest]), written for RE2 so the API
 * server enforces the same pattern at admission: an image that cannot parse is refused, instead of creating pods
 * that fail with InvalidImageName.
 */
const IMAGE_REFERENCE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$/;

export const FineTuneJobSpecSchema = z
  .object({
    config: k8sObject("The Axolotl config (the YAML you would pass to `axolotl train`), inline. Exactly one of config and configFrom.").optional(),
    configFrom: z
      .object({
        configMapKeyRef: z.object({ name: z.string().min(1), key: z.string().min(1).default("config.yaml") }).strict(),
      })
      .strict()
      .optional()
      .meta({ description: "Read the Axolotl config from a ConfigMap key instead." }),
    image: z
      .string()
      .min(1)
      .regex(IMAGE_REFERENCE, "must be an image reference such as registry.example.com/team/axolotl:0.18.0 (lowercase repository, optional tag and digest)")
      .default(DEFAULT_TRAINER_IMAGE)
      .meta({ description: "Trainer image (Axolotl). Pin a version tag." }),
    imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
    nodes: z.number().int().min(1).max(1024).default(1).meta({ description: "Number of training nodes (pods); one torchrun agent each." }),
    gpusPerNode: z.number().int().min(1).max(64).default(1).meta({ description: "GPUs per node (nvidia.com/gpu), one training process each." }),
    gpuResourceName: z.string().default("nvidia.com/gpu").meta({ description: "Extended resource name of the GPU." }),
    resources: z
      .object({
        cpu: quantity("CPU request per node.").optional(),
        memory: quantity("Memory request and limit per node (host RAM, not GPU memory).").optional(),
      })
      .strict()
      .optional(),
    sharedMemory: quantity("Size of the memory-backed /dev/shm (NCCL and dataloaders need more than the container default).").default("16Gi"),
    storage: z
      .object({
        output: outputStorage.prefault({}),
        cache: cacheStorage.optional(),
      })
      .strict()
      .prefault({}),
    volumes: k8sList("Extra pod volumes, e.g. a dataset PVC.").optional(),
    volumeMounts: k8sList("Mounts of the extra volumes into the trainer container.").optional(),
    env: k8sList("Extra environment variables (EnvVar).").optional(),
    envFrom: k8sList("Extra environment sources (EnvFromSource).").optional(),
    secrets: z
      .object({
        huggingFaceToken: secretKeyRef.optional().meta({ description: "Secret key holding an HF token, exported as HF_TOKEN." }),
        wandbApiKey: secretKeyRef.optional().meta({ description: "Secret key holding a Weights & Biases key, exported as WANDB_API_KEY." }),
      })
      .strict()
      .optional(),
    scheduling: scheduling.optional(),
    podLabels: stringMap("Labels added to every pod.").optional(),
    podAnnotations: stringMap("Annotations added to every pod.").optional(),
    serviceAccountName: z.string().optional(),
    imagePullSecrets: z.array(z.object({ name: z.string().min(1) }).strict()).optional(),
    preprocess: z
      .object({
        enabled: z.boolean().default(true).meta({
          description:
            "Run `axolotl preprocess` once before training: tokenizes the datasets into the output claim and, with storage.cache and a Hub base_model, first downloads the model into the shared cache so training nodes load it from there.",
        }),
      })
      .strict()
      .prefault({}),
    merge: z
      .object({
        enabled: z.boolean().optional().meta({ description: "Run `axolotl merge-lora` after training. Default: true when an adapter is trained." }),
        onCPU: z.boolean().default(false).meta({ description: "Merge on CPU (no GPU requested); needs host RAM for the full model." }),
      })
      .strict()
      .prefault({}),
    modelParameters: z
      .string()
      .regex(/^\d+(\.\d+)?[MB]$/, "must be a parameter count such as 8B or 350M")
      .optional()
      .meta({ description: "Parameter count of base_model (e.g. 8B) for the sizing warnings, when its name does not say it." }),
    gpuMemory: quantity("Memory of one GPU (e.g. 80Gi): with it, validation warns when the estimated memory per GPU exceeds it.").optional(),
    lossGuard: z
      .object({
        action: z.enum(["Warn", "Fail"]).default("Warn").meta({
          description:
            "What a NaN/inf training loss does: Warn sets LossHealthy=False with an Event; Fail also stops the run (its checkpoints are kept). Flat and spiking losses only warn.",
        }),
        flatSteps: z.number().int().min(0).max(16).default(10).meta({
          description:
            "The loss counts as flat when its first this many logged values stay within 1% of each other and it has not dropped since. 0 turns the check off.",
        }),
        spikeFactor: z
          .number()
          .min(0)
          .max(1000)
          .default(3)
          .meta({ description: "A logged loss above this factor times the minimum of the values logged just before it is a spike. 0 turns the check off." }),
      })
      .strict()
      .prefault({}),
    smokeTest: z
      .object({
        enabled: z.boolean().optional().meta({
          description: "Run `axolotl inference` on the trained adapter after training and before merge. Default: true when a LoRA/QLoRA adapter is trained.",
        }),
        prompts: z
          .array(z.string().min(1).max(2000))
          .min(1)
          .max(8)
          .default(["Write one short sentence about the sea."])
          .meta({ description: "Prompts fed to `axolotl inference` on stdin, one process per prompt (it reads a prompt until end of input)." }),
        action: z.enum(["Warn", "Fail"]).default("Warn").meta({
          description:
            "What a failed check (an empty answer; every generation running to the token limit, i.e. never emitting EOS) does: Warn sets SmokeTested=False with an Event and merges anyway; Fail fails the job before the merge.",
        }),
        onCPU: z
          .boolean()
          .default(false)
          .meta({ description: "Run the smoke test on CPU (no GPU requested); slow for large models, and QLoRA (4-bit) needs a GPU." }),
      })
      .strict()
      .prefault({}),
    maxRestarts: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(3)
      .meta({ description: "Training gang restarts allowed for failures. Disruptions (preemption, eviction, node loss) do not count." }),
    permanentExitCodes: z
      .array(z.number().int().min(1).max(255))
      .optional()
      .meta({ description: "Trainer exit codes that fail the job at once instead of retrying." }),
    terminationGracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(120)
      .meta({ description: "Time a trainer gets on SIGTERM to save a checkpoint (with dynamic_checkpoint) before it is killed." }),
    telemetry: z.boolean().default(false).meta({ description: "Leave Axolotl's telemetry on (it is turned off by default with AXOLOTL_DO_NOT_TRACK=1)." }),
    suspend: z.boolean().default(false).meta({ description: "Stop all pods and keep the data; unsuspending resumes from the newest complete checkpoint." }),
    ttlSecondsAfterFinished: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: "Delete the FineTuneJob this long after it Succeeded or Failed (output data per storage.output.deletionPolicy)." }),
  })
  .strict();

export const PHASES = ["Pending", "Preprocessing", "Training", "SmokeTesting", "Merging", "Succeeded", "Failed", "Suspended"] as const;
export type Phase = (typeof PHASES)[number];

export const ConditionSchema = z
  .object({
    type: z.string(),
    status: z.enum(["True", "False", "Unknown"]),
    reason: z.string(),
    message: z.string(),
    observedGeneration: z.number().int().optional(),
    lastTransitionTime: z.string(),
  })
  .strict();

const stageStatus = z
  .object({
    phase: z.enum(["Pending", "Running", "Succeeded", "Failed", "Skipped"]).meta({ description: "State of this stage." }),
    jobName: z.string().optional(),
    attempt: z.number().int().min(0).meta({ description: "Current attempt of the stage; the Job name carries it." }),
    retries: z.number().int().min(0).meta({ description: "Failed attempts that counted towards the stage's retry limit." }),
    active: z.number().int().optional(),
    ready: z.number().int().optional(),
    startTime: z.string().optional(),
    completionTime: z.string().optional(),
  })
  .strict();

export const AttemptRecordSchema = z
  .object({
    stage: z.enum(STAGES),
    attempt: z.number().int(),
    startTime: z.string().optional(),
    endTime: z.string().optional(),
    result: z.enum(["Running", "Succeeded", "Failed", "Disrupted", "Suspended"]),
    reason: z.string().optional(),
    message: z.string().optional(),
    counted: z.boolean().optional().meta({ description: "Whether this failure counted towards the retry limit." }),
    resumedFrom: z.string().optional(),
  })
  .strict();

export const FailureSchema = z
  .object({
    stage: z.enum(STAGES).optional(),
    attempt: z.number().int().optional(),
    reason: z.string(),
    message: z.string(),
    hint: z.string().optional().meta({ description: "What to change, for failures the operator recognises." }),
    exitCode: z.number().int().optional(),
    pod: z.string().optional(),
    node: z.string().optional(),
    time: z.string(),
    permanent: z.boolean().optional(),
  })
  .strict();

export const ProgressSchema = z
  .object({
    step: z.number().int().optional(),
    totalSteps: z.number().int().optional(),
    percent: z.number().optional(),
    epoch: z.number().optional(),
    loss: z.number().optional(),
    evalLoss: z.number().optional(),
    learningRate: z.number().optional(),
    gradNorm: z.number().optional(),
    tokensPerSecond: z.number().optional(),
    etaSeconds: z.number().int().optional(),
    updatedAt: z.string().optional(),
    summary: z.string().optional().meta({ description: "Human summary for `kubectl get`, e.g. 120/873 (14%)." }),
    source: z.enum(["push", "logs"]).optional(),
  })
  .strict();

export const CheckpointSchema = z.object({ step: z.number().int(), path: z.string() }).strict();
/** status.checkpoints keeps at most this many, the most recent (log tail, pushed reports and their merge alike). */
export const MAX_CHECKPOINTS = 20;

/** A short, downsampled loss history (src/progress/loss.ts keeps it bounded), for LossHealthy and a sparkline. */
export const LossHistorySchema = z
  .object({
    points: z
      .array(z.object({ step: z.number().int(), loss: z.number() }).strict())
      .max(64)
      .meta({ description: "Logged training losses, oldest first: the first and the most recent values as logged, the ones between thinned out." }),
    nonFiniteStep: z.number().int().optional().meta({ description: "Step at which a NaN or infinite loss was first logged." }),
  })
  .strict();

export const FineTuneJobStatusSchema = z
  .object({
    phase: z.enum(PHASES).optional(),
    message: z.string().optional(),
    observedGeneration: z.number().int().optional(),
    conditions: z
      .array(ConditionSchema)
      .optional()
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
    stages: z
      .object(Object.fromEntries(STAGES.map((stage) => [stage, stageStatus.optional()])) as Record<Stage, z.ZodOptional<typeof stageStatus>>)
      .strict()
      .optional(),
    attempt: z.number().int().optional().meta({ description: "Current training attempt (0 for the first)." }),
    restarts: z.number().int().optional().meta({ description: "Training restarts that counted towards maxRestarts." }),
    disruptions: z.number().int().optional().meta({ description: "Training restarts caused by preemption, eviction or node loss (not counted)." }),
    attempts: z.array(AttemptRecordSchema).optional().meta({ description: "The most recent attempts of every stage (bounded)." }),
    progress: ProgressSchema.optional(),
    lossHistory: LossHistorySchema.optional(),
    checkpoints: z.array(CheckpointSchema).optional().meta({ description: "Checkpoints saved so far (most recent last, bounded)." }),
    latestCheckpoint: CheckpointSchema.optional(),
    outputs: z
      .object({
        claimName: z.string().optional(),
        outputDir: z.string().optional().meta({ description: "output_dir as the trainer sees it." }),
        adapterPath: z.string().optional().meta({ description: "Path of the trained adapter inside the claim." }),
        mergedModelPath: z.string().optional().meta({ description: "Path of the merged model inside the claim." }),
      })
      .strict()
      .optional(),
    smokeTest: z
      .object({
        result: z.enum(["Passed", "Warning", "Failed"]),
        message: z.string(),
        hint: z.string().optional(),
        answersFile: z.string().optional().meta({ description: "Every answer in full, in the output claim (path relative to the claim)." }),
        answersConfigMap: z
          .string()
          .optional()
          .meta({ description: "ConfigMap with every answer in full (key answers.json), copied from the smoke pod's log once the test is judged." }),
        answers: z
          .array(
            z
              .object({
                prompt: z.string(),
                answer: z.string(),
                stopped: z.boolean().optional().meta({ description: "Whether generation ended with the EOS token (false: it ran to the token limit)." }),
              })
              .strict(),
          )
          .max(8)
          .meta({ description: "The answers, truncated." }),
      })
      .strict()
      .optional()
      .meta({ description: "What the smoke test (axolotl inference on the adapter) answered, and its checks." }),
    lastFailure: FailureSchema.optional(),
    specHash: z.string().optional().meta({ description: "Hash of the spec parts a started job runs with (config, nodes, GPUs, image)." }),
    startedWith: z
      .object({ image: z.string(), nodes: z.number().int(), gpusPerNode: z.number().int() })
      .strict()
      .optional()
      .meta({ description: "Image and gang shape the run started with: every attempt keeps them, even after a (rejected) spec change." }),
    startTime: z.string().optional(),
    completionTime: z.string().optional(),
  })
  .strict();

export type FineTuneJobSpecInput = z.input<typeof FineTuneJobSpecSchema>;
export type FineTuneJobSpec = z.output<typeof FineTuneJobSpecSchema>;
export type FineTuneJobStatus = z.output<typeof FineTuneJobStatusSchema>;
export type Condition = z.output<typeof ConditionSchema>;
export type AttemptRecord = z.output<typeof AttemptRecordSchema>;
export type Progress = z.output<typeof ProgressSchema>;
export type Checkpoint = z.output<typeof CheckpointSchema>;
export type LossHistory = z.output<typeof LossHistorySchema>;
export type StageStatus = z.output<typeof stageStatus>;

/** The output claim's access modes when the spec names none (the default described on storage.output.accessModes). */
export function defaultAccessModes(spec: FineTuneJobSpec): string[] {
  return spec.storage.output.accessModes ?? (spec.nodes > 1 ? ["ReadWriteMany"] : ["ReadWriteOnce"]);
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
  ownerReferences?: unknown[];
}

/** A FineTuneJob as it comes from the API server (spec not yet defaulted). */
export interface FineTuneJobObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: FineTuneJobSpecInput;
  status?: FineTuneJobStatus;
}
