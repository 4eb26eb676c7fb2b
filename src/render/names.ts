/**
 * Deterministic names of every child object, in one place. Deterministic
 * names make creation idempotent: a reconcile that runs twice (or on another
 * replica, or with a stale cache) gets AlreadyExists instead of a duplicate.
 */
import { createHash } from "node:crypto";
import type { Stage } from "../api/group.ts";

/** FineTuneJob names are capped so `<name>-train-<attempt>-<index>` pod hostnames fit in 63 characters. */
export const MAX_JOB_NAME_LENGTH = 45;

export const configMapName = (job: string) => `${job}-config`;
export const outputClaimName = (job: string) => `${job}-output`;
export const serviceName = (job: string) => `${job}-ranks`;
/** The smoke test's answers in full (see render/smoke-answers.ts). */
export const smokeAnswersConfigMapName = (job: string) => `${job}-smoke-answers`;
export const stageJobName = (job: string, stage: Stage, attempt: number) => `${job}-${stage}-${attempt}`;

/**
 * The trainer launcher's files by name (src/trainer/launcher/*.py): each one a key of the launcher ConfigMap, so all
 * of them sit in one mounted folder, beside the entry (LAUNCHER_ENTRY) that imports them.
 */
export type LauncherSource = Readonly<Record<string, string>>;

let lastLauncher: { source: LauncherSource; name: string } | undefined;
/**
 * The namespace's shared, immutable launcher ConfigMap, named by the launcher's content: every job of a namespace
 * mounts the same one, and an operator upgrade with a new launcher creates a new one (running pods keep theirs).
 * The hash covers every file, its name included, so a change to any module (or a renamed one) is a new object.
 */
export function launcherConfigMapName(source: LauncherSource): string {
  if (lastLauncher?.source !== source) {
    // JSON of the sorted [name, content] pairs: unambiguous, and independent of the order the files were read in.
    const files = Object.keys(source)
      .sort()
      .map((name) => [name, source[name]]);
    lastLauncher = { source, name: `finetune-launcher-${createHash("sha256").update(JSON.stringify(files)).digest("hex").slice(0, 10)}` };
  }
  return lastLauncher.name;
}

/** Name of the one container of every stage pod (the log poller, failure reading and `kubectl finetune logs` read it). */
export const TRAINER_CONTAINER = "trainer";

/** Paths inside the trainer container. */
export const MOUNT_CONFIG = "/etc/finetune";
export const CONFIG_FILE = `${MOUNT_CONFIG}/config.yaml`;
export const MOUNT_LAUNCHER = "/etc/finetune-launcher";
/** The launcher's entry point, run by every stage's command; its sibling modules are in the same folder. */
export const LAUNCHER_ENTRY = "launcher.py";
export const LAUNCHER_FILE = `${MOUNT_LAUNCHER}/${LAUNCHER_ENTRY}`;
export const MOUNT_OUTPUT = "/finetune/output";
export const OUTPUT_DIR = `${MOUNT_OUTPUT}/model`;
export const PREPARED_DIR = `${MOUNT_OUTPUT}/prepared`;
export const MERGED_DIR = `${OUTPUT_DIR}/merged`;
/** The smoke test's answers in full (beside the model, not in it: merge-lora and uploads take the model dir whole). */
export const SMOKE_ANSWERS_FILE = `${MOUNT_OUTPUT}/smoke-test/answers.json`;
export const MOUNT_CACHE = "/finetune/cache";
export const MASTER_PORT = 29500;

/**
 * The progress contract between trainer pods and the operator's progress endpoint (src/progress/): the projected
 * service-account token's path in the pod, and the audience the endpoint demands of it (one per job, so a token
 * of one job cannot report progress for another).
 */
export const PROGRESS_TOKEN_PATH = "/var/run/secrets/finetune.dev/progress/token";
export const progressAudience = (job: { namespace: string; name: string }) => `finetune.dev/${job.namespace}/${job.name}`;
