/**
 * The shipped launcher (taken from the ConfigMap the job's pods mount) wraps an Axolotl-like
 * trainer and pushes its progress over HTTPS to the operator, verifying the
 * endpoint with the private CA that the operator ships in the job's ConfigMap
 * (--progress-ca-file); the token is a real bound service-account token.
 * Without the CA the trainer refuses the endpoint and training is unaffected.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { configMapName } from "../src/render/names.ts";
import { FATE_ANNOTATION, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { progressToken, startOperator, suiteNamespace, type OperatorProcess, type SuiteNamespace } from "./lib/operator.ts";

const FAKE_TRAINER = fileURLToPath(new URL("./fixtures/fake-axolotl.py", import.meta.url));
const run = promisify(execFile);
let suite: SuiteNamespace;
let k: KubeClients;
let ns: string;
let op: OperatorProcess;
let dir: string;
let pod: V1Pod;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A private CA and a server certificate for 127.0.0.1 signed by it. */
async function makeCerts(): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, f);
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
    "-subj",
    "/CN=finetune-e2e-ca",
    "-days",
    "1",
  ]);
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("tls.key"), "-out", p("tls.csr"), "-subj", "/CN=127.0.0.1"]);
  writeFileSync(p("san.ext"), "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    p("tls.csr"),
    "-CA",
    p("ca.crt"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("tls.crt"),
    "-days",
    "1",
    "-extfile",
    p("san.ext"),
  ]);
  return { ca: p("ca.crt"), cert: p("tls.crt"), key: p("tls.key") };
}

before(async () => {
  suite = await suiteNamespace("progress-tls");
  ({ k, ns } = suite);
  dir = mkdtempSync(join(tmpdir(), "finetune-progress-tls-"));
  const certs = await makeCerts();
  const port = await freePort();
  op = await startOperator({
    namespace: ns,
    extraArgs: [
      `--progress-port=${port}`,
      `--progress-url=https://127.0.0.1:${port}`,
      `--progress-tls-cert=${certs.cert}`,
      `--progress-tls-key=${certs.key}`,
      `--progress-ca-file=${certs.ca}`,
      "--progress-write-interval-seconds=1",
    ],
  });
  await createFtj(k, ftjManifest("tls", ns, { preprocess: { enabled: false }, merge: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
  pod = await waitFor("rank 0 running", async () =>
    (await listPods(k, ns, `${LABEL_JOB_NAME}=tls,${LABEL_STAGE}=train`)).find((p) => p.status?.phase === "Running"),
  );
});

after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await suite?.cleanup(op);
});

/** Runs the launcher the job's pods mount around the fake trainer with the pod's progress settings; returns its stderr. */
async function runLauncher(withCa: boolean): Promise<{ code: number | null; stderr: string }> {
  const cm = await k.core.readNamespacedConfigMap({ namespace: ns, name: configMapName("tls") });
  // The launcher the pod mounts: the namespace's shared launcher ConfigMap.
  const launcherCm = pod.spec!.volumes!.find((v) => v.name === "finetune-launcher")!.configMap!.name!;
  // Every key, as the volume mounts them: the entry imports its sibling modules from its own folder.
  for (const [key, text] of Object.entries((await k.core.readNamespacedConfigMap({ namespace: ns, name: launcherCm })).data!)) {
    writeFileSync(join(dir, key), text);
  }
  writeFileSync(join(dir, "ca-from-configmap.crt"), cm.data!["progress-ca.crt"] ?? "");
  writeFileSync(join(dir, "token"), await progressToken(k, ns, "tls", pod));
  const podEnv = Object.fromEntries((pod.spec!.containers[0]!.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    FINETUNE_STAGE: "train",
    FINETUNE_NODE_RANK: "0",
    FINETUNE_NNODES: "1",
    FINETUNE_OUTPUT_DIR: join(dir, "out"),
    FINETUNE_TERMINATION_LOG: join(dir, "termination-log"),
    FINETUNE_PROGRESS_URL: podEnv.FINETUNE_PROGRESS_URL!,
    FINETUNE_PROGRESS_TOKEN_FILE: join(dir, "token"),
    FINETUNE_PROGRESS_INTERVAL_SECONDS: "2.2",
    ...(withCa ? { FINETUNE_PROGRESS_CA_FILE: join(dir, "ca-from-configmap.crt") } : {}),
  };
  const child = spawn("python3", [join(dir, "launcher.py"), "--", "python3", FAKE_TRAINER, "40"], { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.on("close", r));
  return { code, stderr };
}

describe("progress over HTTPS with a private CA", () => {
  test("the CA ships in the job's ConfigMap and the trainer is pointed at it", async () => {
    const cm = await k.core.readNamespacedConfigMap({ namespace: ns, name: configMapName("tls") });
    assert.equal(cm.data!["progress-ca.crt"], readFileSync(join(dir, "ca.crt"), "utf8"));
    const env = pod.spec!.containers[0]!.env ?? [];
    assert.equal(env.find((e) => e.name === "FINETUNE_PROGRESS_CA_FILE")?.value, "/etc/finetune/progress-ca.crt");
    assert.match(env.find((e) => e.name === "FINETUNE_PROGRESS_URL")?.value ?? "", /^https:\/\/127\.0\.0\.1:\d+\/v1\/progress\//);
  });

  test("without the CA the trainer refuses the endpoint, and training is unaffected", async () => {
    const r = await runLauncher(false);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /progress report failed: .*CERTIFICATE_VERIFY_FAILED/);
    assert.equal((await getFtj(k, ns, "tls")).status?.progress, undefined);
  });

  test("with the shipped CA the launcher's reports reach status, the final one included", async () => {
    const r = await runLauncher(true);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /progress report failed/);
    const job = await waitFor("final progress in status", async () => {
      const j = await getFtj(k, ns, "tls");
      return j.status?.progress?.step === 40 ? j : undefined;
    });
    assert.equal(job.status?.progress?.totalSteps, 40);
    assert.equal(job.status?.progress?.loss, 1.6);
    assert.equal(job.status?.progress?.summary, "40/40 (100%)");
  });
});
