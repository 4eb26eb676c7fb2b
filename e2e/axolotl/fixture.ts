/**
 * What the real-Axolotl trainer tests share: the tiny local model and dataset, a CPU-friendly Axolotl config, the
 * FineTuneJob render input, and a way to run every pod of a rendered stage Job (pod.ts) and wait for it.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1ConfigMap, V1Job } from "@kubernetes/client-node";
import type { FineTuneJobSpecInput } from "../../src/api/schema.ts";
import { renderConfigMap, renderLauncherConfigMap, type OperatorSettings, type RenderInput } from "../../src/render/children.ts";
import { launcherSource } from "../../src/trainer/source.ts";
import { validateSpec } from "../../src/validation/job.ts";
import { cacheDir } from "../cluster/paths.ts";
import { axolotlDir, type AxolotlEnv } from "./env.ts";
import { LocalPod } from "./pod.ts";

/** Where the tests' user volumes are mounted in the pods (the FineTuneJob's own volumeMounts). */
export const MODEL_MOUNT = "/models";
export const DATA_MOUNT = "/data";

/**
 * FINETUNE_REAL_GPUS=N (scripts/gpu-check.sh) runs the same tier on a GPU machine: N GPUs per node, bf16, flash
 * attention and Axolotl's LoRA kernels on. Unset, it runs on CPU with one rank: Axolotl 0.18.0 cannot run several
 * ranks without CUDA (axolotl/utils/config/__init__.py sets device_map {"": LOCAL_RANK}, a CUDA ordinal, whenever
 * world_size > 1, and utils/environment.py probes CUDA peer access), so two ranks are a GPU-machine check.
 */
export const GPUS = Number(process.env.FINETUNE_REAL_GPUS ?? 0);
const GPU_CHECK_ENV: Record<string, string> = GPUS > 0 ? { NCCL_DEBUG: "WARN" } : {};

export function runProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
    child.stdin.end(opts.input ?? "");
  });
}

/**
 * The tiny model (model/) and dataset (data/alpaca.jsonl) built by tiny_model.py, cached by the script's hash and
 * the venv's version so a second run reuses them.
 */
export async function tinyModel(env: AxolotlEnv): Promise<{ modelDir: string; dataDir: string }> {
  const script = join(axolotlDir, "tiny_model.py");
  const key = createHash("sha256").update(readFileSync(script)).update(env.version).digest("hex").slice(0, 12);
  const root = join(cacheDir(), "axolotl-fixtures", `tiny-${key}`);
  const marker = join(root, ".complete");
  if (!existsSync(marker)) {
    rmSync(root, { recursive: true, force: true });
    const r = await runProcess(env.python, [script, root]);
    if (r.code !== 0) throw new Error(`tiny_model.py failed:\n${r.out}`);
    writeFileSync(marker, "ok\n");
  }
  return { modelDir: join(root, "model"), dataDir: join(root, "data") };
}

/**
 * An Axolotl config that trains the tiny model on 2 CPU cores: LoRA on every linear layer, a checkpoint every
 * `save_steps`, metrics every step. On CPU the LoRA Triton kernels, bf16 and flash attention are off; nothing else
 * is CPU-specific. With FINETUNE_REAL_GPUS they are on.
 */
export function cpuConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    base_model: `${MODEL_MOUNT}/tiny`,
    datasets: [{ path: `${DATA_MOUNT}/alpaca.jsonl`, type: "alpaca", ds_type: "json" }],
    val_set_size: 0,
    sequence_len: 64,
    sample_packing: false,
    adapter: "lora",
    lora_r: 8,
    lora_alpha: 16,
    lora_dropout: 0.0,
    lora_target_linear: true,
    // Axolotl turns its LoRA Triton kernels on by default; they need an NVIDIA driver.
    lora_mlp_kernel: GPUS > 0,
    lora_qkv_kernel: GPUS > 0,
    lora_o_kernel: GPUS > 0,
    lora_embedding_kernel: GPUS > 0,
    micro_batch_size: 2,
    gradient_accumulation_steps: 1,
    num_epochs: 1,
    max_steps: 30,
    learning_rate: 0.003,
    optimizer: "adamw_torch",
    lr_scheduler: "cosine",
    warmup_steps: 2,
    bf16: GPUS > 0,
    fp16: false,
    tf32: false,
    flash_attention: GPUS > 0,
    save_steps: 10,
    logging_steps: 1,
    dataloader_num_workers: 0,
    ...overrides,
  };
}

export interface TestJob {
  input: RenderInput;
  configMaps: V1ConfigMap[];
}

