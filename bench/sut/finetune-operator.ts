/**
 * finetune-operator as a system under test: installed from the plain manifests
 * (manifests/finetune-operator.yaml, rendered from the Helm chart) minus the
 * Deployment and PDB, and run as a local process configured like the
 * Deployment's container, authenticated as the chart's ServiceAccount.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { KubernetesObject, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { GROUP, LABEL_ATTEMPT, LABEL_JOB_NAME, LABEL_MANAGED_BY, LABEL_STAGE, MANAGED_BY, PLURAL, VERSION } from "../../src/api/group.ts";
import type { FineTuneJobObject } from "../../src/api/schema.ts";
import { stateDir } from "../../e2e/cluster/cluster.ts";
import { applyObjects, FATE_ANNOTATION, RUN_SECONDS_ANNOTATION, STORAGE_CLASS, waitFor, type KubeClients } from "../../e2e/lib/index.ts";
import { ftjManifest } from "../../e2e/lib/ftj.ts";
import { applyCrdObject, deploymentEnv, deploymentNodeFlags, imageEnv, writeServiceAccountKubeconfig } from "../../e2e/lib/install.ts";
import { startOperator, type OperatorProcess } from "../../e2e/lib/operator.ts";
import { buildOperator } from "./build-operator.ts";
import type { JobShape, Owner, SutStartOptions, SystemUnderTest } from "./types.ts";

const MANIFESTS = fileURLToPath(new URL("../../manifests/finetune-operator.yaml", import.meta.url));
const DOCKERFILE = fileURLToPath(new URL("../../Dockerfile", import.meta.url));
const COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index";

/**
 * What each FineTuneJob runs. full: train, then merge on CPU, in a claim the operator creates (PVC, ConfigMap,
 * Service, train Job, merge Job). train-only: what a TrainJob does, for a like-for-like comparison: merge off,
 * the outputs in one existing claim made before the burst, no smoke test (ConfigMap, Service, train Job).
 */
export type Lifecycle = "full" | "train-only";
export const LIFECYCLES: readonly Lifecycle[] = ["full", "train-only"];
/** The claim train-only jobs share (each writes under its own subPath, the job's name). */
export const SHARED_OUTPUT_CLAIM = "bench-output";

