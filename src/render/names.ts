/**
 * Deterministic names of every child object, in one place. Deterministic
 * names make creation idempotent: a reconcile that runs twice (or on another
 * replica, or with a stale cache) gets AlreadyExists instead of a duplicate.
 */
import type { Stage } from "../api/group.ts";

/** FineTuneJob names are capped so `<name>-train-<attempt>-<index>` pod hostnames fit in 63 characters. */
export const MAX_JOB_NAME_LENGTH = 45;

export const configMapName = (job: string) => `${job}-config`;
export const outputClaimName = (job: string) => `${job}-output`;
export const serviceName = (job: string) => `${job}-ranks`;
export const stageJobName = (job: string, stage: Stage, attempt: number) => `${job}-${stage}-${attempt}`;

/** Paths inside the trainer container. */
export const MOUNT_CONFIG = "/etc/finetune";
export const CONFIG_FILE = `${MOUNT_CONFIG}/config.yaml`;
export const LAUNCHER_FILE = `${MOUNT_CONFIG}/launcher.py`;
export const MOUNT_OUTPUT = "/finetune/output";
export const OUTPUT_DIR = `${MOUNT_OUTPUT}/model`;
export const PREPARED_DIR = `${MOUNT_OUTPUT}/prepared`;
export const MERGED_DIR = `${OUTPUT_DIR}/merged`;
export const MOUNT_CACHE = "/finetune/cache";
export const MASTER_PORT = 29500;
