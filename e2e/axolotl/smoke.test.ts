/**
 * The real-trainer tier for the smoke-test stage: a short LoRA run of the tiny model trains a real adapter, then
 * the smoke-test pod the operator renders (renderSmokeTestJob) runs through the shipped launcher: real
 * `axolotl inference CONFIG --lora-model-dir=OUTPUT_DIR` once per prompt, the prompt on stdin. Checked: the answers
 * file on the claim, the launcher's summary in the termination message, and the planner's reading of that summary
 * (status.smokeTest and its checks) from the pod as the API server would show it.
 *
 * The tiny model is untrained noise, so what it answers is not checked, only that the pipeline carries it; whether
 * it stopped by EOS is whatever the real run did, and the check's verdict must agree with it.
 * About 3 minutes on 2 cores, most of it Python imports (one Axolotl process per prompt).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { renderSmokeTestJob, renderTrainJob } from "../../src/render/children.ts";
import { parseTerminationMessage } from "../../src/controller/failures.ts";
import { assessSmokeTest } from "../../src/controller/smoke-test.ts";
import { parseSmokeAnswersLog } from "../../src/controller/smoke-answers.ts";
import { ensureAxolotlEnv } from "./env.ts";
import { cpuConfig, newSandbox, startPods, testJob, tinyModel, WRITE_FIXTURES, writeFixture, type Sandbox, type TestJob } from "./fixture.ts";

const KEEP = process.env.FINETUNE_KEEP_REAL === "1";
const PROMPTS = ["Add 2 and 3.", "Name a colour."];
let sb: Sandbox;
let tj: TestJob;
let out: string;

before(async () => {
  const env = await ensureAxolotlEnv();
  sb = newSandbox(env, await tinyModel(env));
  tj = testJob("tiny-smoke", { config: cpuConfig({ max_steps: 5, save_steps: 5 }), preprocess: { enabled: false }, smokeTest: { prompts: PROMPTS } });
  out = join(sb.root, "claim-tiny-smoke");
  mkdirSync(out, { recursive: true });
});

after(() => {
  if (!KEEP) rmSync(sb.root, { recursive: true, force: true });
  else process.stderr.write(`kept ${sb.root}\n`);
});

describe("real Axolotl: the smoke-test stage on a real adapter", () => {
  it("train: a short LoRA run leaves an adapter", async () => {
    const [pod] = await startPods(sb, tj, renderTrainJob(tj.input, 0), out);
    const exit = await pod!.exited;
    assert.equal(exit.code, 0, pod!.log.slice(-4000));
    assert.ok(existsSync(join(out, "model", "adapter_model.safetensors")));
  });

  it("smoke test: the rendered pod runs axolotl inference per prompt and reports the answers", async () => {
    const job = renderSmokeTestJob(tj.input, 0);
    assert.deepEqual(job.spec!.template.spec!.containers[0]!.command!.slice(3, 5), ["axolotl", "inference"]);
    const [pod] = await startPods(sb, tj, job, out);
    const exit = await pod!.exited;
    assert.equal(exit.code, 0, pod!.log.slice(-6000));
    assert.equal(
      (pod!.log.match(/Give me an instruction \(Ctrl \+ D to submit\):/g) ?? []).length,
      2 * PROMPTS.length,
      "two banners per process: the prompt, then end of input",
    );

    // In full on the claim.
    const file = JSON.parse(readFileSync(join(out, "smoke-test", "answers.json"), "utf8")) as {
      eosToken: string | null;
      answers: Array<{ prompt: string; answer: string; stopped: boolean | null }>;
    };
    assert.deepEqual(
      file.answers.map((a) => a.prompt),
      PROMPTS,
    );
    assert.equal(typeof file.eosToken, "string", "the EOS token read from the tokenizer files in output_dir");
    for (const a of file.answers) {
      assert.equal(typeof a.stopped, "boolean");
      assert.ok(!a.answer.includes(file.eosToken!), `special tokens removed from ${JSON.stringify(a.answer.slice(0, 200))}`);
      assert.ok(!a.answer.includes(a.prompt), "the prompt is not part of the answer");
    }

    // In full in the pod log, as the operator copies it into the answers ConfigMap.
    const logged = parseSmokeAnswersLog(pod!.log);
    assert.deepEqual(logged, { eosToken: file.eosToken, answers: file.answers.map((a) => ({ prompt: a.prompt, answer: a.answer, stopped: a.stopped })) });
    if (WRITE_FIXTURES) writeFixture(sb, "src/controller/testdata/axolotl-0.18.0-smoke-pod.log", pod!.log.split("\n").slice(-60).join("\n"));

    // Truncated in the termination message, as the operator reads it from the pod's status.
    const raw = readFileSync(pod!.terminationLogPath, "utf8");
    const { summary } = parseTerminationMessage(raw);
    assert.equal(summary?.reason, "Completed");
    assert.deepEqual(
      summary?.smoke?.answers.map((a) => a.prompt),
      PROMPTS,
    );
    assert.deepEqual(
      summary?.smoke?.answers.map((a) => a.stopped),
      file.answers.map((a) => a.stopped),
    );

    const verdict = assessSmokeTest(summary?.smoke, "Warn");
    const expected = file.answers.some((a) => a.answer.trim() === "")
      ? "SmokeTestEmptyAnswer"
      : file.answers.every((a) => a.stopped === false)
        ? "SmokeTestNoEOS"
        : "SmokeTestPassed";
    assert.equal(verdict.reason, expected, JSON.stringify(file.answers).slice(0, 2000));
    assert.equal(verdict.status.answers.length, PROMPTS.length);
    process.stderr.write(`smoke-test verdict on the tiny model: ${verdict.reason}; answers: ${JSON.stringify(verdict.status.answers).slice(0, 600)}\n`);
  });
});