export class FinetuneOperator implements SystemUnderTest {
  readonly name = "finetune-operator";
  readonly jobResource = { group: GROUP, version: VERSION, plural: PLURAL };
  readonly trainingJobSelector = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_STAGE}=train`;
  readonly trainingPodSelector = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_STAGE}=train`;
  settings: Record<string, string | number | boolean> = {};
  readonly #objects: KubernetesObject[];
  readonly #deployment: V1Deployment;
  #kubeconfig: string | undefined;
  #op: OperatorProcess | undefined;
  #stopping = false;
  #startOpts: SutStartOptions | undefined;
  readonly #incidents: string[] = [];
  #exits = 0;
  /** dist/main.js, built by install(). */
  #entry: string | undefined;
  readonly #lifecycle: Lifecycle;
  #admin: KubeClients | undefined;

  /** node's flags instead of the Deployment's args (--node-flags): to measure another heap.compilers setting. */
  readonly #nodeFlags: string[] | undefined;

  /** What node runs with: the Deployment's args before the program, unless --node-flags said otherwise. */
  get nodeFlags(): string[] {
    return this.#nodeFlags ?? deploymentNodeFlags(this.#deployment);
  }

  /** The image's ENV (the Dockerfile's runtime stage), which the process gets under the Deployment's env. */
  get imageEnv(): Record<string, string> {
    return imageEnv(readFileSync(DOCKERFILE, "utf8"));
  }

  constructor(lifecycle: Lifecycle = "full", nodeFlags?: string[]) {
    this.#lifecycle = lifecycle;
    this.#nodeFlags = nodeFlags;
    this.#objects = parseAllDocuments(readFileSync(MANIFESTS, "utf8"))
      .map((d) => d.toJS() as KubernetesObject | null)
      .filter((o): o is KubernetesObject => o !== null);
    this.#deployment = this.#objects.find((o) => o.kind === "Deployment") as V1Deployment;
  }

  get namespace(): string {
    return this.#deployment.metadata!.namespace!;
  }

  get serviceAccount(): string {
    return this.#deployment.spec!.template.spec!.serviceAccountName!;
  }

  get userName(): string {
    return `system:serviceaccount:${this.namespace}:${this.serviceAccount}`;
  }

  get userNames(): string[] {
    return [this.userName];
  }

  async install(admin: KubeClients): Promise<void> {
    this.#admin = admin;
    await applyCrdObject(
      admin,
      this.#objects.find((o) => o.kind === "CustomResourceDefinition")!,
    );
    const rest = this.#objects.filter((o) => !["CustomResourceDefinition", "Deployment", "PodDisruptionBudget"].includes(o.kind!));
    await applyObjects(rest, { clients: admin, namespace: this.namespace });
    this.#entry = buildOperator((m) => process.stderr.write(`[bench] ${this.name}: ${m}\n`));
    this.#kubeconfig = join(stateDir(), "bench-operator.kubeconfig");
    await writeServiceAccountKubeconfig(admin, this.#kubeconfig, this.namespace, this.serviceAccount, 24 * 3600);
  }

  /**
   * The container's environment: the image's ENV (NODE_ENV=production), then the Deployment's on top as the kubelet
   * does, with the downward API resolved for a made-up pod name.
   */
  #env(): Record<string, string> {
    return {
      ...this.imageEnv,
      ...deploymentEnv(this.#deployment, { name: `${this.#deployment.metadata!.name}-bench-0`, namespace: this.namespace }),
    };
  }

  async start(opts: SutStartOptions): Promise<void> {
    if (!this.#kubeconfig) throw new Error("install() first");
    this.#stopping = false;
    this.#exits = 0;
    this.#startOpts = opts;
    const env = this.#env();
    if (this.#lifecycle === "train-only") await this.#sharedClaim(opts.namespace);
    await this.#launch();
    this.settings = {
      lifecycle: this.#lifecycle,
      program: `${Object.entries(this.imageEnv)
        .map(([k, v]) => `${k}=${v} `)
        .join("")}node ${[...this.nodeFlags, "dist/main.js"].join(" ")} (compiled, as in the image)`,
      leaderElect: true,
      concurrency: Number(env.FINETUNE_CONCURRENCY ?? 8),
      resyncSeconds: opts.resyncSeconds ?? Number(env.FINETUNE_RESYNC_SECONDS ?? 600),
      restartBackoffSeconds: opts.restartBackoffSeconds ?? Number(env.FINETUNE_RESTART_BACKOFF_SECONDS ?? 10),
      watchNamespace: opts.namespace,
    };
  }

  /** The existing output claim of train-only jobs, made and Bound before the operator starts (it is not part of the measured work). */
  async #sharedClaim(namespace: string): Promise<void> {
    const core = this.#admin!.core;
    await core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: { name: SHARED_OUTPUT_CLAIM },
        spec: { accessModes: ["ReadWriteMany"], resources: { requests: { storage: "100Gi" } }, storageClassName: STORAGE_CLASS },
      },
    });
    await waitFor(
      `claim ${SHARED_OUTPUT_CLAIM} Bound`,
      async () => (await core.readNamespacedPersistentVolumeClaim({ namespace, name: SHARED_OUTPUT_CLAIM })).status?.phase === "Bound",
      { timeoutMs: 60_000 },
    );
  }

  /**
   * Starts one operator process and waits until it leads. When it exits on its own (e.g. it
   * lost the Lease), it is started again after 1 s, as the kubelet or the standby replica of
   * the Deployment would, and the exit is recorded as an incident with its last log lines.
   */
  async #launch(readyTimeoutMs = 60_000): Promise<void> {
    const opts = this.#startOpts!;
    const env = this.#env();
    // startOperator passes e2e defaults as flags (backoff 1 s, pull grace 5 s); put the Deployment's values back, then the scenario's hints.
    const extraArgs = [
      `--restart-backoff-seconds=${opts.restartBackoffSeconds ?? env.FINETUNE_RESTART_BACKOFF_SECONDS ?? 10}`,
      `--image-pull-grace-seconds=${env.FINETUNE_IMAGE_PULL_GRACE_SECONDS ?? 300}`,
      ...(opts.resyncSeconds !== undefined ? [`--resync-seconds=${opts.resyncSeconds}`] : []),
    ];
    const op = await startOperator({
      kubeconfig: this.#kubeconfig!,
      leaderElect: true,
      namespace: opts.namespace,
      env,
      extraArgs,
      entry: this.#entry!,
      nodeFlags: this.nodeFlags,
    });
    this.#op = op;
    let stderr = "";
    op.proc.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    op.proc.once("exit", (code, signal) => {
      if (this.#stopping || this.#op !== op) return;
      this.#exits++;
      const last = op.logs.slice(-6).map((l) => `${String(l.level ?? "")} ${String(l.msg ?? "")}${l.err ? ` ${JSON.stringify(l.err).slice(0, 200)}` : ""}`);
      this.#incident(
        `${new Date().toISOString()} operator exited (code ${code}, signal ${signal}); restarted. Last log lines: ${last.join(" | ")}${stderr ? ` | stderr: ${stderr.slice(-300)}` : ""}`,
      );
      setTimeout(() => {
        // A restart lists everything again and may wait out the old Lease: give it longer.
        if (!this.#stopping) this.#launch(300_000).catch((e: unknown) => this.#incident(`restart failed: ${String(e)}`));
      }, 1000);
    });
    await waitFor(
      "operator ready and leading",
      async (note) => {
        const ready = (await fetch(`http://127.0.0.1:${op.port}/readyz`)).status;
        const leading = op.logs.some((l) => l.msg === "became leader; reconciling");
        note({ ready, leading, lastLogs: op.logs.slice(-5) });
        return ready === 200 && leading;
      },
      { timeoutMs: 60_000 },
    );
  }

  #incident(text: string): void {
    this.#incidents.push(text);
    process.stderr.write(`[bench] ${this.name}: ${text}\n`);
  }

  takeIncidents(): string[] {
    return this.#incidents.splice(0);
  }

  unexpectedExits(): number {
    return this.#exits;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#op?.stop();
    this.#op = undefined;
  }

  pids(): number[] {
    const pid = this.#op?.proc.pid;
    return pid === undefined ? [] : [pid];
  }

  jobManifest(name: string, namespace: string, shape: JobShape): FineTuneJobObject {
    const podAnnotations: Record<string, string> = { [FATE_ANNOTATION]: shape.fate === "run" ? "run" : "succeed" };
    if (shape.runSeconds !== undefined) podAnnotations[RUN_SECONDS_ANNOTATION] = String(shape.runSeconds);
    // No preprocess (ftjManifest also turns the smoke test off). full: train then merge on CPU (what e2e/scale.test.ts measures).
    if (this.#lifecycle === "train-only") {
      return ftjManifest(name, namespace, {
        nodes: shape.nodes,
        gpusPerNode: shape.gpusPerNode,
        preprocess: { enabled: false },
        merge: { enabled: false },
        smokeTest: { enabled: false },
        storage: { output: { existingClaim: SHARED_OUTPUT_CLAIM } },
        podAnnotations,
      });
    }
    return ftjManifest(name, namespace, {
      nodes: shape.nodes,
      gpusPerNode: shape.gpusPerNode,
      preprocess: { enabled: false },
      merge: { onCPU: true },
      podAnnotations,
    });
  }

  ownerOf(obj: KubernetesObject): Owner | undefined {
    const labels = obj.metadata?.labels ?? {};
    const job = labels[LABEL_JOB_NAME];
    const attempt = Number(labels[LABEL_ATTEMPT] ?? NaN);
    return job && Number.isInteger(attempt) ? { job, attempt } : undefined;
  }

  acknowledged(job: KubernetesObject): boolean {
    return (job as unknown as FineTuneJobObject).status?.phase !== undefined;
  }

  terminalPhase(job: KubernetesObject): "Succeeded" | "Failed" | undefined {
    const phase = (job as unknown as FineTuneJobObject).status?.phase;
    return phase === "Succeeded" || phase === "Failed" ? phase : undefined;
  }

  claimOwner(claim: KubernetesObject): string | undefined {
    return claim.metadata?.labels?.[LABEL_JOB_NAME];
  }

  rankOf(pod: V1Pod): number | undefined {
    const v = pod.metadata?.annotations?.[COMPLETION_INDEX];
    return v === undefined ? undefined : Number(v);
  }
}
