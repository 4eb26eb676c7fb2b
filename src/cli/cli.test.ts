/**
 * End-to-end tests of the kubectl plugin as users run it: bin/kubectl-finetune
 * in a child process, on temp files. Exit codes: 0 valid, 1 invalid, 2
 * unreadable / usage. Never a stack trace.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { parseAxolotlYaml } from "../axolotl/yaml.ts";
import { launcherConfigMapName } from "../render/names.ts";
import { launcherSource } from "../trainer/source.ts";

const BIN = fileURLToPath(new URL("../../bin/kubectl-finetune", import.meta.url));
const COMPILE_CACHE = join(tmpdir(), "kubectl-finetune-test-compile-cache");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

// Only catches a hung child: on a busy machine one start of the plugin (Node + client-node) took over 20 s.
const HANG_MS = 5 * 60_000;

function run(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    // A kubeconfig that exists but points nowhere, so no test can reach a real cluster.
    // NODE_COMPILE_CACHE makes each start about a third cheaper (node parses @kubernetes/client-node once).
    const env = { ...process.env, KUBECONFIG: kubeconfig, NO_COLOR: "1", NODE_COMPILE_CACHE: COMPILE_CACHE };
    execFile(BIN, args, { env, timeout: HANG_MS }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      if (err?.killed) stderr += `\n(test harness: killed after ${HANG_MS / 1000} s, the process hung)`;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Asserts the exit code and that neither stream carries a stack trace. */
