/**
 * `kubectl finetune chat` on the real control plane: after a job succeeded, the command starts a pod on the job's
 * claim running `axolotl inference --gradio` (kwok "runs" it), port-forwards to it, and deletes the pod and its
 * ConfigMap when the command ends: on Ctrl+C, or when the port-forward ends (kwok serves no port-forward, so that
 * may come first). Either way nothing is left behind.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { LABEL_COMPONENT, LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { FATE_ANNOTATION, ensureCluster, freshNamespace, kubeClients, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, finishPod, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { ensureCrd, startOperator, type OperatorProcess } from "./lib/operator.ts";

const BIN = fileURLToPath(new URL("../bin/kubectl-finetune", import.meta.url));
let k: KubeClients;
let ns: string;
let op: OperatorProcess;

before(async () => {
  await ensureCluster();
  await ensureCrd();
  k = await kubeClients();
  ns = (await freshNamespace("chat")).name;
  op = await startOperator({ namespace: ns });
  // fate "run": every pod of this job, the chat pod included, runs until the test ends it.
  await createFtj(k, ftjManifest("chatty", ns, { preprocess: { enabled: false }, merge: { onCPU: true }, podAnnotations: { [FATE_ANNOTATION]: "run" } }));
  for (const stage of ["train", "merge"]) {
    const pod = await waitFor(
      `${stage} pod running`,
      async () => (await listPods(k, ns, `${LABEL_JOB_NAME}=chatty,${LABEL_STAGE}=${stage}`)).find((p) => p.status?.phase === "Running" && p.status.podIP),
      { timeoutMs: 60_000 },
    );
    await finishPod(k, pod, 0);
  }
  await waitFor("chatty Succeeded", async () => (await getFtj(k, ns, "chatty")).status?.phase === "Succeeded", { timeoutMs: 60_000 });
});

after(async () => {
  await op?.stop();
  await k?.core.deleteNamespace({ name: ns, propagationPolicy: "Background" }).catch(() => {});
});

describe("kubectl finetune chat", () => {
  test("starts a Gradio pod on the claim, port-forwards, and deletes the pod when the command ends", async () => {
    const cli = spawn(BIN, ["chat", "chatty", "-n", ns, "--merged", "--port", "0"], {
      env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    cli.stdout.on("data", (d: Buffer) => (output += d.toString()));
    cli.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once("exit", (code) => resolve(code)));
    const selector = `${LABEL_JOB_NAME}=chatty,${LABEL_COMPONENT}=chat`;
    const pod = await waitFor(
      "the chat pod running",
      async (note) => {
        note(output);
        return (await listPods(k, ns, selector)).find((p) => p.status?.phase === "Running");
      },
      { timeoutMs: 60_000 },
    );
    const c = pod.spec!.containers[0]!;
    assert.deepEqual(c.command, ["axolotl", "inference", "/etc/finetune-chat/config.yaml", "--gradio"], "--merged: no adapter dir");
    assert.ok(
      pod.spec!.volumes!.some((v) => v.persistentVolumeClaim?.claimName === "chatty-output"),
      "on the job's claim",
    );
    const cm = await k.core.readNamespacedConfigMap({ namespace: ns, name: pod.metadata!.name! });
    assert.match(cm.data!["config.yaml"]!, /gradio_share: false/);
    assert.match(cm.data!["config.yaml"]!, /base_model: \/finetune\/output\/model\/merged/);
    if (cli.exitCode === null) cli.kill("SIGINT");
    const code = await exited;
    assert.ok(code === 0 || code === 1, `exit ${code}: ${output}`);
    assert.match(output, /deleted/);
    await waitFor("the chat pod is gone", async () => (await listPods(k, ns, selector)).every((p) => p.metadata?.deletionTimestamp), { timeoutMs: 30_000 });
    await assert.rejects(k.core.readNamespacedConfigMap({ namespace: ns, name: pod.metadata!.name! }), "the ConfigMap is deleted too");
    assert.equal((await getFtj(k, ns, "chatty")).status?.phase, "Succeeded", "the job is untouched");
  });

  test("an unknown job is one error line, exit 1", async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const p = spawn(BIN, args, { env: { ...process.env, KUBECONFIG: k.kubeconfigPath ?? "" } });
        let out = "";
        p.stdout.on("data", (d: Buffer) => (out += d.toString()));
        p.stderr.on("data", (d: Buffer) => (out += d.toString()));
        p.once("exit", (code) => resolve({ code, out }));
      });
    const missing = await run(["chat", "nosuch", "-n", ns]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /not found/);
  });
});