/** A FineTuneJob as the operator would see it: spec validated (defaults applied), rendered config and launcher. */
export function testJob(name: string, spec: FineTuneJobSpecInput, settings: Partial<OperatorSettings> = {}): TestJob {
  const withVolumes: FineTuneJobSpecInput = {
    ...spec,
    volumes: [
      { name: "models", hostPath: { path: "/srv/models" } },
      { name: "data", hostPath: { path: "/srv/data" } },
    ],
    volumeMounts: [
      { name: "models", mountPath: `${MODEL_MOUNT}/tiny`, readOnly: true },
      { name: "data", mountPath: DATA_MOUNT, readOnly: true },
    ],
  };
  const { spec: parsed, issues } = validateSpec(withVolumes);
  const errors = issues.filter((i) => i.severity === "error");
  if (!parsed || errors.length) throw new Error(`invalid test spec: ${JSON.stringify(errors)}`);
  const input: RenderInput = {
    job: { name, namespace: "real", uid: `uid-${name}` },
    spec: parsed,
    axolotlConfig: parsed.config!,
    settings: { launcherSource: launcherSource(), ...settings },
  };
  return { input, configMaps: [renderConfigMap(input), renderLauncherConfigMap("real", input.settings)] };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Sandbox {
  env: AxolotlEnv;
  model: { modelDir: string; dataDir: string };
  /** Root of this test file's temporary folders. */
  root: string;
}

export function newSandbox(env: AxolotlEnv, model: { modelDir: string; dataDir: string }): Sandbox {
  return { env, model, root: mkdtempSync(join(tmpdir(), "finetune-real-")) };
}

/**
 * Starts every pod of a rendered stage Job (one per completion), with the job's output claim at `outputDir`, the
 * rank Service's names on loopback and the rendezvous port on a free one.
 */
export async function startPods(
  sb: Sandbox,
  tj: TestJob,
  job: V1Job,
  outputDir: string,
  extra: { tokens?: Record<string, string>; claims?: Record<string, string>; sandboxEnv?: Record<string, string> } = {},
): Promise<LocalPod[]> {
  const completions = job.spec?.completions ?? 1;
  const port = await freePort();
  const hosts: Record<string, string> = {};
  const masterArg = job.spec!.template.spec!.containers[0]!.command!.find((a) => a.startsWith("--master_addr="));
  if (masterArg) hosts[masterArg.slice("--master_addr=".length)] = "127.0.0.1";
  const pods: LocalPod[] = [];
  for (let index = 0; index < completions; index++) {
    pods.push(
      new LocalPod({
        job,
        index,
        configMaps: tj.configMaps,
        claims: { "finetune-output": outputDir, models: sb.model.modelDir, data: sb.model.dataDir, ...extra.claims },
        hosts,
        ports: { 29500: port },
        tokens: extra.tokens,
        // This machine has no Hub access.
        sandboxEnv: { HF_HUB_OFFLINE: "1", ...GPU_CHECK_ENV, ...(GPUS > 0 ? { CUDA_VISIBLE_DEVICES: gpusFor(job, index) } : {}), ...extra.sandboxEnv },
        env: sb.env,
        scratch: join(sb.root, `${job.metadata!.name}-${index}`),
      }),
    );
  }
  return pods;
}

/** The GPUs a device plugin would give pod `index` of the Job: consecutive ones, as many as it requests. */
function gpusFor(job: V1Job, index: number): string {
  const limits = job.spec!.template.spec!.containers[0]!.resources?.limits ?? {};
  const count = Number(Object.entries(limits).find(([k]) => k.endsWith("/gpu"))?.[1] ?? 0);
  return Array.from({ length: count }, (_, i) => String(index * count + i)).join(",");
}

/** As the Job controller does with backoffLimit 0: the first pod to fail fails the Job, and the others get SIGTERM. */
export async function waitGang(pods: LocalPod[]): Promise<Array<{ code: number | null; signal: NodeJS.Signals | null }>> {
  let terminated = false;
  for (const pod of pods) {
    void pod.exited.then((e) => {
      if (e.code !== 0 && !terminated) {
        terminated = true;
        for (const other of pods) if (other !== pod) other.signal("SIGTERM");
      }
    });
  }
  return Promise.all(pods.map((p) => p.exited));
}

/** checkpoint-N folders of an output dir, by step. */
export function checkpoints(outputDir: string): number[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

export function isCompleteCheckpoint(outputDir: string, step: number): boolean {
  return existsSync(join(outputDir, `checkpoint-${step}`, "trainer_state.json"));
}

export function trainerState(dir: string): { global_step: number; max_steps: number; log_history: Array<Record<string, unknown>> } {
  return JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8")) as {
    global_step: number;
    max_steps: number;
    log_history: Array<Record<string, unknown>>;
  };
}

/** Lines `NAME {json}` the launcher prints (FINETUNE_RESUME, FINETUNE_SHUTDOWN). */
export function launcherRecords(log: string, name: string): Array<Record<string, unknown>> {
  return [...log.matchAll(new RegExp(`^${name} (\\{.*\\})$`, "gm"))].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
}

/** FINETUNE_WRITE_FIXTURES=1 refreshes the unit tests' fixtures from a run's real output (review the diff). */
export const WRITE_FIXTURES = process.env.FINETUNE_WRITE_FIXTURES === "1";

/** Writes a repository file from a sandbox's real output, its claim folders shown as their mount path again. */
export function writeFixture(sb: Sandbox, repoPath: string, content: string): void {
  const url = new URL(`../../${repoPath}`, import.meta.url);
  mkdirSync(new URL(".", url), { recursive: true });
  writeFileSync(url, content.replace(new RegExp(`${sb.root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/claim-[a-z0-9-]+`, "g"), "/finetune/output"));
}
