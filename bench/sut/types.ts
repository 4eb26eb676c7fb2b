/**
 * The system under test: a controller that turns a job object into training
 * pods. Scenarios and measurements talk only to this interface, so the same
 * scenario can run against another controller (e.g. Kubeflow Trainer's
 * TrainJob) by adding one file next to finetune-operator.ts.
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import type { KubeClients } from "../../e2e/lib/index.ts";

/** What a scenario asks for; the SUT maps it onto its own job kind. */
export interface JobShape {
  /** Training pods (ranks) in the gang. */
  nodes: number;
  gpusPerNode: number;
  /** Simulated pod fate on kwok: "succeed" after `runSeconds`, or "run" until a test ends it. */
  fate: "succeed" | "run";
  runSeconds?: number;
}

export interface SutStartOptions {
  /** Namespace the controller should watch (the scenario's own). */
  namespace: string;
  /** Hints the SUT may ignore: base delay before restarting a failed gang, and its periodic resync. */
  restartBackoffSeconds?: number;
  resyncSeconds?: number;
}

/** Which user job, and which attempt of it, a child object belongs to. */
export interface Owner {
  job: string;
  attempt: number;
}

export interface SystemUnderTest {
  readonly name: string;
  /** The API users the controller's processes authenticate as; the audit log is filtered on them (counted together). */
  readonly userNames: readonly string[];
  /** The user job's API coordinates (custom resource). */
  readonly jobResource: { group: string; version: string; plural: string };
  /** Label selectors for the batch Jobs that run training ("training Job created") and for their pods. */
  readonly trainingJobSelector: string;
  readonly trainingPodSelector: string;
  /** Settings the last start() used, for the report. */
  readonly settings: Record<string, string | number | boolean>;

  /** CRDs, RBAC and credentials on a fresh cluster (admin clients). */
  install(admin: KubeClients): Promise<void>;
  /** Starts the controller process and resolves once it is ready to reconcile. */
  start(opts: SutStartOptions): Promise<void>;
  stop(): Promise<void>;
  /** Pids of the controller's processes (for /proc sampling, added up), while running; may change when one is restarted. */
  pids(): number[];
  /** Unexpected events since the last call (the controller exited and was restarted...), for the report's notes. */
  takeIncidents(): string[];
  /**
   * Times one of the controller's processes exited on its own since the last start(). Both
   * controllers exit when they lose their Lease, so under load this is the leader-loss count.
   */
  unexpectedExits(): number;

  /** The user job as plain JSON (sent through the custom objects API, nothing dropped). */
  jobManifest(name: string, namespace: string, shape: JobShape): object;
  /** Job or pod → its user job and attempt; undefined for objects that are not training children. */
  ownerOf(obj: KubernetesObject): Owner | undefined;
  /** True once the controller has visibly acted on the user job (e.g. written its first status). */
  acknowledged(job: KubernetesObject): boolean;
  /** "Succeeded" / "Failed" once the user job is terminal. */
  terminalPhase(job: KubernetesObject): "Succeeded" | "Failed" | undefined;
  /** Rank (node index) of a training pod. */
  rankOf(pod: V1Pod): number | undefined;
  /** The user job a PersistentVolumeClaim was made for (its output claim), if the controller makes claims. */
  claimOwner?(claim: KubernetesObject): string | undefined;
}
