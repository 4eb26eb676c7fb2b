/**
 * Renderer tests: golden files pin the exact objects, targeted assertions say
 * why the parts that matter are the way they are.
 *
 * Golden files live in src/render/testdata/<scenario>.yaml (every rendered
 * object of one FineTuneJob, in creation order). After an intended change to
 * the renderers, regenerate them and review the diff:
 *
 *   UPDATE_GOLDEN=1 npx node --test src/render/children.test.ts
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { V1EnvVar, V1Job, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";

import { API_VERSION, KIND, KUEUE_QUEUE_LABEL, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE, STAGES } from "../api/group.ts";
import type { FineTuneJobSpecInput } from "../api/schema.ts";
import { validateSpec } from "../validation/job.ts";
import { renderAxolotlConfig, trainsMergeableAdapter } from "./axolotl-config.ts";
import {
  outputPaths,
  renderConfigMap,
  renderLauncherConfigMap,
  renderMergeJob,
  renderOutputClaim,
  renderPreprocessJob,
  renderService,
  renderSmokeTestJob,
  renderTrainJob,
  type OperatorSettings,
  type RenderInput,
} from "./children.ts";
import { desiredObjects, enabledStages, renderAll as renderDesired } from "./desired.ts";
import { OUTPUT_DIR, PREPARED_DIR, type LauncherSource } from "./names.ts";
import { launcherSource } from "../trainer/source.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === "1";
const COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

// A fixed launcher stub (an entry and a sibling module), so golden files do not change with src/trainer/launcher/.
const SETTINGS: OperatorSettings = {
  launcherSource: { "launcher.py": "# launcher.py (stub for golden tests)\nimport greeting\n", "greeting.py": "print('hi')\n" },
};

const LORA_CONFIG = {
  base_model: "meta-llama/Llama-3.1-8B-Instruct",
  adapter: "lora",
  lora_r: 16,
  lora_alpha: 32,
  lora_target_linear: true,
  micro_batch_size: 2,
  gradient_accumulation_steps: 4,
  num_epochs: 1,
  learning_rate: 0.0002,
  sequence_len: 2048,
  datasets: [{ path: "tatsu-lab/alpaca", type: "alpaca" }],
  // Keys the operator owns: overridden / dropped in the rendered config.
  output_dir: "./outputs/mine",
  dataset_prepared_path: "last_run_prepared",
  resume_from_checkpoint: "./outputs/mine/checkpoint-100",
};

interface Scenario {
  name: string;
  job: { name: string; namespace: string; uid: string };
  spec: FineTuneJobSpecInput;
  settings?: Partial<OperatorSettings>;
}

const SCENARIOS: Scenario[] = [
  {
    name: "single-gpu-lora",
    job: { name: "llama-lora", namespace: "ml", uid: "11111111-1111-1111-1111-111111111111" },
    spec: { config: LORA_CONFIG },
  },
  {
    name: "multinode-full",
    job: { name: "llama-70b", namespace: "research", uid: "22222222-2222-2222-2222-222222222222" },
    spec: {
      nodes: 2,
      gpusPerNode: 8,
      image: "axolotlai/axolotl:0.18.0-py3.11-cu128",
      resources: { cpu: 64, memory: "900Gi" },
      sharedMemory: "64Gi",
      storage: {
        output: { size: "2Ti", storageClassName: "fast-rwx", deletionPolicy: "Delete" },
        cache: { existingClaim: "hf-cache", subPath: "hub" },
      },
      secrets: { huggingFaceToken: { name: "hf-token" } },
      scheduling: {
        queueName: "gpu-queue",
        nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" },
        tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
        priorityClassName: "training",
      },
      env: [{ name: "NCCL_DEBUG", value: "INFO" }],
      podLabels: { team: "research" },
      podAnnotations: { "example.com/owner": "alice" },
      maxRestarts: 5,
      config: {
        base_model: "meta-llama/Llama-3.1-70B",
        micro_batch_size: 1,
        gradient_accumulation_steps: 8,
        num_epochs: 2,
        learning_rate: 0.00001,
        sequence_len: 4096,
        deepspeed: "deepspeed_configs/zero3_bf16.json",
        datasets: [{ path: "org/private-data", type: "chat_template" }],
        dynamic_checkpoint: { enabled: true },
      },
    },
  },
  {
    name: "merge-on-cpu-existing-claim",
    job: { name: "qwen-qlora", namespace: "default", uid: "33333333-3333-3333-3333-333333333333" },
    settings: { progressUrl: "https://finetune-operator.finetune-system.svc:8443/progress" },
    spec: {
      storage: { output: { existingClaim: "shared-models" } },
      preprocess: { enabled: false },
      merge: { onCPU: true },
      resources: { memory: "128Gi" },
      telemetry: true,
      secrets: { wandbApiKey: { name: "wandb", key: "api-key" } },
      serviceAccountName: "trainer",
      imagePullSecrets: [{ name: "registry" }],
      config: {
        base_model: "Qwen/Qwen2.5-7B",
        adapter: "qlora",
        load_in_4bit: true,
        lora_r: 8,
        lora_alpha: 16,
        micro_batch_size: 1,
        gradient_accumulation_steps: 16,
        num_epochs: 1,
        learning_rate: 0.0001,
        datasets: [{ path: "data/train.jsonl", ds_type: "json", type: "alpaca" }],
      },
    },
  },
];

function inputOf(s: Scenario): RenderInput {
  const { spec, issues } = validateSpec(s.spec);
  assert.ok(spec, `scenario ${s.name} has an invalid spec: ${JSON.stringify(issues)}`);
  assert.deepEqual(
    issues.filter((i) => i.severity === "error"),
    [],
    `scenario ${s.name}`,
  );
  return { job: s.job, spec, axolotlConfig: spec.config!, settings: { ...SETTINGS, ...s.settings } };
}

/** Every child object of the scenario, in creation order, first attempt of each stage. */
function renderAll(input: RenderInput): { kind: string; metadata: { name: string; labels: Record<string, string>; ownerReferences?: unknown[] } }[] {
  const desired = desiredObjects(input, enabledStages(input.spec, input.axolotlConfig));
  // The shared launcher ConfigMap carries the launcher's source, which the launcher's own tests pin.
  return renderDesired({ ...desired, base: desired.base.filter((b) => b.child !== "launcher") }, 0) as never;
}