function expectExit(r: Result, code: number): Result {
  const all = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, code, `exit ${r.code}, expected ${code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  assert.doesNotMatch(all, /^ {4}at /m, `stack trace in output:\n${all}`);
  assert.doesNotMatch(all, /\bat [\w.<>]+ \((file|node):/, `stack frame in output:\n${all}`);
  return r;
}

let dir: string;
let kubeconfig: string;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const VALID = `base_model: meta-llama/Llama-3.1-8B-Instruct
adapter: lora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
micro_batch_size: 2
gradient_accumulation_steps: 4
num_epochs: 1
learning_rate: 0.0002
sequence_len: 2048
datasets:
  - path: data/train.jsonl
    ds_type: json
    type: alpaca
`;

const FTJ = (name: string, spec: string) => `apiVersion: finetune.dev/v1alpha1
kind: FineTuneJob
metadata:
  name: ${name}
spec:
${spec}`;

const indent = (text: string, by: string) =>
  text
    .trimEnd()
    .split("\n")
    .map((l) => by + l)
    .join("\n") + "\n";

before(() => {
  dir = mkdtempSync(join(tmpdir(), "kubectl-finetune-test-"));
  kubeconfig = file(
    "kubeconfig",
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team-a}}]
current-context: x
`,
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

// Each start of the CLI is mostly Node loading modules: run them side by side.
describe("kubectl-finetune", { concurrency: 4 }, () => {
  describe("kubectl-finetune validate", { concurrency: true }, () => {
    it("exit 0 on a valid config", async () => {
      const r = expectExit(await run("validate", file("valid.yaml", VALID)), 0);
      assert.match(r.stdout, /valid\.yaml: Axolotl config: valid \(0 error\(s\), 0 warning\(s\)\)/);
    });

    const broken: { name: string; config: string; args?: string[]; key: RegExp }[] = [
      { name: "qlora without load_in_4bit", config: VALID.replace("adapter: lora", "adapter: qlora"), key: /error: load_in_4bit: .*load_in_4bit: true/ },
      { name: "deepspeed with 1 GPU", config: `${VALID}deepspeed: deepspeed_configs/zero2.json\n`, key: /error: deepspeed: .*at least 2 GPUs/ },
      {
        name: "wrong types and a missing required key",
        config: VALID.replace(/^base_model:.*\n/m, "")
          .replace("micro_batch_size: 2", "micro_batch_size: two")
          .replace("num_epochs: 1", "num_epochs: [1]"),
        key: /error: base_model: [\s\S]*error: micro_batch_size: .*"two"[\s\S]*error: num_epochs: /,
      },
    ];
    for (const c of broken) {
      it(`exit 1 naming the key: ${c.name}`, async () => {
        const r = expectExit(await run("validate", file(`broken-${c.name.replace(/\W+/g, "-")}.yaml`, c.config), ...(c.args ?? [])), 1);
        assert.match(r.stdout, /INVALID/);
        assert.match(r.stdout, c.key);
      });
    }

    it("a reader that closes the pipe early (| head) ends the output quietly, exit 0", async () => {
      // The rendered objects (launcher included) are larger than a pipe buffer, so the CLI is still writing when head exits.
      const script = `"$0" render "$1" | head -c 10 >/dev/null; exit "\${PIPESTATUS[0]}"`;
      const r = await new Promise<Result>((resolve) => {
        execFile(
          "bash",
          ["-c", script, BIN, file("piped.yaml", VALID)],
          { env: { ...process.env, KUBECONFIG: kubeconfig, NODE_COMPILE_CACHE: COMPILE_CACHE } },
          (err, stdout, stderr) => {
            resolve({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
          },
        );
      });
      expectExit(r, 0);
      assert.equal(r.stderr, "", "no EPIPE error");
    });

    it("a typo is a warning with a suggestion, exit 0", async () => {
      const r = expectExit(await run("validate", file("typo.yaml", VALID.replace("lora_r: 16", "lora_rr: 16"))), 0);
      assert.match(r.stdout, /warning: lora_rr: .*did you mean `lora_r`\?/);
      assert.match(r.stdout, /valid \(0 error\(s\), 1 warning\(s\)\)/);
    });

    it("exit 2 for a missing file", async () => {
      const r = expectExit(await run("validate", join(dir, "does-not-exist.yaml")), 2);
      assert.match(r.stderr, /^error: .*does-not-exist\.yaml: cannot read file: no such file\n$/);
    });

    it("exit 2 for malformed YAML, with line:col", async () => {
      // The second document is broken: nothing is validated, the whole file is unreadable. (A repeated key is not
      // broken: PyYAML, and so Axolotl, keeps the last value; e2e/axolotl/yaml-roundtrip.test.ts checks that.)
      const path = file("malformed.yaml", `${VALID}---\nbase_model: x\ndatasets: [a\n`);
      const r = expectExit(await run("validate", path), 2);
      const m = /malformed\.yaml:(\d+):(\d+): YAML error: /.exec(r.stderr);
      assert.ok(m, r.stderr);
      assert.ok(Number(m[1]) >= 18, `line ${m[1]} is in the second document`);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
    });

    it("exit 2 for a YAML alias bomb", async () => {
      const bomb = [
        "a: &a [x, x, x, x, x, x, x, x, x, x]",
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
        "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      ].join("\n");
      const r = expectExit(await run("validate", file("bomb.yaml", bomb)), 2);
      assert.match(r.stderr, /bomb\.yaml: YAML error: .*alias/i);
    });

    it("says which job shape a plain config was checked for, assumed or given", async () => {
      const assumed = expectExit(await run("validate", file("shape.yaml", VALID)), 0);
      assert.match(
        assumed.stdout,
        /shape\.yaml: Axolotl config: valid \(0 error\(s\), 0 warning\(s\)\) \(checked for 1 node x 1 GPU, assumed: pass --nodes and --gpus-per-node/,
      );
      const ds = file("shape-ds.yaml", `${VALID}deepspeed: deepspeed_configs/zero2.json\n`);
      const given = expectExit(await run("validate", ds, "--nodes", "2", "--gpus-per-node", "8"), 0);
      assert.match(given.stdout, /checked for 2 nodes x 8 GPUs\)\n/);
      expectExit(await run("validate", ds), 1);
    });

    it("takes several files and folders, one verdict line per file; the worst exit code wins", async () => {
      const folder = join(dir, "configs-folder");
      mkdirSync(join(folder, "nested"), { recursive: true });
      writeFileSync(join(folder, "a.yml"), VALID);
      writeFileSync(join(folder, "nested", "b.yaml"), VALID.replace("adapter: lora", "adapter: qlora"));
      writeFileSync(join(folder, "notes.txt"), "not a config");
      const single = file("single.yaml", VALID);
      const invalid = expectExit(await run("validate", single, folder), 1);
      const verdicts = invalid.stdout.split("\n").filter((l) => !l.startsWith("  ") && l);
      assert.deepEqual(
        verdicts.map((l) => l.split(":")[0]),
        [single, join(folder, "a.yml"), join(folder, "nested", "b.yaml")],
      );
      assert.match(invalid.stdout, /b\.yaml: Axolotl config: INVALID[^\n]*\n  error: load_in_4bit/);
      const unreadable = expectExit(await run("validate", single, join(dir, "missing.yaml")), 2);
      assert.match(unreadable.stdout, /single\.yaml: Axolotl config: valid/);
      assert.match(unreadable.stdout, /missing\.yaml: unreadable: cannot read file: no such file/);
    });

    it("FSDP's layer class: an error when the model's local config.json names another, a warning when guessed", async () => {
      const model = join(dir, "models", "qwen3-tiny");
      mkdirSync(model, { recursive: true });
      writeFileSync(join(model, "config.json"), JSON.stringify({ architectures: ["Qwen3ForCausalLM"], model_type: "qwen3" }));
      const fsdp = "fsdp_version: 2\nfsdp_config:\n  auto_wrap_policy: TRANSFORMER_BASED_WRAP\n  transformer_layer_cls_to_wrap: LlamaDecoderLayer\n";
      const known = expectExit(await run("validate", file("fsdp-known.yaml", `${VALID.replace(/^base_model:.*$/m, `base_model: ${model}`)}${fsdp}`)), 1);
      assert.match(known.stdout, /error: fsdp_config\.transformer_layer_cls_to_wrap: .*`Qwen3DecoderLayer` \(its config\.json/);
      const guessed = expectExit(
        await run("validate", file("fsdp-guessed.yaml", `${VALID.replace(/^base_model:.*$/m, "base_model: Qwen/Qwen3-8B")}${fsdp}`)),
        0,
      );
      assert.match(guessed.stdout, /warning: fsdp_config\.transformer_layer_cls_to_wrap: .*`Qwen3DecoderLayer` \(guessed/);
    });

    it("the issue's YAML 1.1 spellings and Axolotl-accepted values validate; render writes what PyYAML reads back", async () => {
      // Axolotl 0.18.0 accepts each of these (e2e/axolotl/validator-diff.test.ts asks it); we used to reject them.
      const text = VALID.replace("learning_rate: 0.0002", "learning_rate: 2e-4")
        .replace("sequence_len: 2048", "sequence_len: 500_000")
        .replace("lora_target_linear: true", "lora_target_linear: on")
        .concat("load_in_8bit: yes\nevals_per_epoch: 0\nchat_template: gemma4_unified\nwandb_name: '2e-4'\n");
      const path = file("yaml11.yaml", text);
      const r = expectExit(await run("validate", path), 0);
      assert.match(r.stdout, /yaml11\.yaml: Axolotl config: valid \(0 error\(s\)/);
      const rendered = expectExit(await run("render", path), 0);
      const cm = parseAllDocuments(rendered.stdout)
        .map((d) => d.toJS() as { kind: string; data?: Record<string, string> })
        .find((o) => o.kind === "ConfigMap" && o.data?.["config.yaml"]);
      const configYaml = cm!.data!["config.yaml"]!;
      // As PyYAML read the original: 500000 and true are values; "2e-4" stays the string it was (pydantic makes
      // learning_rate a float), quoted so that it stays one.
      assert.match(configYaml, /^sequence_len: 500000$/m);
      assert.match(configYaml, /^lora_target_linear: true$/m);
      assert.match(configYaml, /^load_in_8bit: true$/m);
      assert.match(configYaml, /^learning_rate: "2e-4"$/m);
      assert.match(configYaml, /^wandb_name: "2e-4"$/m);
    });

    it("an empty file says so (exit 1)", async () => {
      const r = expectExit(await run("validate", file("empty.yaml", "")), 1);
      assert.match(r.stdout, /empty\.yaml: empty/);
    });

    it("a multi-document file reports every document; bad documents fail the file", async () => {
      const text = [
        FTJ("first", `  nodes: 1\n  config:\n${indent(VALID, "    ")}`),
        VALID.replace("adapter: lora", "adapter: qlora"),
        VALID,
        FTJ("cf", "  configFrom:\n    configMapKeyRef: {name: my-config}\n"),
        FTJ("types", `  nodes: two\n  gpusPerNode: 0\n  gpusPerNodes: 2\n  storage: {output: {size: lots}}\n  config:\n${indent(VALID, "    ")}`),
        "just a string\n",
      ].join("---\n");
      const r = expectExit(await run("validate", file("multi.yaml", text)), 1);
      assert.match(r.stdout, /multi\.yaml \(document 1\): FineTuneJob first: valid/);
      assert.match(r.stdout, /multi\.yaml \(document 2\): Axolotl config: INVALID[^\n]*\n  error: load_in_4bit/);
      assert.match(r.stdout, /multi\.yaml \(document 3\): Axolotl config: valid/);
      // A configFrom manifest is valid; the operator validates the ConfigMap's config.
      assert.match(
        r.stdout,
        /multi\.yaml \(document 4\): FineTuneJob cf: valid \(0 error\(s\), 1 warning\(s\)\)\n  warning: spec\.configFrom: .*ConfigMap my-config \(key config\.yaml\)/,
      );
      // Wrong types and unknown fields in a spec name the spec path.
      const types = r.stdout.slice(r.stdout.indexOf("(document 5)"), r.stdout.indexOf("(document 6)"));
      assert.match(types, /^\(document 5\): FineTuneJob types: INVALID/);
      assert.match(types, /error: spec\.nodes: /);
      assert.match(types, /error: spec\.gpusPerNode: /);
      assert.match(types, /error: spec\.gpusPerNodes: unknown field/);
      assert.match(types, /error: spec\.storage\.output\.size: .*quantity/);
      assert.match(r.stdout, /\(document 6\): Axolotl config: INVALID[^\n]*\n  error: \(root\): .*must be a mapping/);
    });
  });

  describe("kubectl-finetune render", { concurrency: true }, () => {
    it("prints the child objects of a plain config", async () => {
      const r = expectExit(await run("render", file("My Llama.yml", VALID), "-n", "research", "--nodes", "2", "--gpus-per-node", "8"), 0);
      const docs = parseAllDocuments(r.stdout).map(
        (d) =>
          d.toJS() as {
            kind: string;
            metadata: { name: string; namespace: string };
            spec: { completions?: number; template?: { spec: { containers: { command: string[] }[] } } };
          },
      );
      assert.deepEqual(
        docs.map((d) => `${d.kind}/${d.metadata.name}`),
        [
          "PersistentVolumeClaim/my-llama-output",
          "ConfigMap/my-llama-config",
          `ConfigMap/${launcherConfigMapName(launcherSource())}`,
          "Service/my-llama-ranks",
          "Job/my-llama-preprocess-0",
          "Job/my-llama-train-0",
          "Job/my-llama-smoke-0",
          "Job/my-llama-merge-0",
        ],
      );
      for (const d of docs) assert.equal(d.metadata.namespace, "research");
      const train = docs.find((d) => d.metadata.name === "my-llama-train-0")!;
      assert.equal(train.spec.completions, 2);
      assert.ok(train.spec.template!.spec.containers[0]!.command.includes("--nproc_per_node=8"));
      assert.equal(r.stderr, "");
    });

    it("renders a FineTuneJob manifest by its own name", async () => {
      const r = expectExit(
        await run("render", file("ftj-render.yaml", FTJ("from-manifest", `  preprocess: {enabled: false}\n  config:\n${indent(VALID, "    ")}`))),
        0,
      );
      const names = parseAllDocuments(r.stdout).map((d) => (d.toJS() as { metadata: { name: string } }).metadata.name);
      assert.deepEqual(names, [
        "from-manifest-output",
        "from-manifest-config",
        launcherConfigMapName(launcherSource()),
        "from-manifest-train-0",
        "from-manifest-smoke-0",
        "from-manifest-merge-0",
      ]);
    });

    it("refuses an invalid config with the errors, exit 1", async () => {
      const r = expectExit(await run("render", file("render-bad.yaml", VALID.replace("adapter: lora", "adapter: qlora"))), 1);
      assert.match(r.stderr, /cannot render an invalid FineTuneJob/);
      assert.match(r.stderr, /load_in_4bit/);
      assert.equal(r.stdout, "");
    });
  });

  describe("kubectl-finetune submit --dry-run=client", { concurrency: true }, () => {
    it("-o yaml prints the FineTuneJob", async () => {
      const r = expectExit(
        await run(
          "submit",
          file("submit.yaml", VALID),
          "--dry-run=client",
          "-o",
          "yaml",
          "--nodes",
          "2",
          "--gpus-per-node",
          "4",
          "--name",
          "sft",
          "--image",
          "axolotlai/axolotl:0.18.0",
        ),
        0,
      );
      const obj = parse(r.stdout) as {
        apiVersion: string;
        kind: string;
        metadata: { name: string; namespace?: string };
        spec: { nodes: number; gpusPerNode: number; image: string; config: { base_model: string } };
      };
      assert.equal(obj.apiVersion, "finetune.dev/v1alpha1");
      assert.equal(obj.kind, "FineTuneJob");
      assert.equal(obj.metadata.name, "sft");
      assert.equal(obj.spec.nodes, 2);
      assert.equal(obj.spec.gpusPerNode, 4);
      assert.equal(obj.spec.image, "axolotlai/axolotl:0.18.0");
      assert.equal(obj.spec.config.base_model, "meta-llama/Llama-3.1-8B-Instruct");
    });

    it("-o yaml keeps the config's values for YAML 1.1 readers (kubectl): strings stay strings, numbers numbers", async () => {
      const text = `${VALID}wandb_name: "yes"\nwandb_project: '500_000'\nseed: 0x2A\n`.replace("sequence_len: 2048", "sequence_len: 500_000");
      const r = expectExit(await run("submit", file("submit-yaml11.yaml", text), "--dry-run=client", "-o", "yaml"), 0);
      // Read back with YAML 1.1 rules (as PyYAML and, for booleans and underscores, kubectl's go-yaml read it).
      const config = (parseAxolotlYaml(r.stdout) as { spec: { config: Record<string, unknown> } }).spec.config;
      assert.equal(config.wandb_name, "yes");
      assert.equal(config.wandb_project, "500_000");
      assert.equal(config.sequence_len, 500000);
      assert.equal(config.seed, 42);
    });

    it("an invalid config is not submitted (exit 1, errors named)", async () => {
      const r = expectExit(await run("submit", file("submit-bad.yaml", VALID.replace("adapter: lora", "adapter: qlora")), "--dry-run=client"), 1);
      assert.match(r.stdout, /error: spec\.config\.load_in_4bit/);
      assert.match(r.stdout, /not submitted/);
    });
  });

  describe("kubectl-finetune usage and cluster errors", { concurrency: true }, () => {
    it("no command prints usage, exit 2", async () => {
      const r = expectExit(await run(), 2);
      assert.match(r.stdout, /^Usage: kubectl finetune COMMAND/);
    });

    it("an unknown command exits 2 with the error line first", async () => {
      const r = expectExit(await run("frobnicate"), 2);
      assert.match(r.stderr, /^error: unknown command "frobnicate"/);
    });

    it("an unreachable cluster is one error line, exit 1", async () => {
      const r = expectExit(await run("status", "llama"), 1);
      assert.match(r.stderr, /^error: /);
      assert.equal(r.stderr.trim().split("\n").length, 1);
    });
  });
});
