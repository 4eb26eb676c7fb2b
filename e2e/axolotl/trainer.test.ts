/**
 * The real-trainer tier: the stage pods the operator renders, run on this machine's CPU against the real
 * `axolotl` of the default image's version (env.ts) and a tiny model built locally (tiny_model.py). Each pod runs
 * exactly the rendered argv and environment through the shipped launcher (pod.ts says what is mapped and why).
 *
 * One FineTuneJob goes through preprocess, a training attempt whose torchrun worker is SIGKILLed after a checkpoint
 * (as the host OOM killer does), a second attempt that resumes from the newest COMPLETE checkpoint past a partial
 * one, then merge and inference. On CPU it has one node and one rank (fixture.ts says why Axolotl cannot run two
 * there); with FINETUNE_REAL_GPUS >= 2 (scripts/gpu-check.sh) it has 2 nodes x 1 GPU, NCCL over static rendezvous
 * on loopback, so node 1 must follow node 0's resume decision.
 * Two single-node jobs get SIGTERM mid-training and must save a checkpoint within the grace period, with the
 * default dynamic-checkpoint trigger and with a config that names its own.
 *
 * About 8-10 minutes on 2 cores, most of it Python imports.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pino from "pino";
import { renderMergeJob, renderPreprocessJob, renderTrainJob } from "../../src/render/children.ts";
import { parseLogTail } from "../../src/progress/log-parse.ts";
import { ProgressServer } from "../../src/progress/server.ts";
import { classifyFailure } from "../../src/controller/failures.ts";
import { ensureAxolotlEnv, type AxolotlEnv } from "./env.ts";
import { serveRepo } from "./local-hub.ts";
import {
  GPUS,
  checkpoints,
  cpuConfig,
  isCompleteCheckpoint,
  launcherRecords,
  newSandbox,
  runProcess,
  startPods,
  testJob,
  tinyModel,
  trainerState,
  waitGang,
  WRITE_FIXTURES,
  writeFixture,
  type Sandbox,
  type TestJob,
} from "./fixture.ts";
import { descendantsMatching, type LocalPod } from "./pod.ts";
import { waitFor } from "../lib/wait.ts";

const KEEP = process.env.FINETUNE_KEEP_REAL === "1";
let env: AxolotlEnv;
let sb: Sandbox;

before(async () => {
  env = await ensureAxolotlEnv();
  sb = newSandbox(env, await tinyModel(env));
});

after(() => {
  if (!KEEP) rmSync(sb.root, { recursive: true, force: true });
  else process.stderr.write(`kept ${sb.root}\n`);
});

/** A progress endpoint the launcher really POSTs to: the operator's own server, with a fixed token for TokenReview. */
async function progressServer(token: string) {
  const patches: Array<{ name: string; status: Record<string, unknown> }> = [];
  const server = new ProgressServer({
    api: { patchStatus: async (_ns: string, name: string, status: Record<string, unknown>) => void patches.push({ name, status }) },
    // TokenReview needs an API server; this tier has none. The token is the one projected into the pods.
    auth: { authenticate: async (t: string) => (t === token ? { ok: true as const } : { ok: false as const, status: 401 as const, reason: "bad token" }) },
    getJob: (namespace, name) => ({ apiVersion: "finetune.dev/v1alpha1", kind: "FineTuneJob", metadata: { namespace, name }, spec: {} }) as never,
    logger: pino({ level: "silent" }),
    host: "127.0.0.1",
    port: 0,
    writeIntervalMs: 300,
  });
  await server.start();
  return { server, patches, url: `http://127.0.0.1:${server.port}` };
}

function gangLogs(pods: LocalPod[]): string {
  return pods.map((p, i) => `----- pod ${i} -----\n${p.log.slice(-6000)}`).join("\n");
}

const NODES = GPUS >= 2 ? 2 : 1;
/** The tiny model trains about 25 steps a second here: 300 steps leave the kill after the first checkpoint seconds to spare. */
const MAX_STEPS = 300;
const SAVE_STEPS = 25;

