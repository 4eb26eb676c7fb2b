/** Operator settings from flags (--name=value) and FINETUNE_* environment variables; flags win. */
import { parseArgs } from "node:util";

export interface OperatorOptions {
  namespace?: string;
  bindAddress: string;
  port: number;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity?: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  concurrency: number;
  resyncIntervalMs: number;
  restartBackoffBaseMs: number;
  imagePullGraceMs: number;
  drainTimeoutMs: number;
  perJobSeriesLimit: number;
  progressUrl?: string;
  /** Port of the progress endpoint; disabled when unset. */
  progressPort?: number;
  progressWriteIntervalMs: number;
  /** Progress status writes per second at most, over all jobs (per replica). */
  progressMaxWritesPerSecond: number;
  progressTls?: { certFile: string; keyFile: string };
  /** PEM file with the CA that signed the progress endpoint's certificate, shipped to trainers. */
  progressCaFile?: string;
  /**
   * How often the leader reads rank 0's log tail for training jobs without
   * fresh pushed progress (the fallback when trainers cannot reach the
   * progress endpoint); 0 turns the fallback off.
   */
  progressLogIntervalMs: number;
  logLevel: string;
  /** Base URL of an OTLP/HTTP collector; unset: OTEL_EXPORTER_OTLP_ENDPOINT applies (see observability/otel-config.ts). */
  otlpEndpoint?: string;
  /** With an OTLP endpoint, also push metrics over OTLP (Prometheus /metrics stays). */
  otlpExportMetrics: boolean;
  /** Share of root traces sampled, 0..1 (parent-based: children follow the parent). */
  traceSampleRatio: number;
}

const FLAGS = {
  namespace: { type: "string", env: "FINETUNE_WATCH_NAMESPACE" },
  "bind-address": { type: "string", env: "FINETUNE_BIND_ADDRESS", default: "0.0.0.0" },
  port: { type: "string", env: "FINETUNE_PORT", default: "8080" },
  "leader-elect": { type: "string", env: "FINETUNE_LEADER_ELECT", default: "true" },
  "lease-namespace": { type: "string", env: "FINETUNE_LEASE_NAMESPACE", default: "" },
  "lease-name": { type: "string", env: "FINETUNE_LEASE_NAME", default: "finetune-operator" },
  identity: { type: "string", env: "FINETUNE_IDENTITY" },
  "lease-duration-seconds": { type: "string", env: "FINETUNE_LEASE_DURATION_SECONDS", default: "15" },
  "renew-deadline-seconds": { type: "string", env: "FINETUNE_RENEW_DEADLINE_SECONDS", default: "10" },
  "retry-period-seconds": { type: "string", env: "FINETUNE_RETRY_PERIOD_SECONDS", default: "2" },
  concurrency: { type: "string", env: "FINETUNE_CONCURRENCY", default: "8" },
  "resync-seconds": { type: "string", env: "FINETUNE_RESYNC_SECONDS", default: "600" },
  "restart-backoff-seconds": { type: "string", env: "FINETUNE_RESTART_BACKOFF_SECONDS", default: "10" },
  "image-pull-grace-seconds": { type: "string", env: "FINETUNE_IMAGE_PULL_GRACE_SECONDS", default: "300" },
  "drain-timeout-seconds": { type: "string", env: "FINETUNE_DRAIN_TIMEOUT_SECONDS", default: "10" },
  "per-job-series-limit": { type: "string", env: "FINETUNE_PER_JOB_SERIES_LIMIT", default: "100" },
  "progress-url": { type: "string", env: "FINETUNE_PROGRESS_URL" },
  "progress-port": { type: "string", env: "FINETUNE_PROGRESS_PORT" },
  "progress-write-interval-seconds": { type: "string", env: "FINETUNE_PROGRESS_WRITE_INTERVAL_SECONDS", default: "30" },
  "progress-max-writes-per-second": { type: "string", env: "FINETUNE_PROGRESS_MAX_WRITES_PER_SECOND", default: "5" },
  "progress-tls-cert": { type: "string", env: "FINETUNE_PROGRESS_TLS_CERT" },
  "progress-tls-key": { type: "string", env: "FINETUNE_PROGRESS_TLS_KEY" },
  "progress-ca-file": { type: "string", env: "FINETUNE_PROGRESS_CA_FILE" },
  // Log-tail progress fallback: seconds between reads of rank 0's log (0: off; at least 1 otherwise).
  "progress-log-interval-seconds": { type: "string", env: "FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS", default: "60" },
  "log-level": { type: "string", env: "FINETUNE_LOG_LEVEL", default: "info" },
  "otlp-endpoint": { type: "string", env: "FINETUNE_OTLP_ENDPOINT" },
  "otlp-export-metrics": { type: "string", env: "FINETUNE_OTLP_EXPORT_METRICS", default: "true" },
  "trace-sample-ratio": { type: "string", env: "FINETUNE_TRACE_SAMPLE_RATIO", default: "1" },
} as const;