function goldenText(input: RenderInput): string {
  return renderAll(input)
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join("---\n");
}

const byName = (s: string) => SCENARIOS.find((x) => x.name === s)!;
const env = (job: V1Job) => job.spec!.template.spec!.containers[0]!.env!;
const envVar = (job: V1Job, name: string): V1EnvVar | undefined => env(job).find((e) => e.name === name);
const container = (job: V1Job) => job.spec!.template.spec!.containers[0]!;

describe("golden files", () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.name} renders as testdata/${scenario.name}.yaml`, () => {
      const file = fileURLToPath(new URL(`${scenario.name}.yaml`, TESTDATA));
      const actual = goldenText(inputOf(scenario));
      if (UPDATE) {
        mkdirSync(fileURLToPath(TESTDATA), { recursive: true });
        writeFileSync(file, actual);
        return;
      }
      assert.ok(existsSync(file), `${file} is missing; create it with UPDATE_GOLDEN=1 npx node --test src/render/children.test.ts`);
      const expected = readFileSync(file, "utf8");
      assert.equal(
        actual,
        expected,
        `rendered objects differ from ${file}. If the change is intended, run UPDATE_GOLDEN=1 npx node --test src/render/children.test.ts and review the diff.`,
      );
    });
  }

  it("is deterministic (rendering twice gives the same text)", () => {
    for (const scenario of SCENARIOS) assert.equal(goldenText(inputOf(scenario)), goldenText(inputOf(scenario)));
  });
});

describe("labels and ownership", () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario.name}: every child is labelled and owned (except a retained claim)`, () => {
      const input = inputOf(scenario);
      for (const obj of renderAll(input)) {
        const where = `${obj.kind} ${obj.metadata.name}`;
        assert.equal(obj.metadata.labels[LABEL_JOB_NAME], scenario.job.name, `${where} job-name label`);
        assert.equal(obj.metadata.labels["app.kubernetes.io/managed-by"], "finetune-operator", where);
        assert.equal((obj.metadata as { namespace?: string }).namespace, scenario.job.namespace, where);
        if (obj.kind === "PersistentVolumeClaim") {
          const policy = input.spec.storage.output.deletionPolicy;
          if (policy === "Retain") assert.equal(obj.metadata.ownerReferences, undefined, `${where}: a Retain claim must survive the FineTuneJob`);
          else assert.equal(obj.metadata.ownerReferences?.length, 1, `${where}: a Delete claim is garbage-collected with the FineTuneJob`);
        } else {
          assert.deepEqual(
            obj.metadata.ownerReferences,
            [{ apiVersion: API_VERSION, kind: KIND, name: scenario.job.name, uid: scenario.job.uid, controller: true, blockOwnerDeletion: true }],
            where,
          );
        }
        if (obj.kind === "Job") {
          const job = obj as unknown as V1Job;
          const stage = obj.metadata.labels[LABEL_STAGE];
          assert.ok((STAGES as readonly string[]).includes(stage ?? ""), `${where} stage label ${stage}`);
          assert.equal(obj.metadata.labels[LABEL_ATTEMPT], "0", `${where} attempt label`);
          assert.equal(obj.metadata.name, `${scenario.job.name}-${stage}-0`);
          const podLabels = job.spec!.template.metadata!.labels!;
          assert.equal(podLabels[LABEL_JOB_NAME], scenario.job.name, `${where} pod job-name label`);
          assert.equal(podLabels[LABEL_STAGE], stage, `${where} pod stage label`);
          assert.equal(podLabels[LABEL_ATTEMPT], "0", `${where} pod attempt label`);
        }
        // The Service belongs to the training gang. The claim and the ConfigMap are shared by every stage and carry
        // no stage label (README says "every child carries finetune.dev/stage"; for these two it does not).
        if (obj.kind === "Service") assert.equal(obj.metadata.labels[LABEL_STAGE], "train");
      }
    });
  }

  it("user pod labels cannot override the operator's selector labels", () => {
    const s = byName("single-gpu-lora");
    const input = inputOf({ ...s, spec: { ...s.spec, podLabels: { [LABEL_JOB_NAME]: "other", [LABEL_STAGE]: "x", keep: "me" } } });
    const labels = renderTrainJob(input, 2).spec!.template.metadata!.labels!;
    assert.equal(labels[LABEL_JOB_NAME], "llama-lora");
    assert.equal(labels[LABEL_STAGE], "train");
    assert.equal(labels[LABEL_ATTEMPT], "2");
    assert.equal(labels.keep, "me");
  });

  it("claims: existingClaim renders none; accessModes default by node count", () => {
    assert.equal(renderOutputClaim(inputOf(byName("merge-on-cpu-existing-claim"))), undefined);
    const single = renderOutputClaim(inputOf(byName("single-gpu-lora"))) as V1PersistentVolumeClaim;
    assert.deepEqual(single.spec!.accessModes, ["ReadWriteOnce"]);
    assert.deepEqual(single.spec!.resources!.requests, { storage: "100Gi" });
    const multi = renderOutputClaim(inputOf(byName("multinode-full"))) as V1PersistentVolumeClaim;
    assert.deepEqual(multi.spec!.accessModes, ["ReadWriteMany"]);
    assert.equal(multi.spec!.storageClassName, "fast-rwx");
  });
});

