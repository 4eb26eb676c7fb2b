/**
 * Kubeflow Trainer v2 (TrainJob) with JobSet as a system under test, for the side-by-side
 * benchmark (`npm run bench -- --compare kubeflow`).
 *
 * Both controllers are built from their Go modules (sut/kubeflow/build.sh, cached by version beside
 * the control plane's binaries) and run as local processes, each as its own ServiceAccount of the
 * release RBAC, with the release configuration except what differs outside a cluster (config.ts).
 * The objects their releases install come from the modules' kustomize trees (kustomize.ts):
 * Trainer's manifests/overlays/manager without the remote JobSet resource, JobSet's config/default
 * in the same namespace, and the torch-distributed runtime from manifests/overlays/runtimes.
 * Webhooks stay on: the API server calls the processes on 127.0.0.1 with a CA made for the run.
 * TrainJob → JobSet (same name) → one Job per replicatedJob → pods; the training Job is the `node` one.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync, createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { binDir } from "../../e2e/cluster/paths.ts";
import { generateServingPki } from "../../e2e/cluster/certs.ts";
import { freePorts } from "../../e2e/cluster/ports.ts";
import { stateDir } from "../../e2e/cluster/cluster.ts";
import { applyObjects, FATE_ANNOTATION, kwokToleration, RUN_SECONDS_ANNOTATION, waitFor, type KubeClients } from "../../e2e/lib/index.ts";
import { applyCrdObject, writeServiceAccountKubeconfig } from "../../e2e/lib/install.ts";
import {
  JOBSET_NAME_LABEL,
  JOBSET_SERVICE_ACCOUNT,
  jobsetConfig,
  NAMESPACE,
  REPLICATED_JOB_LABEL,
  RESTART_ATTEMPT_LABEL,
  selectInstallObjects,
  selectRuntime,
  TRAINER_REPLICATED_JOB,
  TRAINER_SERVICE_ACCOUNT,
  trainerConfig,
  trainJobManifest,
  trainJobTerminal,
  webhookToLocal,
  withoutConversionWebhook,
  type Ports,
} from "./kubeflow/config.ts";
import { kustomize, transform, type Obj } from "./kubeflow/kustomize.ts";
import type { JobShape, Owner, SutStartOptions, SystemUnderTest } from "./types.ts";

const run = promisify(execFile);
const BUILD_SCRIPT = fileURLToPath(new URL("./kubeflow/build.sh", import.meta.url));
const COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index";

export const TRAINER_MODULE = "github.com/kubeflow/trainer/v2";
export const TRAINER_VERSION = "v2.3.0";
/** The JobSet release Trainer v2.3.0 pins. */
export const JOBSET_MODULE = "sigs.k8s.io/jobset";
export const JOBSET_VERSION = "v0.12.0";

interface Component {
  name: "trainer" | "jobset";
  binary: string;
  serviceAccount: string;
  ports: Ports;
  kubeconfig?: string;
  configFile?: string;
  proc?: ChildProcess;
  /** Recent output, for leadership and for incident notes. */
  tail: string;
  log?: WriteStream;
}

/** The binaries, building them (once per version) when missing; returns the build's seconds when it ran (the caller reports it). */
export async function ensureKubeflowBinaries(log: (m: string) => void): Promise<number | undefined> {
  const trainer = join(binDir(), `kubeflow-trainer-${TRAINER_VERSION}`);
  const jobset = join(binDir(), `jobset-${JOBSET_VERSION}`);
  if (existsSync(trainer) && existsSync(jobset)) return undefined;
  log(`building Kubeflow Trainer ${TRAINER_VERSION} and JobSet ${JOBSET_VERSION} from their Go modules (first run only)`);
  const t0 = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("bash", [BUILD_SCRIPT, TRAINER_VERSION, JOBSET_VERSION], { stdio: ["ignore", "ignore", "pipe"] });
    let tail = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      tail = (tail + chunk).slice(-4000);
      for (const line of chunk.split("\n")) if (/^(building|built) /.test(line)) log(`  ${line}`);
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`kubeflow build.sh failed (exit ${code}):\n${tail}`))));
  });
  return (Date.now() - t0) / 1000;
}