type FlagName = keyof typeof FLAGS;

export function parseOperatorOptions(argv: string[], env: NodeJS.ProcessEnv): OperatorOptions {
  const { values } = parseArgs({ args: argv, options: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: "string" as const }])), strict: true });
  const get = (name: FlagName): string | undefined => {
    const flag = FLAGS[name];
    return (values as Record<string, string | undefined>)[name] ?? env[flag.env] ?? ("default" in flag ? flag.default : undefined);
  };
  const num = (name: FlagName): number => {
    const raw = get(name);
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${raw}`);
    return n;
  };
  const namespace = get("namespace") || undefined;
  const logInterval = num("progress-log-interval-seconds");
  // Sub-second polling would put a pods/log GET per training job on the API server and kubelets several times a second.
  if (logInterval > 0 && logInterval < 1) throw new Error(`--progress-log-interval-seconds must be 0 (off) or at least 1, got ${logInterval}`);
  const leaseNamespace = get("lease-namespace") || env.POD_NAMESPACE || namespace || "default";
  return {
    ...(namespace ? { namespace } : {}),
    bindAddress: get("bind-address")!,
    port: num("port"),
    leaderElect: get("leader-elect") !== "false",
    leaseNamespace,
    leaseName: get("lease-name")!,
    ...(get("identity") ? { identity: get("identity")! } : {}),
    leaseDurationSeconds: num("lease-duration-seconds"),
    renewDeadlineSeconds: num("renew-deadline-seconds"),
    retryPeriodSeconds: num("retry-period-seconds"),
    concurrency: Math.max(1, num("concurrency")),
    resyncIntervalMs: num("resync-seconds") * 1000,
    restartBackoffBaseMs: num("restart-backoff-seconds") * 1000,
    imagePullGraceMs: num("image-pull-grace-seconds") * 1000,
    drainTimeoutMs: num("drain-timeout-seconds") * 1000,
    perJobSeriesLimit: num("per-job-series-limit"),
    ...(get("progress-url") ? { progressUrl: get("progress-url")! } : {}),
    ...(get("progress-port") !== undefined ? { progressPort: num("progress-port") } : {}),
    progressWriteIntervalMs: num("progress-write-interval-seconds") * 1000,
    progressMaxWritesPerSecond: Math.max(0.01, num("progress-max-writes-per-second")),
    ...(get("progress-tls-cert") && get("progress-tls-key") ? { progressTls: { certFile: get("progress-tls-cert")!, keyFile: get("progress-tls-key")! } } : {}),
    ...(get("progress-ca-file") ? { progressCaFile: get("progress-ca-file")! } : {}),
    progressLogIntervalMs: logInterval * 1000,
    logLevel: get("log-level")!,
    ...(get("otlp-endpoint") ? { otlpEndpoint: get("otlp-endpoint")! } : {}),
    otlpExportMetrics: get("otlp-export-metrics") !== "false",
    traceSampleRatio: sampleRatio(get("trace-sample-ratio")),
  };
}

function sampleRatio(raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || raw.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1)
    throw new Error(`--trace-sample-ratio must be a number within 0..1, got ${raw}`);
  return n;
}
