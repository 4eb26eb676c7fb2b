/**
 * The operator's REST client against client-node's generated API, request for request: CPU time per request and
 * the process's RSS, each in a fresh child process, against the test cluster (e2e/cluster, FINETUNE_CLUSTER_DIR).
 * Each round creates, reads, merge-patches and deletes one ConfigMap and lists the namespace's ConfigMaps by label.
 *
 *   node bench/transport.ts [--requests 2000] [--pairs 3]
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SELF = fileURLToPath(import.meta.url);
const ROUNDS_PER_REQUEST = 5;

interface Sample {
  transport: string;
  requests: number;
  cpuMsPerRequest: number;
  rssMiB: number;
  heapMiB: number;
}

async function child(transport: "lean" | "client-node", requests: number, kubeconfig: string, namespace: string): Promise<Sample> {
  const rounds = Math.ceil(requests / ROUNDS_PER_REQUEST);
  const cm = (i: number) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `transport-bench-${i}`, namespace, labels: { bench: "transport" } },
    data: { a: "x".repeat(200) },
  });
  let op: (i: number) => Promise<void>;
  if (transport === "lean") {
    const { KubeClient } = await import("../src/kube/client.ts");
    const c = await KubeClient.fromEnvironment({ ...process.env, KUBECONFIG: kubeconfig });
    const base = `/api/v1/namespaces/${namespace}/configmaps`;
    op = async (i) => {
      await c.request("POST", base, { body: cm(i) });
      await c.get(`${base}/transport-bench-${i}`);
      await c.request("PATCH", `${base}/transport-bench-${i}`, { body: { data: { b: "y" } }, contentType: "application/merge-patch+json" });
      await c.get(base, { query: { labelSelector: "bench=transport" } });
      await c.request("DELETE", `${base}/transport-bench-${i}`);
    };
  } else {
    const { CoreV1Api, PatchStrategy, setHeaderOptions } = await import("@kubernetes/client-node");
    const { PooledKubeConfig } = await import("../src/kube/pooled-config.ts");
    const kc = new PooledKubeConfig();
    kc.loadFromFile(kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    op = async (i) => {
      await core.createNamespacedConfigMap({ namespace, body: cm(i) });
      await core.readNamespacedConfigMap({ namespace, name: `transport-bench-${i}` });
      await core.patchNamespacedConfigMap(
        { namespace, name: `transport-bench-${i}`, body: { data: { b: "y" } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await core.listNamespacedConfigMap({ namespace, labelSelector: "bench=transport" });
      await core.deleteNamespacedConfigMap({ namespace, name: `transport-bench-${i}` });
    };
  }
  for (let i = 0; i < 20; i++) await op(i); // warm up: connections, JIT
  const before = process.cpuUsage();
  for (let i = 0; i < rounds; i++) await op(i);
  const cpu = process.cpuUsage(before);
  globalThis.gc?.();
  const mem = process.memoryUsage();
  return {
    transport,
    requests: rounds * ROUNDS_PER_REQUEST,
    cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / (rounds * ROUNDS_PER_REQUEST),
    rssMiB: mem.rss / 2 ** 20,
    heapMiB: mem.heapUsed / 2 ** 20,
  };
}

if (process.argv[2] === "--child") {
  const [, , , transport, requests, kubeconfig, namespace] = process.argv;
  process.stdout.write(JSON.stringify(await child(transport as "lean" | "client-node", Number(requests), kubeconfig!, namespace!)));
  process.exit(0);
}

const { values } = parseArgs({ options: { requests: { type: "string", default: "2000" }, pairs: { type: "string", default: "3" } } });
const { kubeClients, freshNamespace } = await import("../e2e/lib/index.ts");
const k = await kubeClients();
const ns = await freshNamespace("transport-bench", { clients: k });
try {
  const samples: Sample[] = [];
  for (let p = 0; p < Number(values.pairs); p++) {
    for (const t of ["client-node", "lean"] as const) {
      const out = execFileSync(process.execPath, ["--expose-gc", "--no-warnings", SELF, "--child", t, values.requests!, k.kubeconfigPath ?? "", ns.name], {
        encoding: "utf8",
      });
      const s = JSON.parse(out) as Sample;
      samples.push(s);
      process.stderr.write(
        `[transport] ${t}: ${s.cpuMsPerRequest.toFixed(3)} ms CPU/request, RSS ${s.rssMiB.toFixed(1)} MiB, heap ${s.heapMiB.toFixed(1)} MiB\n`,
      );
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(`\n| transport | requests per run | CPU ms / request (median) | RSS MiB after GC (median) |\n|---|---|---|---|\n`);
  for (const t of ["client-node", "lean"]) {
    const mine = samples.filter((s) => s.transport === t);
    process.stdout.write(
      `| ${t} | ${mine[0]!.requests} | ${median(mine.map((s) => s.cpuMsPerRequest)).toFixed(3)} | ${median(mine.map((s) => s.rssMiB)).toFixed(1)} |\n`,
    );
  }
} finally {
  await ns.cleanup();
}
