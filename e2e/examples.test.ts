/**
 * Every example in examples/ is valid (`kubectl finetune validate`, exit 0) and
 * runs to Succeeded on the local cluster with the operator running: each
 * FineTuneJob as written, plus what it references (dataset and cache claims,
 * the HF token Secret) and the kwok toleration the fake GPU nodes need; each
 * plain Axolotl config in examples/configs/ through `kubectl finetune submit`.
 *
 * Run: npx node --test e2e/examples.test.ts   (starts the cluster if it is not running)
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { freshNamespace, ignoreNotFound, kubeClients, kwokToleration, STORAGE_CLASS, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, getFtj, listPods } from "./lib/ftj.ts";
import { ensureCrd, startOperator, type OperatorProcess } from "./lib/operator.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const EXAMPLES = `${ROOT}examples`;
const CLI = `${ROOT}bin/kubectl-finetune`;
const run = promisify(execFile);

const manifests = readdirSync(EXAMPLES)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const configs = readdirSync(`${EXAMPLES}/configs`)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();

/** `kubectl finetune submit` flags for each plain config (as its header comment says). */
function submitFlags(file: string): string[] {
  const m = readFileSync(`${EXAMPLES}/configs/${file}`, "utf8").match(/kubectl finetune submit \S+((?: --[a-z-]+ \S+)*)/);
  return m?.[1]?.trim().split(/\s+/) ?? [];
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(CLI, args, { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("examples are valid", () => {
  test("there are examples for every scenario", () => {
    assert.ok(manifests.length >= 9, `examples/: ${manifests.join(", ")}`);
    assert.ok(configs.length >= 1, "examples/configs/ has plain Axolotl configs");
  });
  for (const file of manifests) {
    test(`kubectl finetune validate examples/${file}`, async () => {
      const r = await cli(["validate", `examples/${file}`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /: valid \(0 error\(s\)/);
      const doc = parse(readFileSync(`${EXAMPLES}/${file}`, "utf8")) as FineTuneJobObject;
      assert.equal(doc.kind, "FineTuneJob");
      // Scheduling on the test cluster comes from the test (pass-through fields), never from the example.
      assert.ok(!JSON.stringify(doc).includes("kwok"), "examples must not carry test-cluster tolerations");
    });
  }
  for (const file of configs) {
    test(`kubectl finetune validate examples/configs/${file} ${submitFlags(file).join(" ")}`, async () => {
      const r = await cli(["validate", `examples/configs/${file}`, ...submitFlags(file)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Axolotl config: valid/);
    });
  }
});

describe("examples run to Succeeded on the local cluster", { timeout: 600_000 }, () => {
  let k: KubeClients;
  let ns: string;
  let op: OperatorProcess;
  const created = new Set<string>();

  before(async () => {
    k = await kubeClients();
    await ensureCrd();
    ns = (await freshNamespace("examples", { clients: k })).name;
    op = await startOperator({ namespace: ns, leaderElect: false });
  });

  after(async () => {
    await op?.stop();
    if (process.env["FINETUNE_E2E_KEEP_NAMESPACES"] !== "1") await ignoreNotFound(k?.core.deleteNamespace({ name: ns, propagationPolicy: "Background" }));
  });

  /** Creates (once) the claims, Secrets and ConfigMaps a FineTuneJob references, as its user would beforehand. */
  async function prerequisites(ftj: FineTuneJobObject): Promise<void> {
    const spec = ftj.spec;
    const claims = new Set<string>();
    for (const v of (spec.volumes ?? []) as { persistentVolumeClaim?: { claimName: string } }[])
      if (v.persistentVolumeClaim) claims.add(v.persistentVolumeClaim.claimName);
    if (spec.storage?.output?.existingClaim) claims.add(spec.storage.output.existingClaim);
    if (spec.storage?.cache?.existingClaim) claims.add(spec.storage.cache.existingClaim);
    const secrets = new Map<string, string>();
    for (const ref of [spec.secrets?.huggingFaceToken, spec.secrets?.wandbApiKey]) if (ref) secrets.set(ref.name, ref.key ?? "token");
    for (const e of (spec.env ?? []) as { valueFrom?: { secretKeyRef?: { name: string; key: string } } }[]) {
      if (e.valueFrom?.secretKeyRef) secrets.set(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
    }
    assert.equal(spec.configFrom, undefined, "configFrom examples need their ConfigMap: teach this test to create it");
    for (const name of claims) {
      if (created.has(`pvc/${name}`)) continue;
      created.add(`pvc/${name}`);
      await k.core.createNamespacedPersistentVolumeClaim({
        namespace: ns,
        body: { metadata: { name }, spec: { accessModes: ["ReadWriteMany"], storageClassName: STORAGE_CLASS, resources: { requests: { storage: "10Gi" } } } },
      });
    }
    for (const [name, key] of secrets) {
      if (created.has(`secret/${name}/${key}`)) continue;
      created.add(`secret/${name}/${key}`);
      await k.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: { [key]: "hf_e2e_not_a_real_token" } } });
    }
  }

  /** The example as a user would apply it, plus the toleration for the fake GPU nodes (a pass-through scheduling field). */
  function onTestCluster(ftj: FineTuneJobObject): FineTuneJobObject {
    const scheduling = ftj.spec.scheduling ?? {};
    return {
      ...ftj,
      metadata: { ...ftj.metadata, namespace: ns },
      spec: { ...ftj.spec, scheduling: { ...scheduling, tolerations: [...(scheduling.tolerations ?? []), { ...kwokToleration }] } },
    };
  }

  async function runToSucceeded(ftj: FineTuneJobObject): Promise<FineTuneJobObject> {
    const name = ftj.metadata.name!;
    await prerequisites(ftj);
    await createFtj(k, onTestCluster(ftj));
    let failed: string | undefined;
    const done = await waitFor(
      `example ${name} Succeeded`,
      async (note) => {
        const j = await getFtj(k, ns, name);
        note({ phase: j.status?.phase, message: j.status?.message, stages: j.status?.stages });
        if (j.status?.phase === "Failed") failed = `${name} Failed: ${j.status.message} ${JSON.stringify(j.status.lastFailure)}`;
        return failed ? j : j.status?.phase === "Succeeded" && j;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );
    if (failed) assert.fail(failed);
    return done;
  }

  // All at once, as a team would submit them: they queue for the cluster's 32 fake GPUs.
  describe("FineTuneJobs", { concurrency: true }, () => {
    for (const file of manifests) {
      test(`examples/${file}`, async () => {
        const ftj = parse(readFileSync(`${EXAMPLES}/${file}`, "utf8")) as FineTuneJobObject;
        const done = await runToSucceeded(ftj);
        assert.equal(done.status?.stages?.train?.phase, "Succeeded");
        const nodes = ftj.spec.nodes ?? 1;
        // The training pods (one per node, all succeeded) carry what the example asks for.
        const pods = await listPods(k, ns, `${LABEL_JOB_NAME}=${ftj.metadata.name},${LABEL_STAGE}=train`);
        assert.ok(pods.filter((p) => p.status?.phase === "Succeeded").length >= nodes, `${pods.length} training pods, ${nodes} succeeded`);
        for (const pod of pods) {
          const c = pod.spec!.containers.find((x) => x.name === "trainer") ?? pod.spec!.containers[0]!;
          assert.equal(c.resources?.limits?.["nvidia.com/gpu"], String(ftj.spec.gpusPerNode ?? 1));
          for (const v of (ftj.spec.volumes ?? []) as { name: string }[])
            assert.ok(
              pod.spec!.volumes?.some((pv) => pv.name === v.name),
              `volume ${v.name}`,
            );
          for (const m of (ftj.spec.volumeMounts ?? []) as { name: string; mountPath: string }[])
            assert.ok(
              c.volumeMounts?.some((cm) => cm.name === m.name && cm.mountPath === m.mountPath),
              `mount ${m.mountPath}`,
            );
          const token = ftj.spec.secrets?.huggingFaceToken;
          if (token) {
            const ref = c.env?.find((e) => e.name === "HF_TOKEN")?.valueFrom?.secretKeyRef;
            assert.deepEqual([ref?.name, ref?.key], [token.name, token.key ?? "token"], "HF_TOKEN from the Secret");
          }
          for (const [key, value] of Object.entries(ftj.spec.scheduling?.nodeSelector ?? {})) assert.equal(pod.spec!.nodeSelector?.[key], value);
          const cache = ftj.spec.storage?.cache?.existingClaim;
          if (cache)
            assert.ok(
              pod.spec!.volumes?.some((pv) => pv.persistentVolumeClaim?.claimName === cache),
              `cache claim ${cache}`,
            );
        }
        const adapter = ["lora", "qlora"].includes(String((ftj.spec.config as Record<string, unknown>).adapter));
        if (adapter && ftj.spec.merge?.enabled !== false) {
          assert.equal(done.status?.stages?.merge?.phase, "Succeeded", "the adapter was merged");
          assert.ok(done.status?.outputs?.mergedModelPath, "status.outputs names the merged model");
        }
      });
    }
    for (const file of configs) {
      test(`kubectl finetune submit examples/configs/${file} ${submitFlags(file).join(" ")}`, async () => {
        const r = await cli(["submit", `examples/configs/${file}`, ...submitFlags(file), "-n", ns, "--dry-run=client", "-o", "yaml"]);
        assert.equal(r.code, 0, r.stdout + r.stderr);
        const ftj = parse(r.stdout) as FineTuneJobObject;
        assert.equal(ftj.kind, "FineTuneJob");
        await runToSucceeded(ftj);
      });
    }
  });
});
