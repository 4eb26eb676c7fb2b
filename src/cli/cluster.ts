/** The cluster-facing commands of `kubectl finetune`, using the user's kubeconfig, context and namespace like kubectl. */
import { CoreV1Api, CustomObjectsApi, Log } from "@kubernetes/client-node";
import { PooledKubeConfig } from "../kube/pooled-config.ts";
import { Writable } from "node:stream";
import { stringifyAxolotlYaml } from "../axolotl/yaml.ts";
import { GROUP, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_STAGE, PLURAL, VERSION, type Stage } from "../api/group.ts";
import type { FineTuneJobObject } from "../api/schema.ts";
import { TRAINER_CONTAINER } from "../render/names.ts";
import { errorMessage, isNotFound } from "../kube/errors.ts";
import { hasErrors, validateFineTuneJob } from "../validation/job.ts";
import { CliError } from "./documents.ts";
import { describeStatus, progressLine } from "./format.ts";
import { formatIssue } from "./validate.ts";

export interface ClusterOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export class ClusterClient {
  readonly kc = new PooledKubeConfig();
  readonly namespace: string;
  readonly custom: CustomObjectsApi;
  readonly core: CoreV1Api;

  constructor(opts: ClusterOptions) {
    if (opts.kubeconfig) this.kc.loadFromFile(opts.kubeconfig);
    else this.kc.loadFromDefault();
    if (opts.context) this.kc.setCurrentContext(opts.context);
    const ctx = this.kc.getContextObject(this.kc.getCurrentContext());
    this.namespace = opts.namespace ?? ctx?.namespace ?? "default";
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    this.core = this.kc.makeApiClient(CoreV1Api);
  }

  async get(name: string): Promise<FineTuneJobObject> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: PLURAL,
        name,
      })) as FineTuneJobObject;
    } catch (err) {
      if (isNotFound(err)) throw new CliError(`FineTuneJob ${name} not found in namespace ${this.namespace}`, 1);
      throw err;
    }
  }
}

export async function submit(
  client: ClusterClient | undefined,
  manifest: Record<string, unknown>,
  opts: { dryRun: boolean; output?: string },
  out: (s: string) => void,
): Promise<number> {
  const { issues } = validateFineTuneJob(manifest);
  for (const issue of issues) out(formatIssue(issue));
  if (hasErrors(issues)) {
    out("not submitted: fix the errors above");
    return 1;
  }
  if (opts.dryRun) {
    // kubectl reads YAML with YAML 1.1 booleans too: a config string "yes" must stay quoted (src/axolotl/yaml.ts).
    out(opts.output === "json" ? JSON.stringify(manifest, null, 2) : stringifyAxolotlYaml(manifest));
    return 0;
  }
  if (!client) throw new CliError("no cluster client", 1);
  const meta = manifest.metadata as { name: string; namespace?: string };
  meta.namespace ??= client.namespace;
  await client.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: meta.namespace, plural: PLURAL, body: manifest });
  out(`finetunejob.${GROUP}/${meta.name} created in namespace ${meta.namespace}`);
  out(`watch it: kubectl finetune watch ${meta.name} -n ${meta.namespace}`);
  return 0;
}

export async function status(client: ClusterClient, name: string, out: (s: string) => void): Promise<number> {
  out(describeStatus(await client.get(name)));
  return 0;
}

export async function list(client: ClusterClient, out: (s: string) => void): Promise<number> {
  const res = (await client.custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: client.namespace, plural: PLURAL })) as {
    items: FineTuneJobObject[];
  };
  if (res.items.length === 0) {
    out(`No FineTuneJobs in namespace ${client.namespace}.`);
    return 0;
  }
  const rows = [["NAME", "PHASE", "NODES", "GPUS/NODE", "PROGRESS", "LOSS", "RESTARTS"]];
  for (const j of res.items) {
    const s = j.status ?? {};
    rows.push([
      j.metadata.name ?? "",
      s.phase ?? "Pending",
      String(j.spec.nodes ?? 1),
      String(j.spec.gpusPerNode ?? 1),
      s.progress?.summary ?? "",
      s.progress?.loss?.toFixed(4) ?? "",
      String(s.restarts ?? 0),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    out(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("   ")
        .trimEnd(),
    );
  return 0;
}

export async function remove(client: ClusterClient, name: string, out: (s: string) => void): Promise<number> {
  try {
    await client.custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: client.namespace,
      plural: PLURAL,
      name,
      propagationPolicy: "Background",
    });
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`FineTuneJob ${name} not found in namespace ${client.namespace}`, 1);
    throw err;
  }
  out(`finetunejob.${GROUP}/${name} deleted (output data kept unless spec.storage.output.deletionPolicy is Delete)`);
  return 0;
}