/** Module directory (with manifests/ and config/) from the module cache, downloading it through the module proxy when missing. */
export async function moduleDir(module: string, version: string): Promise<string> {
  const { stdout } = await run("go", ["mod", "download", "-json", `${module}@${version}`], {
    env: { ...process.env, GOTOOLCHAIN: "local", GOFLAGS: "-mod=mod" },
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module}@${version}: ${info.Error ?? "no Dir"}`);
  return info.Dir;
}

export class KubeflowTrainer implements SystemUnderTest {
  readonly name = "kubeflow-trainer";
  readonly jobResource = { group: "trainer.kubeflow.org", version: "v1alpha1", plural: "trainjobs" };
  readonly trainingJobSelector = `${JOBSET_NAME_LABEL},${REPLICATED_JOB_LABEL}=${TRAINER_REPLICATED_JOB}`;
  readonly trainingPodSelector = `${JOBSET_NAME_LABEL},${REPLICATED_JOB_LABEL}=${TRAINER_REPLICATED_JOB}`;
  readonly userNames = [TRAINER_SERVICE_ACCOUNT, JOBSET_SERVICE_ACCOUNT].map((sa) => `system:serviceaccount:${NAMESPACE}:${sa}`);
  settings: Record<string, string | number | boolean> = {};
  /** Seconds the Go build took in this run (undefined when the binaries were cached). */
  buildSeconds: number | undefined;
  readonly #components: Component[] = [
    {
      name: "trainer",
      binary: join(binDir(), `kubeflow-trainer-${TRAINER_VERSION}`),
      serviceAccount: TRAINER_SERVICE_ACCOUNT,
      ports: { health: 0, metrics: 0, webhook: 0 },
      tail: "",
    },
    {
      name: "jobset",
      binary: join(binDir(), `jobset-${JOBSET_VERSION}`),
      serviceAccount: JOBSET_SERVICE_ACCOUNT,
      ports: { health: 0, metrics: 0, webhook: 0 },
      tail: "",
    },
  ];
  readonly #incidents: string[] = [];
  #exits = 0;
  #stopping = false;
  #admin: KubeClients | undefined;
  readonly #log: (m: string) => void;

  constructor(log: (m: string) => void = (m) => process.stderr.write(`[bench] ${m}\n`)) {
    this.#log = log;
  }

  get #dir(): string {
    return join(stateDir(), "kubeflow");
  }

  async install(admin: KubeClients): Promise<void> {
    this.#admin = admin;
    this.buildSeconds = await ensureKubeflowBinaries(this.#log);
    const [trainerDir, jobsetDir] = await Promise.all([moduleDir(TRAINER_MODULE, TRAINER_VERSION), moduleDir(JOBSET_MODULE, JOBSET_VERSION)]);
    const trainerTree = kustomize(join(trainerDir, "manifests", "overlays", "manager"));
    const jobsetTree = kustomize(join(jobsetDir, "config", "default"));
    const runtimes = kustomize(join(trainerDir, "manifests", "overlays", "runtimes"));
    // Trainer's release installs JobSet's release into its own namespace (its overlay's `namespace` over JobSet's).
    const jobsetObjects = transform(jobsetTree.objects, { namespace: NAMESPACE });
    const objects = selectInstallObjects(trainerTree.objects, jobsetObjects);

    mkdirSync(join(this.#dir, "logs"), { recursive: true });
    const certs = join(this.#dir, "certs");
    await generateServingPki(certs, ["IP:127.0.0.1", "DNS:localhost"]);
    const caBundle = readFileSync(join(certs, "ca.crt")).toString("base64");
    for (const c of this.#components) {
      const [health, metrics, webhook] = await freePorts(3);
      c.ports = { health: health!, metrics: metrics!, webhook: webhook! };
      // controller-runtime's webhook server reads <TMPDIR>/k8s-webhook-server/serving-certs/tls.{crt,key} by default (Trainer has no setting for it).
      const serving = join(this.#dir, c.name, "tmp", "k8s-webhook-server", "serving-certs");
      mkdirSync(serving, { recursive: true });
      writeFileSync(join(serving, "tls.crt"), readFileSync(join(certs, "serving.crt")));
      writeFileSync(join(serving, "tls.key"), readFileSync(join(certs, "serving.key")), { mode: 0o600 });
    }
    const [trainer, jobset] = this.#components as [Component, Component];
    const jobsetCrdNames = new Set(jobsetTree.objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata!.name!));
    const portFor = (o: Obj) =>
      jobsetObjects.some((j) => j.kind === o.kind && j.metadata?.name === o.metadata?.name) ? jobset.ports.webhook : trainer.ports.webhook;

    for (const o of objects.filter((o) => o.kind === "Namespace")) await applyObjects([o as KubernetesObject], { clients: admin });
    for (const crd of objects.filter((o) => o.kind === "CustomResourceDefinition")) {
      await applyCrdObject(admin, (jobsetCrdNames.has(crd.metadata!.name!) ? withoutConversionWebhook(crd) : crd) as KubernetesObject);
    }
    const rest = objects
      .filter((o) => o.kind !== "Namespace" && o.kind !== "CustomResourceDefinition")
      .map((o) => (o.kind?.endsWith("WebhookConfiguration") ? webhookToLocal(o, portFor(o), caBundle) : o));
    await applyObjects(rest as KubernetesObject[], { clients: admin, namespace: NAMESPACE });
    // The overlay labels runtimes webhook-validation=disabled, so this needs no running Trainer.
    await applyObjects([selectRuntime(runtimes.objects) as KubernetesObject], { clients: admin });

    for (const c of this.#components) {
      c.kubeconfig = join(this.#dir, `${c.name}.kubeconfig`);
      await writeServiceAccountKubeconfig(admin, c.kubeconfig, NAMESPACE, c.serviceAccount, 24 * 3600);
      c.configFile = join(this.#dir, `${c.name}-config.yaml`);
    }
    writeFileSync(trainer.configFile!, trainerConfig({ ports: trainer.ports, leaseNamespace: NAMESPACE }));
    writeFileSync(
      jobset.configFile!,
      jobsetConfig({ ports: jobset.ports, leaseNamespace: NAMESPACE, certDir: join(this.#dir, "jobset", "tmp", "k8s-webhook-server", "serving-certs") }),
    );
    const skipped = [...trainerTree.skipped, ...jobsetTree.skipped].length;
    this.#log(
      `kubeflow: installed ${objects.length} release objects and the torch-distributed runtime (${skipped} kustomize entries skipped: generators, Deployment patches, the remote JobSet resource)`,
    );
  }

  async start(_opts: SutStartOptions): Promise<void> {
    this.#stopping = false;
    this.#exits = 0;
    await Promise.all(this.#components.map((c) => this.#launch(c)));
    this.settings = { leaderElect: true, trainerQps: 50, trainerBurst: 100, trainJobConcurrency: 5, jobsetQps: 500, jobsetBurst: 500, watchNamespace: "(all)" };
  }

  async #launch(c: Component, readyTimeoutMs = 90_000): Promise<void> {
    c.tail = "";
    c.log ??= createWriteStream(join(this.#dir, "logs", `${c.name}.log`), { flags: "a" });
    const proc = spawn(c.binary, [`--config=${c.configFile}`, "--zap-log-level=2"], {
      env: { ...process.env, KUBECONFIG: c.kubeconfig!, TMPDIR: join(this.#dir, c.name, "tmp") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    c.proc = proc;
    const onData = (d: Buffer) => {
      c.log?.write(d);
      c.tail = (c.tail + d.toString()).slice(-20_000);
    };
    let leading = false;
    const onOutput = (d: Buffer) => {
      onData(d);
      // klog's line from client-go's leader election; the tail holds whole lines even when a chunk splits one.
      if (!leading && /successfully acquired lease/i.test(c.tail)) leading = true;
    };
    proc.stdout!.on("data", onOutput);
    proc.stderr!.on("data", onOutput);
    proc.once("exit", (code, signal) => {
      if (this.#stopping || c.proc !== proc) return;
      this.#exits++;
      this.#incident(`${new Date().toISOString()} ${c.name} exited (code ${code}, signal ${signal}); restarted. Last output: ${c.tail.slice(-600)}`);
      setTimeout(() => {
        if (!this.#stopping) this.#launch(c, 300_000).catch((e: unknown) => this.#incident(`restart of ${c.name} failed: ${String(e)}`));
      }, 1000);
    });
    await waitFor(
      `${c.name} ready and leading`,
      async (note) => {
        if (proc.exitCode !== null) throw new Error(`${c.name} exited with ${proc.exitCode}: ${c.tail.slice(-2000)}`);
        const ready = await fetch(`http://127.0.0.1:${c.ports.health}/readyz`).then(
          (r) => r.status,
          () => 0,
        );
        note({ ready, leading, tail: c.tail.slice(-500) });
        return ready === 200 && leading;
      },
      { timeoutMs: readyTimeoutMs },
    );
  }

  #incident(text: string): void {
    this.#incidents.push(text);
    this.#log(`${this.name}: ${text}`);
  }

  takeIncidents(): string[] {
    return this.#incidents.splice(0);
  }

  unexpectedExits(): number {
    return this.#exits;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#components.map(async (c) => {
        const proc = c.proc;
        c.proc = undefined;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    // Neither releases its Lease on exit; the next start would wait out the 15 s lease. A fresh start is what the scenarios measure.
    if (this.#admin) {
      const { items } = await this.#admin.coordination.listNamespacedLease({ namespace: NAMESPACE });
      for (const l of items) await this.#admin.coordination.deleteNamespacedLease({ namespace: NAMESPACE, name: l.metadata!.name! }).catch(() => undefined);
    }
  }

  pids(): number[] {
    return this.#components.map((c) => c.proc?.pid).filter((p): p is number => p !== undefined);
  }

  jobManifest(name: string, namespace: string, shape: JobShape): object {
    const podAnnotations: Record<string, string> = { [FATE_ANNOTATION]: shape.fate === "run" ? "run" : "succeed" };
    if (shape.runSeconds !== undefined) podAnnotations[RUN_SECONDS_ANNOTATION] = String(shape.runSeconds);
    return trainJobManifest(name, namespace, { nodes: shape.nodes, gpusPerNode: shape.gpusPerNode, podAnnotations, tolerations: [{ ...kwokToleration }] });
  }

  ownerOf(obj: KubernetesObject): Owner | undefined {
    const labels = obj.metadata?.labels ?? {};
    const job = labels[JOBSET_NAME_LABEL];
    const attempt = Number(labels[RESTART_ATTEMPT_LABEL] ?? NaN);
    return job && Number.isInteger(attempt) ? { job, attempt } : undefined;
  }

  /** Trainer writes no TrainJob status until it mirrors the JobSet's (near completion): not a reaction figure; the scenarios use the training Job. */
  acknowledged(job: KubernetesObject): boolean {
    return ((job as Obj).status?.conditions?.length ?? 0) > 0;
  }

  terminalPhase(job: KubernetesObject): "Succeeded" | "Failed" | undefined {
    return trainJobTerminal(job as Obj);
  }

  rankOf(pod: V1Pod): number | undefined {
    const v = pod.metadata?.annotations?.[COMPLETION_INDEX];
    return v === undefined ? undefined : Number(v);
  }
}