describe("training Job", () => {
  const input = inputOf(byName("multinode-full"));
  const job = renderTrainJob(input, 3);
  const pod = job.spec!.template.spec!;

  it("is an Indexed gang with completions = parallelism = nodes and no Job-level retries", () => {
    assert.equal(job.metadata!.name, "llama-70b-train-3");
    assert.equal(job.spec!.completionMode, "Indexed");
    assert.equal(job.spec!.completions, 2);
    assert.equal(job.spec!.parallelism, 2);
    assert.equal(job.spec!.backoffLimit, 0);
    assert.equal(pod.restartPolicy, "Never");
    assert.equal(pod.subdomain, "llama-70b-ranks", "pods resolve as <pod>.<service>");
    assert.deepEqual(job.spec!.podFailurePolicy!.rules[0], { action: "FailJob", onPodConditions: [{ type: "DisruptionTarget", status: "True" }] });
  });

  it("one node: no rank Service and no subdomain; torchrun's rendezvous stays on loopback", () => {
    const one = inputOf(byName("single-gpu-lora"));
    assert.equal(renderService(one), undefined);
    const train = renderTrainJob(one, 0);
    assert.equal(train.spec!.template.spec!.subdomain, undefined);
    assert.deepEqual(
      container(train).command!.filter((a) => a.startsWith("--master_addr=")),
      ["--master_addr=127.0.0.1"],
    );
    assert.equal(renderService(input)?.spec?.clusterIP, "None", "two nodes: the headless Service");
  });

  it("every rank gets the same master_addr: pod index 0 of this attempt via the headless Service", () => {
    const cmd = container(job).command!;
    const masters = cmd.filter((a) => a.startsWith("--master_addr="));
    assert.deepEqual(masters, ["--master_addr=llama-70b-train-3-0.llama-70b-ranks.research.svc"]);
    assert.ok(cmd.includes("--nnodes=2"));
    assert.ok(cmd.includes("--nproc_per_node=8"));
    assert.ok(cmd.includes("--master_port=29500"));
    assert.ok(!cmd.some((a) => a.startsWith("--rdzv_id")), "no random rendezvous id can split the gang");
    // One pod template for all ranks: nothing rank-specific but the completion index.
    assert.equal(renderTrainJob(input, 3).spec!.template.spec!.containers[0]!.command!.join(" "), cmd.join(" "));
  });

  it("takes the node rank from the completion-index annotation", () => {
    assert.deepEqual(envVar(job, "PET_NODE_RANK"), { name: "PET_NODE_RANK", valueFrom: { fieldRef: { fieldPath: COMPLETION_INDEX } } });
    assert.deepEqual(envVar(job, "FINETUNE_NODE_RANK")!.valueFrom, { fieldRef: { fieldPath: COMPLETION_INDEX } });
    assert.equal(envVar(job, "FINETUNE_NNODES")!.value, "2");
    assert.equal(envVar(job, "FINETUNE_ATTEMPT")!.value, "3");
    assert.equal(envVar(job, "FINETUNE_DYNAMIC_CHECKPOINT")!.value, "true");
  });

  it("requests and limits gpusPerNode GPUs, and the host memory asked for", () => {
    const res = container(job).resources!;
    assert.equal(res.requests!["nvidia.com/gpu"], "8");
    assert.equal(res.limits!["nvidia.com/gpu"], "8");
    assert.equal(res.requests!.cpu, "64");
    assert.equal(res.requests!.memory, "900Gi");
    assert.equal(res.limits!.memory, "900Gi");
  });

  it("honours a custom GPU resource name", () => {
    const s = byName("single-gpu-lora");
    const amd = renderTrainJob(inputOf({ ...s, spec: { ...s.spec, gpuResourceName: "amd.com/gpu", gpusPerNode: 4 } }), 0);
    assert.deepEqual(container(amd).resources, { requests: { "amd.com/gpu": "4" }, limits: { "amd.com/gpu": "4" } });
  });

  it("mounts a memory-backed /dev/shm with a size limit", () => {
    const dshm = pod.volumes!.find((v) => v.name === "dshm")!;
    assert.deepEqual(dshm.emptyDir, { medium: "Memory", sizeLimit: "64Gi" });
    assert.ok(container(job).volumeMounts!.some((m) => m.name === "dshm" && m.mountPath === "/dev/shm"));
    const dflt = renderTrainJob(inputOf(byName("single-gpu-lora")), 0).spec!.template.spec!.volumes!.find((v) => v.name === "dshm")!;
    assert.deepEqual(dflt.emptyDir, { medium: "Memory", sizeLimit: "16Gi" });
  });

  it("turns Axolotl telemetry off unless spec.telemetry", () => {
    assert.equal(envVar(job, "AXOLOTL_DO_NOT_TRACK")?.value, "1");
    assert.equal(envVar(renderPreprocessJob(input, 0), "AXOLOTL_DO_NOT_TRACK")?.value, "1");
    const telemetry = inputOf(byName("merge-on-cpu-existing-claim"));
    assert.equal(envVar(renderTrainJob(telemetry, 0), "AXOLOTL_DO_NOT_TRACK"), undefined);
    assert.equal(envVar(renderMergeJob(telemetry, 0), "AXOLOTL_DO_NOT_TRACK"), undefined);
  });

  it("mounts the cache claim, points HF_HOME into it and exports the HF token from the Secret", () => {
    assert.ok(pod.volumes!.some((v) => v.name === "finetune-cache" && v.persistentVolumeClaim?.claimName === "hf-cache"));
    assert.ok(container(job).volumeMounts!.some((m) => m.name === "finetune-cache" && m.subPath === "hub"));
    assert.equal(envVar(job, "HF_HOME")!.value, "/finetune/cache/huggingface");
    assert.deepEqual(envVar(job, "HF_TOKEN")!.valueFrom, { secretKeyRef: { name: "hf-token", key: "token" } });
    // User env comes last, so it wins.
    assert.equal(env(job).at(-1)!.name, "NCCL_DEBUG");
  });

  it("applies scheduling to every pod", () => {
    assert.deepEqual(pod.tolerations, [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    assert.deepEqual(pod.nodeSelector, { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" });
    assert.equal(pod.priorityClassName, "training");
    for (const j of [renderPreprocessJob(input, 0), renderMergeJob(input, 0)]) {
      assert.deepEqual(j.spec!.template.spec!.tolerations, pod.tolerations);
    }
  });

  it("carries the Kueue queue label and is created suspended when queueName is set", () => {
    for (const j of [job, renderPreprocessJob(input, 0), renderMergeJob(input, 0)]) {
      assert.equal(j.metadata!.labels![KUEUE_QUEUE_LABEL], "gpu-queue", j.metadata!.name);
      assert.equal(j.spec!.suspend, true, j.metadata!.name);
    }
    const plain = renderTrainJob(inputOf(byName("single-gpu-lora")), 0);
    assert.equal(plain.metadata!.labels![KUEUE_QUEUE_LABEL], undefined);
    assert.equal(plain.spec!.suspend, undefined);
  });

  it("a single-node job still has torchrun flags for one node", () => {
    const single = renderTrainJob(inputOf(byName("single-gpu-lora")), 0);
    assert.ok(container(single).command!.includes("--nnodes=1"));
    assert.equal(single.spec!.completions, 1);
    assert.equal(container(single).resources!.requests!["nvidia.com/gpu"], "1");
  });
});

describe("preprocess and merge Jobs", () => {
  it("preprocess requests no GPU and hides GPUs from CUDA", () => {
    for (const scenario of ["single-gpu-lora", "multinode-full"]) {
      const job = renderPreprocessJob(inputOf(byName(scenario)), 0);
      const res = container(job).resources ?? {};
      assert.equal(res.requests?.["nvidia.com/gpu"], undefined, scenario);
      assert.equal(res.limits?.["nvidia.com/gpu"], undefined, scenario);
      assert.equal(envVar(job, "CUDA_VISIBLE_DEVICES")?.value, "", scenario);
      assert.equal(job.spec!.completions, 1);
      assert.equal(job.spec!.backoffLimit, 0);
      assert.equal(job.spec!.template.spec!.restartPolicy, "Never");
      assert.equal(envVar(job, "FINETUNE_NNODES")!.value, "1");
      assert.deepEqual(container(job).command!.slice(-3), ["axolotl", "preprocess", "/etc/finetune/config.yaml"]);
    }
  });

  it("merge onCPU requests no GPU and sets CUDA_VISIBLE_DEVICES to empty", () => {
    const job = renderMergeJob(inputOf(byName("merge-on-cpu-existing-claim")), 1);
    const res = container(job).resources!;
    assert.equal(res.requests?.["nvidia.com/gpu"], undefined);
    assert.equal(res.limits?.["nvidia.com/gpu"], undefined);
    assert.equal(res.requests?.memory, "128Gi");
    assert.equal(envVar(job, "CUDA_VISIBLE_DEVICES")?.value, "");
    assert.equal(job.metadata!.name, "qwen-qlora-merge-1");
    assert.ok(container(job).command!.includes(`--lora-model-dir=${OUTPUT_DIR}`));
  });

  it("merge on GPU requests exactly one GPU and leaves CUDA alone", () => {
    const job = renderMergeJob(inputOf(byName("single-gpu-lora")), 0);
    assert.equal(container(job).resources!.requests!["nvidia.com/gpu"], "1");
    assert.equal(envVar(job, "CUDA_VISIBLE_DEVICES"), undefined);
  });

  it("existingClaim mounts the job's subPath of the claim", () => {
    const input = inputOf(byName("merge-on-cpu-existing-claim"));
    const job = renderTrainJob(input, 0);
    assert.ok(job.spec!.template.spec!.volumes!.some((v) => v.persistentVolumeClaim?.claimName === "shared-models"));
    assert.ok(container(job).volumeMounts!.some((m) => m.name === "finetune-output" && m.subPath === "qwen-qlora"));
    assert.deepEqual(outputPaths(input), {
      claimName: "shared-models",
      outputDir: OUTPUT_DIR,
      adapterPath: "qwen-qlora/model",
      mergedModelPath: "qwen-qlora/model/merged",
    });
    assert.deepEqual(outputPaths(inputOf(byName("single-gpu-lora"))), {
      claimName: "llama-lora-output",
      outputDir: OUTPUT_DIR,
      adapterPath: "model",
      mergedModelPath: "model/merged",
    });
  });

  it("progressUrl mounts a projected token with the job's audience", () => {
    const job = renderTrainJob(inputOf(byName("merge-on-cpu-existing-claim")), 0);
    const vol = job.spec!.template.spec!.volumes!.find((v) => v.name === "finetune-progress-token")!;
    assert.equal(vol.projected!.sources![0]!.serviceAccountToken!.audience, "finetune.dev/default/qwen-qlora");
    // Each job reports to its own path, so the endpoint knows which job a report claims to be for.
    assert.equal(envVar(job, "FINETUNE_PROGRESS_URL")!.value, "https://finetune-operator.finetune-system.svc:8443/progress/v1/progress/default/qwen-qlora");
    assert.equal(envVar(job, "FINETUNE_PROGRESS_CA_FILE"), undefined, "system CAs unless a bundle is configured");
  });

  it("a private CA bundle ships in the job's ConfigMap and the trainer is pointed at it", () => {
    const base = inputOf(byName("merge-on-cpu-existing-claim"));
    const input = { ...base, settings: { ...base.settings, progressCaBundle: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" } };
    const cm = renderConfigMap(input);
    assert.equal(cm.data!["progress-ca.crt"], input.settings.progressCaBundle);
    const job = renderTrainJob(input, 0);
    const path = envVar(job, "FINETUNE_PROGRESS_CA_FILE")!.value!;
    const mount = container(job).volumeMounts!.find((m) => m.name === "finetune-config")!;
    assert.equal(path, `${mount.mountPath}/progress-ca.crt`, "the file is inside the mounted config volume");
    const noUrl = { ...input, settings: { ...input.settings, progressUrl: undefined } } as typeof input;
    assert.equal(renderConfigMap(noUrl).data!["progress-ca.crt"], undefined, "no progress URL, no bundle");
  });
});

describe("rendered Axolotl config", () => {
  it("overrides output_dir and dataset_prepared_path and drops resume_from_checkpoint", () => {
    const cm = renderConfigMap(inputOf(byName("single-gpu-lora")));
    const config = parse(cm.data!["config.yaml"]!) as Record<string, unknown>;
    assert.equal(config.output_dir, OUTPUT_DIR);
    assert.equal(config.dataset_prepared_path, PREPARED_DIR);
    assert.equal(config.auto_resume_from_checkpoints, false);
    assert.ok(!("resume_from_checkpoint" in config));
    assert.equal(config.base_model, "meta-llama/Llama-3.1-8B-Instruct");
    assert.equal(cm.data!["launcher.py"], undefined, "the launcher ships once per namespace, not per job");
  });

  it("the launcher ConfigMap is shared by a namespace's jobs, immutable, named by its content", () => {
    const cm = renderLauncherConfigMap("team-a", SETTINGS);
    assert.deepEqual(cm.data, SETTINGS.launcherSource, "every module is a key");
    assert.equal(cm.immutable, true);
    assert.equal(cm.metadata?.ownerReferences, undefined, "no one job owns it");
    assert.equal(cm.metadata?.labels?.["finetune.dev/component"], "launcher");
    assert.match(cm.metadata!.name!, /^finetune-launcher-[0-9a-f]{10}$/);
    const nameOf = (launcherSource: LauncherSource) => renderLauncherConfigMap("team-a", { launcherSource }).metadata?.name;
    const changed = { ...SETTINGS.launcherSource, "greeting.py": "print('v2')\n" };
    assert.notEqual(nameOf(changed), cm.metadata?.name, "a change to any module is a new object");
    const { "greeting.py": greeting, ...rest } = SETTINGS.launcherSource;
    assert.notEqual(nameOf({ ...rest, "hello.py": greeting! }), cm.metadata?.name, "so is a renamed module");
    assert.equal(nameOf({ "greeting.py": greeting!, ...rest }), cm.metadata?.name, "the order the files were read in does not matter");
    const job = renderTrainJob(inputOf(byName("single-gpu-lora")), 0);
    const volume = job.spec!.template.spec!.volumes!.find((v) => v.configMap?.name === cm.metadata!.name)!;
    const mount = container(job).volumeMounts!.find((m) => m.name === volume.name)!;
    assert.equal(container(job).command![1], `${mount.mountPath}/launcher.py`, "the command runs the mounted launcher");
    assert.equal(volume.configMap!.items, undefined, "every key is mounted: the entry imports its siblings from the same folder");
  });

  it("the real launcher ships whole: every module of src/trainer/launcher/ and nothing else, well under the 1 MiB limit", () => {
    const source = launcherSource();
    const modules = readdirSync(new URL("../trainer/launcher/", import.meta.url))
      .filter((f) => f.endsWith(".py"))
      .sort();
    assert.ok(modules.length > 1 && modules.includes("launcher.py"), "the entry and its modules");
    const cm = renderLauncherConfigMap("team-a", { launcherSource: source });
    assert.deepEqual(Object.keys(cm.data!).sort(), modules);
    for (const key of modules) assert.match(key, /^[-._a-zA-Z0-9]+$/, "a valid ConfigMap key (no '/')");
    const bytes = Object.entries(cm.data!).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    assert.ok(bytes < 512 * 1024, `${bytes} bytes: ConfigMaps are capped at 1 MiB`);
  });

  it("replaces the user's owned keys, drops resume_from_checkpoint, and does not mutate the input", () => {
    const user = { ...LORA_CONFIG };
    const { config } = renderAxolotlConfig(user);
    assert.equal(config.output_dir, OUTPUT_DIR);
    assert.equal(config.dataset_prepared_path, PREPARED_DIR);
    assert.equal(config.auto_resume_from_checkpoints, false);
    assert.equal("resume_from_checkpoint" in config, false);
    assert.deepEqual(user, LORA_CONFIG);
    assert.notEqual(config, user);
  });

  it("dynamic checkpoints: check every step unless the config says otherwise, and tell the launcher the trigger file", () => {
    const withDc = (dc: Record<string, unknown>) => {
      const s = byName("single-gpu-lora");
      return inputOf({ ...s, spec: { ...s.spec, config: { ...LORA_CONFIG, dynamic_checkpoint: dc } } });
    };
    const rendered = (input: RenderInput) => renderAxolotlConfig(input.axolotlConfig).config.dynamic_checkpoint;
    assert.deepEqual(rendered(withDc({ enabled: true })), { enabled: true, check_interval: 1 });
    assert.deepEqual(rendered(withDc({ enabled: true, check_interval: 5 })), { enabled: true, check_interval: 5 }, "the user's interval stays");
    assert.deepEqual(rendered(withDc({ enabled: false })), { enabled: false }, "nothing added when off");
    assert.equal(envVar(renderTrainJob(withDc({ enabled: true }), 0), "FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER"), undefined, "the default name needs no variable");
    const custom = renderTrainJob(withDc({ enabled: true, trigger_file_path: "save-now.flag" }), 0);
    assert.equal(envVar(custom, "FINETUNE_DYNAMIC_CHECKPOINT_TRIGGER")?.value, "save-now.flag");
    assert.equal(envVar(custom, "FINETUNE_DYNAMIC_CHECKPOINT")?.value, "true");
  });

  it("preprocess downloads a Hub base model into the shared cache; a local path or no cache claim downloads nothing", () => {
    const multi = inputOf(byName("multinode-full"));
    const pre = renderPreprocessJob(multi, 0);
    assert.equal(envVar(pre, "FINETUNE_PREFETCH_MODEL")?.value, "meta-llama/Llama-3.1-70B");
    assert.equal(envVar(pre, "FINETUNE_PREFETCH_REVISION"), undefined);
    assert.equal(envVar(renderTrainJob(multi, 0), "FINETUNE_PREFETCH_MODEL"), undefined, "only preprocess downloads");
    assert.equal(
      envVar(renderPreprocessJob(inputOf(byName("single-gpu-lora")), 0), "FINETUNE_PREFETCH_MODEL"),
      undefined,
      "no cache claim: nothing shared to fill",
    );
    const s = byName("multinode-full");
    const pinned = inputOf({ ...s, spec: { ...s.spec, config: { ...(s.spec.config as object), revision_of_model: "abc123" } } });
    assert.equal(envVar(renderPreprocessJob(pinned, 0), "FINETUNE_PREFETCH_REVISION")?.value, "abc123");
    for (const base of ["/models/llama", "./llama", "llama"]) {
      const local = inputOf({ ...s, spec: { ...s.spec, config: { ...(s.spec.config as object), base_model: base } } });
      assert.equal(envVar(renderPreprocessJob(local, 0), "FINETUNE_PREFETCH_MODEL"), undefined, base);
    }
  });

  it("knows which adapters can be merged", () => {
    assert.equal(trainsMergeableAdapter({ adapter: "lora" }), true);
    assert.equal(trainsMergeableAdapter({ adapter: "qlora" }), true);
    assert.equal(trainsMergeableAdapter({}), false);
    assert.equal(trainsMergeableAdapter({ adapter: "llama-adapter" }), false);
  });
});