/** Follows a job until it ends: a progress line and every stage transition. Exit 0 only on Succeeded. */
export async function watch(
  client: ClusterClient,
  name: string,
  opts: { intervalMs: number; tty: boolean; timeoutMs?: number },
  out: (s: string) => void,
  write: (s: string) => void,
): Promise<number> {
  let lastPhase: string | undefined;
  let lastLine = "";
  const deadline = opts.timeoutMs ? Date.now() + opts.timeoutMs : Infinity;
  for (;;) {
    const job = await client.get(name);
    const st = job.status ?? {};
    const phase = st.phase ?? "Pending";
    if (phase !== lastPhase) {
      if (opts.tty && lastLine) write("\n");
      out(`[${new Date().toISOString().slice(11, 19)}] ${name}: ${phase}${st.message ? ` - ${st.message}` : ""}`);
      lastPhase = phase;
      lastLine = "";
    }
    const line = progressLine(job);
    if (line && line !== lastLine) {
      if (opts.tty) write(`\r\x1b[2K${line}`);
      else out(line);
      lastLine = line;
    }
    if (phase === "Succeeded" || phase === "Failed") {
      if (opts.tty && lastLine) write("\n");
      out(describeStatus(job));
      return phase === "Succeeded" ? 0 : 1;
    }
    if (Date.now() > deadline) throw new CliError(`timed out waiting for ${name} (phase ${phase})`, 1);
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
}

export async function logs(
  client: ClusterClient,
  name: string,
  opts: { stage?: Stage; rank: number; follow: boolean; attempt?: number },
  stdout: NodeJS.WritableStream,
): Promise<number> {
  const job = await client.get(name);
  const stage: Stage =
    opts.stage ??
    (job.status?.phase === "Preprocessing"
      ? "preprocess"
      : job.status?.phase === "SmokeTesting"
        ? "smoke"
        : job.status?.phase === "Merging"
          ? "merge"
          : "train");
  const attempt = opts.attempt ?? job.status?.stages?.[stage]?.attempt;
  const selector = [`${LABEL_JOB_NAME}=${name}`, `${LABEL_STAGE}=${stage}`, ...(attempt !== undefined ? [`${LABEL_ATTEMPT}=${attempt}`] : [])].join(",");
  const pods = (await client.core.listNamespacedPod({ namespace: client.namespace, labelSelector: selector })).items;
  const rank = String(opts.rank);
  const pod =
    pods.find((p) => (p.metadata?.annotations?.["batch.kubernetes.io/job-completion-index"] ?? "0") === rank) ?? (stage !== "train" ? pods[0] : undefined);
  if (!pod?.metadata?.name)
    throw new CliError(
      `no ${stage} pod${stage === "train" ? ` for rank ${rank}` : ""} of ${name}${attempt !== undefined ? ` (attempt ${attempt})` : ""} found`,
      1,
    );
  if (!opts.follow) {
    const text = await client.core.readNamespacedPodLog({ namespace: client.namespace, name: pod.metadata.name, container: TRAINER_CONTAINER });
    stdout.write(typeof text === "string" ? text : String(text));
    return 0;
  }
  const log = new Log(client.kc);
  await new Promise<void>((resolve, reject) => {
    const sink = new Writable({
      write: (chunk, _enc, cb) => {
        stdout.write(chunk);
        cb();
      },
    });
    sink.on("finish", resolve);
    log.log(client.namespace, pod.metadata!.name!, TRAINER_CONTAINER, sink, { follow: true }).catch(reject);
  });
  return 0;
}

export { errorMessage };