describe(`real Axolotl: ${NODES}-node LoRA job through preprocess, kill, resume, merge and inference`, () => {
  let tj: TestJob;
  let out: string;
  let progress: Awaited<ReturnType<typeof progressServer>>;
  const token = "progress-token-for-the-real-tier";

  before(async () => {
    progress = await progressServer(token);
    // Long enough that the kill after the first checkpoint lands mid-run (see MAX_STEPS).
    // save_total_limit above the number of saves: HF's rotation deletes the oldest checkpoint-* folders, partial or
    // not, and this test checks that nothing else touches the partial one. An eval every 100 steps puts eval lines and
    // eval bars in the log the parsers must tell apart from training.
    tj = testJob(
      "tiny-lora",
      {
        nodes: NODES,
        gpusPerNode: 1,
        config: cpuConfig({ max_steps: MAX_STEPS, save_steps: SAVE_STEPS, save_total_limit: 20, val_set_size: 0.05, eval_steps: 100 }),
      },
      { progressUrl: progress.url },
    );
    out = join(sb.root, "claim-tiny-lora");
    mkdirSync(out, { recursive: true });
  });
  after(async () => progress.server.close());

  it("preprocess: axolotl preprocess tokenizes into the claim", async () => {
    const [pod] = await startPods(sb, tj, renderPreprocessJob(tj.input, 0), out);
    const exit = await pod!.exited;
    assert.equal(exit.code, 0, pod!.log.slice(-4000));
    assert.ok(readdirSync(join(out, "prepared")).length > 0, "prepared dataset written under dataset_prepared_path");
    assert.equal(pod!.terminationMessage()?.reason, "Completed");
  });

  it("train attempt 0: a worker SIGKILLed after the first checkpoint fails the gang, and the termination message names the signal", async () => {
    const pods = await startPods(sb, tj, renderTrainJob(tj.input, 0), join(out), { tokens: { "finetune-progress-token": token } });
    const modelDir = join(out, "model");
    const exitedEarly = () => pods.some((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    // A hang guard, not a speed check: the wait also ends when a pod exits before the checkpoint.
    await waitFor("the first checkpoint to be complete", () => isCompleteCheckpoint(modelDir, SAVE_STEPS) || exitedEarly(), {
      timeoutMs: 20 * 60_000,
      intervalMs: 50,
    }).catch((err) => {
      pods.forEach((p) => p.destroy());
      throw err;
    });
    assert.ok(!exitedEarly(), `a pod exited before the first checkpoint:\n${gangLogs(pods)}`);
    // torchrun's own command line names the module too; its worker is the process it started.
    const workers = descendantsMatching(pods[0]!.child.pid!, "axolotl.cli.train").filter(
      (pid) => !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("torchrun"),
    );
    assert.equal(workers.length, 1, `one torchrun worker under node 0: ${workers.join(",")}`);
    process.kill(workers[0]!, "SIGKILL");
    const exits = await waitGang(pods);
    assert.notEqual(exits[0]!.code, 0, gangLogs(pods));
    const msg = pods[0]!.terminationMessage()!;
    assert.equal(msg.stage, "train");
    assert.equal(msg.workerSignal, "SIGKILL", JSON.stringify(msg));
    // The operator's reading of that pod: a worker killed by SIGKILL is the host OOM killer's signature.
    const pod = {
      metadata: { name: "tiny-lora-train-0-0" },
      status: {
        phase: "Failed",
        containerStatuses: [
          { name: "trainer", state: { terminated: { exitCode: exits[0]!.code, reason: "Error", message: readFileSync(pods[0]!.terminationLogPath, "utf8") } } },
        ],
      },
    };
    const failure = classifyFailure("train", undefined, [pod as never]);
    assert.equal(failure.reason, "HostOutOfMemory", JSON.stringify(failure));
    if (WRITE_FIXTURES) {
      writeFixture(sb, "src/trainer/tests/testdata/axolotl-0.18.0-worker-sigkill.log", pods[0]!.log.split("\n").slice(-80).join("\n"));
      writeFixture(sb, "src/controller/testdata/termination-worker-sigkill.json", readFileSync(pods[0]!.terminationLogPath, "utf8"));
    }
  });

  it("train attempt 1: every node resumes from the newest complete checkpoint, past a partial one left untouched", async () => {
    const modelDir = join(out, "model");
    const complete = checkpoints(modelDir).filter((s) => isCompleteCheckpoint(modelDir, s));
    const newest = Math.max(...complete);
    // A save cut off by the crash: weights but no trainer_state.json (written last).
    const partial = join(modelDir, `checkpoint-${newest + 5}`);
    cpSync(join(modelDir, `checkpoint-${newest}`), partial, { recursive: true });
    rmSync(join(partial, "trainer_state.json"));
    const partialBefore = readdirSync(partial).sort();
    const partialMtime = statSync(partial).mtimeMs;

    const pods = await startPods(sb, tj, renderTrainJob(tj.input, 1), out, { tokens: { "finetune-progress-token": token } });
    const exits = await waitGang(pods);
    assert.deepEqual(
      exits.map((e) => e.code),
      pods.map(() => 0),
      gangLogs(pods),
    );

    for (const pod of pods) {
      const [resume] = launcherRecords(pod.log, "FINETUNE_RESUME");
      assert.equal(resume?.step, newest, `node ${pod.opts.index} resumed from checkpoint-${newest}: ${JSON.stringify(resume)}`);
      assert.ok(
        (resume!.skipped as Array<{ path: string }>).some((s) => s.path.endsWith(`checkpoint-${newest + 5}`)),
        "the partial checkpoint was skipped",
      );
    }
    // The trainer really continued: the final state has every step, and the first step logged after resume is newest + 1.
    const state = trainerState(join(modelDir, `checkpoint-${MAX_STEPS}`));
    assert.equal(state.global_step, MAX_STEPS);
    const resumedLog = pods[0]!.log;
    const firstStep = [...resumedLog.matchAll(new RegExp(`\\b(\\d+)/${MAX_STEPS} \\[`, "g"))].map((m) => Number(m[1])).find((n) => n > 0);
    assert.equal(firstStep, newest + 1, `the first step trained after resuming follows checkpoint-${newest}`);
    assert.deepEqual(readdirSync(partial).sort(), partialBefore, "partial checkpoint untouched");
    assert.equal(statSync(partial).mtimeMs, partialMtime);
    assert.ok(existsSync(join(modelDir, "adapter_model.safetensors")), "final adapter saved");
    assert.equal(pods[0]!.terminationMessage()?.finalModel, true);

    // Progress pushed by the launcher through the operator's server, as the status patch it wrote.
    await waitFor("the final progress patch", () => progress.patches.some((p) => (p.status.progress as { step?: number }).step === MAX_STEPS), {
      timeoutMs: 60_000,
    });
    const last = progress.patches.filter((p) => (p.status.progress as { step?: number }).step === MAX_STEPS).pop()!.status.progress as Record<string, unknown>;
    assert.equal(last.totalSteps, MAX_STEPS);
    for (const key of ["loss", "learningRate", "epoch", "gradNorm"])
      assert.equal(typeof last[key], "number", `status.progress.${key} from a real report: ${JSON.stringify(last)}`);
    assert.ok(Number.isFinite(last.loss as number));

    // The log-tail fallback reads the same rank-0 log to the same figures.
    const parsed = parseLogTail(resumedLog);
    assert.equal(parsed.step, MAX_STEPS);
    assert.equal(parsed.totalSteps, MAX_STEPS);
    for (const key of ["loss", "learningRate", "epoch", "evalLoss"] as const)
      assert.equal(typeof parsed[key], "number", `log-tail ${key}: ${JSON.stringify(parsed)}`);
    assert.equal(typeof last.evalLoss, "number", "eval loss pushed");
    if (WRITE_FIXTURES) writeFixture(sb, "src/progress/testdata/axolotl-0.18.0-train-rank0.log", resumedLog);
  });

  it("merge: axolotl merge-lora writes a merged model that transformers loads and generates with", async () => {
    const [pod] = await startPods(sb, tj, renderMergeJob(tj.input, 0), out);
    const exit = await pod!.exited;
    assert.equal(exit.code, 0, pod!.log.slice(-4000));
    const merged = join(out, "model", "merged");
    assert.ok(existsSync(join(merged, "model.safetensors")), `merged weights in ${merged}: ${readdirSync(merged).join(", ")}`);
    const gen = await runProcess(
      env.python,
      [
        "-c",
        "import sys; from transformers import AutoModelForCausalLM, AutoTokenizer\n" +
          "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); t = AutoTokenizer.from_pretrained(sys.argv[1])\n" +
          "ids = t('Add 2 and 3.', return_tensors='pt').input_ids\n" +
          "o = m.generate(ids, max_new_tokens=5, do_sample=False)\n" +
          "print('GENERATED', o.shape[1] - ids.shape[1])",
        merged,
      ],
      { env: { ...process.env, HF_HUB_OFFLINE: "1" } },
    );
    assert.match(gen.out, /GENERATED [1-5]\b/, gen.out.slice(-3000));
  });

  it("merge on CPU (merge.onCPU) of a config that leaves Axolotl's LoRA kernels unset, as users write them", async () => {
    // Axolotl turns the kernels on when a config does not mention them; they need an NVIDIA driver.
    const config = Object.fromEntries(Object.entries(cpuConfig({ max_steps: MAX_STEPS })).filter(([k]) => !/^lora_\w+_kernel$/.test(k)));
    const cpuMerge = testJob("tiny-lora-cpu-merge", { nodes: NODES, gpusPerNode: 1, merge: { onCPU: true }, config });
    const claim = join(sb.root, "claim-tiny-lora-cpu-merge");
    mkdirSync(join(claim, "model"), { recursive: true });
    for (const name of readdirSync(join(out, "model")).filter((n) => n.startsWith("adapter_") || n.startsWith("tokenizer") || n === "config.json"))
      cpSync(join(out, "model", name), join(claim, "model", name));
    const [pod] = await startPods(sb, cpuMerge, renderMergeJob(cpuMerge.input, 0), claim);
    const exit = await pod!.exited;
    assert.equal(exit.code, 0, pod!.log.slice(-4000));
    assert.ok(existsSync(join(claim, "model", "merged", "model.safetensors")));
  });

  it("inference: axolotl inference on the adapter answers a prompt fed on stdin", async () => {
    const config = join(sb.root, "tiny-lora-preprocess-0-0", "volumes", "finetune-config", "config.yaml");
    const r = await runProcess(join(env.binDir, "axolotl"), ["inference", config, `--lora-model-dir=${join(out, "model")}`], {
      env: { ...process.env, PATH: `${env.binDir}:${process.env.PATH}`, HF_HUB_OFFLINE: "1", AXOLOTL_DO_NOT_TRACK: "1" },
      input: "Add 2 and 3.\n",
    });
    assert.equal(r.code, 0, r.out.slice(-4000));
    // It prints the prompt followed by the generation, between banners.
    assert.match(r.out, /Give me an instruction[\s\S]*^Add 2 and 3\..{3,}$/m, r.out.slice(-3000));
  });
});

describe("real Axolotl: SIGTERM mid-training saves a checkpoint within the grace period", () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ["the default trigger file", { enabled: true }],
    ["a config that names its own trigger file", { enabled: true, trigger_file_path: "save-now.flag" }],
  ];
  for (const [i, [label, dynamicCheckpoint]] of cases.entries()) {
    it(`with ${label}`, async () => {
      const grace = 120;
      // No checkpoint before the signal (save_steps past the end): whatever is saved was saved because of SIGTERM.
      const tj = testJob(`sigterm-${i}`, {
        preprocess: { enabled: false },
        terminationGracePeriodSeconds: grace,
        config: cpuConfig({ max_steps: 500, save_steps: 1000, dynamic_checkpoint: dynamicCheckpoint }),
      });
      const out = join(sb.root, `claim-sigterm-${i}`);
      mkdirSync(out, { recursive: true });
      const [pod] = await startPods(sb, tj, renderTrainJob(tj.input, 0), out);
      const exited = () => pod!.child.exitCode !== null || pod!.child.signalCode !== null;
      await waitFor("training to pass step 3", () => /\b([3-9]|\d{2,})\/500 \[/.test(pod!.log) || exited(), { timeoutMs: 20 * 60_000, intervalMs: 250 }).catch(
        (err) => {
          pod!.destroy();
          throw err;
        },
      );
      assert.ok(!exited(), `the pod exited before the signal:\n${pod!.log.slice(-4000)}`);
      const signalledAt = Date.now();
      pod!.signal("SIGTERM");
      const exit = await pod!.exited;
      const seconds = (Date.now() - signalledAt) / 1000;
      const [shutdown] = launcherRecords(pod!.log, "FINETUNE_SHUTDOWN");
      const modelDir = join(out, "model");
      const saved = checkpoints(modelDir).filter((s) => isCompleteCheckpoint(modelDir, s));
      assert.equal(
        saved.length,
        1,
        `one complete checkpoint saved after SIGTERM (${seconds.toFixed(0)} s): ${JSON.stringify(shutdown)}\n${pod!.log.slice(-4000)}`,
      );
      assert.equal(shutdown?.triggerConsumed, true, "Axolotl consumed the trigger the launcher created");
      assert.equal(shutdown?.killed, false, "no SIGKILL was needed");
      assert.ok(String(shutdown?.savedCheckpoint).endsWith(`checkpoint-${saved[0]}`), JSON.stringify(shutdown));
      assert.ok(seconds < grace, `saved and exited within the ${grace} s grace period (took ${seconds.toFixed(0)} s)`);
      assert.notEqual(exit.code, null);
    });
  }
});

describe("real Axolotl: preprocess fills the shared model cache", () => {
  it("downloads base_model from the Hub into HF_HOME on the cache claim; training then loads it with the Hub unreachable", async () => {
    const repo = "local/tiny-llama";
    const hub = await serveRepo(repo, sb.model.modelDir);
    try {
      const tj = testJob("cache-warm", {
        storage: { cache: { existingClaim: "hf-cache" } },
        config: cpuConfig({ base_model: repo, max_steps: 3, save_steps: 1000 }),
      });
      const out = join(sb.root, "claim-cache-warm");
      const cache = join(sb.root, "claim-hf-cache");
      mkdirSync(out, { recursive: true });
      mkdirSync(cache, { recursive: true });
      const claims = { "finetune-cache": cache };
      // The preprocess pod reaches the Hub (here: its loopback stand-in, as a cluster reaches a Hub mirror).
      const [pre] = await startPods(sb, tj, renderPreprocessJob(tj.input, 0), out, { claims, sandboxEnv: { HF_HUB_OFFLINE: "", HF_ENDPOINT: hub.url } });
      assert.equal((await pre!.exited).code, 0, pre!.log.slice(-4000));
      const snapshot = join(cache, "huggingface", "hub", "models--local--tiny-llama", "snapshots", hub.sha);
      assert.ok(existsSync(join(snapshot, "model.safetensors")), `weights cached in ${snapshot}; hub saw: ${hub.requests.join(", ")}`);
      assert.ok(existsSync(join(snapshot, "tokenizer.json")));

      // Training pods cannot reach the Hub at all, and still load the model: from the cache preprocess filled.
      const seen = hub.requests.length;
      const [train] = await startPods(sb, tj, renderTrainJob(tj.input, 0), out, { claims });
      const exit = await train!.exited;
      assert.equal(exit.code, 0, train!.log.slice(-4000));
      assert.equal(train!.terminationMessage()?.finalModel, true);
      assert.equal(hub.requests.length, seen, "training made no Hub request");
    } finally {
      await hub.close();
    }
  });
});
