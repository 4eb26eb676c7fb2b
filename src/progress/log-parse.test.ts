import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseDuration, parseLogTail, segments } from "./log-parse.ts";
import { parseMetricsDict } from "./py-literal.ts";

const ESC = "\x1b";
/**
 * A rank-0 tail assembled from the formats earlier transformers versions print (float metrics, numpy scalars), with
 * a run still in progress (ETA, a save in flight); the real 0.18.0 output above is what the default image prints.
 */
const TAIL = readFileSync(new URL("./testdata/axolotl-tail.log", import.meta.url), "utf8");

/**
 * Real output: rank 0's log of a resumed LoRA run with evals, axolotl 0.18.0 / transformers 5.14.1 on CPU,
 * recorded by the real-trainer tier (e2e/axolotl/trainer.test.ts with FINETUNE_WRITE_FIXTURES=1).
 */
const REAL = readFileSync(new URL("./testdata/axolotl-0.18.0-train-rank0.log", import.meta.url), "utf8");

/** The last metrics dict of the log starting with `key`, read as JSON after swapping quotes (not through our parser). */
function lastDict(text: string, key: string): Record<string, string | number> {
  const all = [...text.matchAll(new RegExp(`\\{'${key}'[^{}]*\\}`, "g"))];
  return JSON.parse(all[all.length - 1]![0].replaceAll("'", '"')) as Record<string, string | number>;
}

