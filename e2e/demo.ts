/**
 * `npm run demo`: the whole path on the SIMULATED cluster (kwok fake GPU
 * nodes; no GPU, no real training): build/start the local control plane,
 * install the CRD, run the operator, submit a 2-node LoRA fine-tune, and
 * follow it to Succeeded. With KUBECONFIG pointing at a real cluster where
 * the operator is installed, use `kubectl finetune submit` instead.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { FineTuneJobObject } from "../src/api/schema.ts";
import { ClusterClient, watch } from "../src/cli/cluster.ts";
import { kwokToleration } from "./cluster/manifests.ts";
import { ensureCluster } from "./cluster/cluster.ts";
import { createFtj, getFtj } from "./lib/ftj.ts";
import { kubeClients } from "./lib/kube.ts";
import { ensureCrd, startOperator } from "./lib/operator.ts";

const say = (s: string) => process.stdout.write(`${s}\n`);
say("finetune-operator demo: SIMULATED cluster (kwok fake nodes with 8 'GPUs' each; pods only pretend to train)\n");
const { kubeconfigPath } = await ensureCluster({ log: (m) => say(`  cluster: ${m}`) });
process.env.KUBECONFIG = kubeconfigPath;
await ensureCrd();
const k = await kubeClients();
const namespace = "finetune-demo";
await k.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {});
const op = await startOperator({ namespace });
say(`operator running (pid ${op.proc.pid}, metrics at http://127.0.0.1:${op.port}/metrics)`);

const example = parse(readFileSync(new URL("../examples/lora-2node-demo.yaml", import.meta.url), "utf8")) as FineTuneJobObject;
const name = `demo-${Date.now().toString(36)}`;
example.metadata = { name, namespace };
example.spec.scheduling = { ...(example.spec.scheduling ?? {}), tolerations: [{ ...kwokToleration }] };
await createFtj(k, example);
say(`submitted FineTuneJob ${namespace}/${name} (2 nodes x 8 GPUs, LoRA on Llama 3.1 8B); following it:\n`);
const client = new ClusterClient({ kubeconfig: kubeconfigPath, namespace });
const code = await watch(client, name, { intervalMs: 500, tty: false, timeoutMs: 120_000 }, say, (s) => process.stdout.write(s));
const final = await getFtj(k, namespace, name);
say(`\nevents:`);
const events = (await k.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items.sort((a, b) =>
  (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""),
);
for (const e of events) say(`  ${e.type?.padEnd(8)} ${e.reason?.padEnd(20)} ${e.message}`);
say(`\nresult: ${final.status?.phase}; try: KUBECONFIG=${kubeconfigPath} kubectl get ftj -n ${namespace}`);
say(`the control plane keeps running; stop it with: npm run cluster:down`);
await op.stop();
process.exit(code);