/** The total of the tqdm bar drawn most often: the training loop's (eval bars are short and drawn only while evaluating). */
function trainingBarTotal(text: string): number {
  const counts = new Map<number, number>();
  for (const m of text.matchAll(/\b\d+\/(\d+) \[/g)) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}

describe("parseLogTail on real axolotl 0.18.0 output", () => {
  it("reads the string-formatted metrics transformers 5 prints, with step, total and eval loss", () => {
    const p = parseLogTail(REAL);
    const last = lastDict(REAL, "loss");
    assert.equal(typeof last.loss, "string", "the fixture has string metrics");
    const total = trainingBarTotal(REAL);
    assert.equal(p.step, total, "the run ended at its last step");
    assert.equal(p.totalSteps, total);
    assert.equal(p.loss, Number(last.loss));
    assert.equal(p.learningRate, Number(last.learning_rate));
    assert.equal(p.gradNorm, Number(last.grad_norm));
    assert.equal(p.epoch, Number(lastDict(REAL, "train_runtime").epoch));
    assert.equal(p.evalLoss, Number(lastDict(REAL, "eval_loss").eval_loss));
    assert.equal(p.completed, true);
    // Training completed, so every save it announced finished.
    const saved = [...new Set([...REAL.matchAll(/Saving model checkpoint to \S+\/checkpoint-(\d+)/g)].map((m) => Number(m[1])))];
    assert.ok(saved.length > 3);
    assert.deepEqual(
      p.checkpoints.map((c) => c.step),
      saved,
    );
  });

  it("keeps the training total while eval bars are drawn, even with the announcement scrolled away", () => {
    const noMax = REAL.slice(REAL.indexOf("Maximum number of steps set at") + 40);
    const p = parseLogTail(noMax);
    const total = trainingBarTotal(REAL);
    assert.deepEqual([p.step, p.totalSteps], [total, total]);
  });

  it("trusts the training bar over 'Maximum number of steps', which Axolotl computes from num_epochs even when max_steps is larger", () => {
    const announced = Number(/Maximum number of steps set at (\d+)/.exec(REAL)![1]);
    assert.notEqual(announced, trainingBarTotal(REAL), "in this run (max_steps 300, 190 steps an epoch) the two differ");
    assert.equal(parseLogTail(REAL).totalSteps, trainingBarTotal(REAL));
  });

  it("treats string nan/inf like their bare forms: the last finite value stays", () => {
    const p = parseLogTail("{'loss': '5.1', 'grad_norm': '0.5', 'epoch': '0.1'}\n{'loss': 'nan', 'grad_norm': 'inf', 'epoch': '0.2'}\n");
    assert.deepEqual([p.loss, p.gradNorm, p.epoch], [5.1, 0.5, 0.2]);
  });
});

describe("parseLogTail", () => {
  it("reads step, total, metrics, ETA and finished checkpoints from a realistic tail", () => {
    const p = parseLogTail(TAIL);
    assert.equal(p.step, 110);
    assert.equal(p.totalSteps, 873);
    assert.equal(p.loss, 1.1987);
    assert.equal(p.gradNorm, 0.398);
    assert.equal(p.learningRate, 1.98e-5);
    assert.equal(p.epoch, 0.12);
    assert.equal(p.evalLoss, 1.1);
    assert.equal(p.etaSeconds, 69 * 60);
    assert.equal(p.tokensPerSecond, undefined, "only a per-GPU rate was printed, as on the push path");
    assert.deepEqual(p.checkpoints, [{ step: 100, path: "/finetune/output/model/checkpoint-100" }]);
    assert.equal(p.completed, false);
  });

  it("does not count a checkpoint whose save may still be running", () => {
    const upToSave = TAIL.slice(0, TAIL.indexOf("[INFO|configuration_utils.py"));
    const p = parseLogTail(upToSave);
    assert.equal(p.step, 100);
    assert.deepEqual(p.checkpoints, []);
    const done = parseLogTail(
      `${upToSave}[2025-01-01 11:30:00,000] [INFO] [axolotl.train:250] [RANK:0] Training completed! Saving trained model to /finetune/output/model.\n`,
    );
    assert.deepEqual(done.checkpoints, [{ step: 100, path: "/finetune/output/model/checkpoint-100" }]);
    assert.equal(done.completed, true);
  });

  it("tells the training bar from eval bars without the 'Maximum number of steps' line", () => {
    const noMax = TAIL.split("\n").slice(1).join("\n");
    assert.equal(parseLogTail(noMax).step, 110);
    // Only an eval bar and a single training redraw in view: the known total picks the right one.
    const evalHeavy =
      "\r 40%|████      | 10/25 [00:02<00:03,  4.90it/s]\r 80%|████████  | 20/25 [00:04<00:01,  4.90it/s]\n 5%|▌         | 40/873 [03:00<1:02:00,  4.5s/it]\n";
    assert.deepEqual([parseLogTail(evalHeavy, { totalSteps: 873 }).step, parseLogTail(evalHeavy, { totalSteps: 873 }).totalSteps], [40, 873]);
    assert.equal(parseLogTail(evalHeavy).totalSteps, 25, "without any hint the most-drawn bar wins");
  });

  it("handles torchrun prefixes, ANSI cursor moves, numpy scalars, tensors and non-finite values", () => {
    const p = parseLogTail(
      [
        `[default0]:${ESC}[A 13%|█▎        | 114/873 [10:20<1:09:00,  5.40s/it]`,
        "{'loss': np.float64(0.75), 'grad_norm': tensor(0.3, device='cuda:0'), 'learning_rate': numpy.float32(1e-05), 'epoch': 1.0, 'tokens_per_second': 5120.5}",
        "{'loss': nan, 'grad_norm': inf, 'epoch': 1.1}",
      ].join("\n"),
      { totalSteps: 873 },
    );
    assert.equal(p.step, 114);
    assert.equal(p.loss, 0.75, "nan keeps the last finite loss");
    assert.equal(p.gradNorm, 0.3);
    assert.equal(p.learningRate, 1e-5);
    assert.equal(p.epoch, 1.1);
    assert.equal(p.tokensPerSecond, 5120.5);
  });

  it("skips malformed and hostile lines without throwing", () => {
    const before = parseLogTail(TAIL);
    const junk = [
      "{'loss': 1.2, 'learning_rate': ",
      "{'loss': __import__('os').system('echo pwned')}",
      "{'not': 'metrics'}",
      "{".repeat(5000) + "}".repeat(5000),
      "\x00\xff garbage } {",
      "12/0 [00:01<00:02, 1.0it/s]",
      "900/873 [00:01<00:02, 1.0it/s]",
      "Saving model checkpoint to /out/not-a-checkpoint",
      "Maximum number of steps set at lots",
      "{'loss': 'high', 'epoch': [1, 2]}",
      "x".repeat(200_000),
    ].join("\n");
    const after = parseLogTail(`${TAIL}\n${junk}\n`);
    assert.deepEqual({ ...after, etaSeconds: undefined }, { ...before, etaSeconds: undefined });
    for (const text of ["", "\r\r\n\n", junk, "{'loss'", "{'a': np.float64(", "{'a': tensor(1, x=')"]) assert.doesNotThrow(() => parseLogTail(text));
  });

  it("computes ETA from the rate when tqdm has no remaining time yet, and keeps steps monotonic", () => {
    const p = parseLogTail(" 5%|▌         | 50/100 [00:50<?,  2.00it/s]\n", { totalSteps: 100 });
    assert.equal(p.etaSeconds, 25);
    const q = parseLogTail(
      " 50%|█████     | 50/100 [00:50<00:50,  1.00it/s]\r 10%|█         | 10/100 [00:10<01:30,  1.00it/s]\n{'loss': 1.0, 'step': 60, 'epoch': 0.6}\n",
    );
    assert.equal(q.step, 60);
  });

  it("keeps the newest 20 checkpoints, trailing punctuation removed", () => {
    let text = "";
    for (let s = 10; s <= 300; s += 10) text += `Saving model checkpoint to /out/checkpoint-${s}.\n ${s / 4}%|█| ${s + 1}/400 [00:01<00:02,  1.00it/s]\n`;
    const p = parseLogTail(text);
    assert.equal(p.checkpoints.length, 20);
    assert.deepEqual(p.checkpoints.at(-1), { step: 300, path: "/out/checkpoint-300" });
  });
});

describe("agreement with the launcher's parser (push path)", () => {
  // Feeds the same tail through the launcher's ProgressTracker, split the way its StreamPump splits output.
  const PY = `
import json, re, sys
sys.path.insert(0, sys.argv[1])
from ansi import strip_ansi
from progress_parse import ProgressTracker
t = ProgressTracker()
for seg in re.split(r"\\r\\n|\\r|\\n", open(sys.argv[2], encoding="utf-8").read()):
    t.feed(strip_ansi(seg))
print(json.dumps(t.snapshot()[0]))
`;
  for (const [name, file, text] of [
    ["the real axolotl 0.18.0 log", "./testdata/axolotl-0.18.0-train-rank0.log", REAL],
    ["the older-format tail", "./testdata/axolotl-tail.log", TAIL],
  ] as const) {
    let python: string | undefined;
    let failure: unknown;
    try {
      python = execFileSync(
        "python3",
        ["-c", PY, fileURLToPath(new URL("../trainer/launcher/", import.meta.url)), fileURLToPath(new URL(file, import.meta.url))],
        { encoding: "utf8" },
      );
    } catch (err) {
      failure = err;
    }
    const noPython = (failure as { code?: string } | undefined)?.code === "ENOENT";

    it(`reads the same numbers from ${name}`, { skip: noPython ? "python3 not available" : false }, () => {
      if (failure) throw failure;
      const py = JSON.parse(python!) as Record<string, unknown>;
      const ts = parseLogTail(text);
      assert.equal(typeof ts.loss, "number", "a loss was read");
      for (const [k, v] of Object.entries({
        step: ts.step,
        totalSteps: ts.totalSteps,
        loss: ts.loss,
        evalLoss: ts.evalLoss,
        learningRate: ts.learningRate,
        gradNorm: ts.gradNorm,
        epoch: ts.epoch,
      })) {
        assert.equal(v, py[k], k);
      }
      if (!ts.completed) assert.equal(ts.etaSeconds, py.etaSeconds, "etaSeconds");
      // The launcher lists the save at once (and checks the files before reporting it complete); the tail shows training went past it.
      assert.deepEqual(
        (py.checkpoints as { step: number; path: string }[]).map((c) => ({ step: c.step, path: c.path })),
        ts.checkpoints,
      );
    });
  }
});

describe("helpers", () => {
  it("parseDuration", () => {
    assert.equal(parseDuration("1:10:11"), 4211);
    assert.equal(parseDuration("09:08"), 548);
    assert.equal(parseDuration("?"), undefined);
    assert.equal(parseDuration("1:x"), undefined);
  });

  it("segments split at \\n and tqdm's \\r and drop ANSI", () => {
    assert.deepEqual(segments(`a\r\nb\rc${ESC}[32m!${ESC}[0m\n\n`), ["a", "b", "c!"]);
  });

  it("parseMetricsDict reads Python reprs and refuses anything else", () => {
    assert.deepEqual(parseMetricsDict("{'loss': 1.5, \"x\": -2e-3, 'ok': True, 'n': None, 't': (1, 2), 'l': [], 'd': {},}"), {
      loss: 1.5,
      x: -0.002,
      ok: true,
      n: null,
      t: [1, 2],
      l: [],
      d: {},
    });
    assert.deepEqual(parseMetricsDict("prefix {'loss': -inf} suffix"), { loss: Number.NEGATIVE_INFINITY });
    assert.equal(parseMetricsDict("{'loss': os.system('x')}"), undefined);
    assert.equal(parseMetricsDict("{1: 2}"), undefined);
    assert.equal(parseMetricsDict("{'a': 1} trailing }"), undefined);
  });

  it("keeps every training loss in the tail with the step of the bar above it, NaN included", () => {
    const p = parseLogTail(
      [
        "Maximum number of steps set at 100",
        " 1%|          | 1/100 [00:01<01:39,  1.00s/it]",
        "{'loss': '6.707', 'grad_norm': '0.5898', 'learning_rate': '0.001', 'epoch': '0.01'}",
        " 2%|▏         | 2/100 [00:02<01:38,  1.00s/it]",
        "{'loss': nan, 'grad_norm': nan, 'epoch': 0.02}",
        " 3%|▎         | 3/100 [00:03<01:37,  1.00s/it]",
        "{'loss': 'inf', 'epoch': '0.03'}",
        "{'eval_loss': '6.5', 'epoch': '0.03'}",
        "",
      ].join("\n"),
    );
    assert.equal(p.losses.length, 3, "eval_loss is not a training loss");
    assert.deepEqual(p.losses[0], { step: 1, loss: 6.707 });
    assert.deepEqual([p.losses[1]!.step, Number.isNaN(p.losses[1]!.loss)], [2, true]);
    assert.deepEqual([p.losses[2]!.step, Number.isNaN(p.losses[2]!.loss)], [3, true]);
    assert.equal(p.loss, 6.707, "status.progress.loss still shows the last finite value");
  });

  it("the real axolotl 0.18.0 log gives its losses in step order", () => {
    // stdout (dicts) and stderr (bars) interleave unevenly in a container log, so a loss can land one bar off, and two
    // on the same bar (loss.ts keeps the first). The steps never go back, and most are distinct.
    const p = parseLogTail(REAL);
    assert.ok(p.losses.length >= 10, String(p.losses.length));
    const steps = p.losses.map((l) => l.step);
    assert.deepEqual(
      steps,
      [...steps].sort((a, b) => a - b),
      "non-decreasing",
    );
    assert.ok(new Set(steps).size >= 0.8 * steps.length, `${new Set(steps).size} distinct of ${steps.length}`);
    assert.ok(p.losses.every((l) => Number.isFinite(l.loss)));
  });
});
