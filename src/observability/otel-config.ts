/**
 * Which OTLP export (if any) the operator runs, from flags and the standard
 * OpenTelemetry environment variables. Pure: no SDK is imported here, so the
 * default path (no endpoint) loads nothing beyond @opentelemetry/api.
 *
 * Endpoints (OTLP/HTTP with JSON bodies):
 *   --otlp-endpoint / FINETUNE_OTLP_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT: base URL; /v1/traces and /v1/metrics are appended
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: full per-signal URLs (used as given)
 * No endpoint for a signal, OTEL_SDK_DISABLED=true, or OTEL_{TRACES,METRICS}_EXPORTER=none: that signal is not exported.
 */

export interface OtlpFlags {
  /** --otlp-endpoint: base URL of an OTLP/HTTP collector (wins over OTEL_EXPORTER_OTLP_ENDPOINT). */
  otlpEndpoint?: string;
  /** --otlp-export-metrics: also push metrics over OTLP (Prometheus /metrics is always served). */
  otlpExportMetrics: boolean;
  /** --trace-sample-ratio: share of root traces kept (0..1); children follow their parent's decision. */
  traceSampleRatio: number;
}

export interface OtlpSignalConfig {
  url: string;
  headers: Record<string, string>;
  /** Per-request timeout of the exporter (OTEL_EXPORTER_OTLP[_<SIGNAL>]_TIMEOUT). */
  timeoutMillis: number;
}

export interface OtlpConfig {
  serviceName: string;
  /** Resource attributes besides service.name (service.version, k8s.pod.name, k8s.namespace.name). */
  resourceAttributes: Record<string, string>;
  traces?: OtlpSignalConfig & {
    sampleRatio: number;
    /** BatchSpanProcessor: bounded queue (spans beyond it are dropped), batch size, delay, export timeout. */
    maxQueueSize: number;
    maxExportBatchSize: number;
    scheduledDelayMillis: number;
    exportTimeoutMillis: number;
  };
  metrics?: OtlpSignalConfig & {
    /** PeriodicExportingMetricReader interval and timeout (OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT). */
    exportIntervalMillis: number;
    exportTimeoutMillis: number;
  };
  /** Upper bound on the flush at shutdown: a collector that is down must not hold up SIGTERM. */
  shutdownTimeoutMillis: number;
  /** Settings that were ignored (unsupported protocol, malformed value); main.ts logs them. */
  warnings: string[];
}

export const OTLP_DEFAULTS = {
  serviceName: "finetune-operator",
  timeoutMillis: 5_000,
  maxQueueSize: 2_048,
  maxExportBatchSize: 512,
  scheduledDelayMillis: 5_000,
  exportTimeoutMillis: 5_000,
  metricExportIntervalMillis: 60_000,
  metricExportTimeoutMillis: 5_000,
  shutdownTimeoutMillis: 3_000,
} as const;

/** OTEL_EXPORTER_OTLP_HEADERS syntax: `k1=v1,k2=v2`, values percent-encoded (W3C baggage style). */
export function parseOtlpHeaders(raw: string | undefined, warnings: string[] = []): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!raw) return headers;
  for (const part of raw.split(",")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    if (eq <= 0) {
      warnings.push(`ignoring malformed OTLP header entry ${JSON.stringify(part.split("=")[0])} (expected key=value)`);
      continue;
    }
    const key = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep the raw value
    }
    headers[key] = value;
  }
  return headers;
}

/** `base` + `/v1/<signal>`, without doubling the slash. */
function signalUrl(base: string, path: string): string {
  return base.endsWith("/") ? `${base}${path}` : `${base}/${path}`;
}

function validUrl(raw: string, what: string, warnings: string[]): string | undefined {
  try {
    const u = new URL(raw);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
    return raw;
  } catch {
    warnings.push(`ignoring ${what}=${JSON.stringify(raw)}: not an http(s) URL`);
    return undefined;
  }
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number, warnings: string[]): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    warnings.push(`ignoring ${name}=${JSON.stringify(raw)}: expected a positive number`);
    return fallback;
  }
  return Math.floor(n);
}

/**
 * The OTLP export to run, or undefined when nothing is exported (the default):
 * then no SDK is loaded, tracing stays a no-op and metrics are Prometheus only.
 */
export function resolveOtlpConfig(flags: OtlpFlags, env: NodeJS.ProcessEnv, info: { serviceVersion?: string } = {}): OtlpConfig | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const warnings: string[] = [];
  const base = flags.otlpEndpoint?.trim()
    ? validUrl(flags.otlpEndpoint.trim(), "--otlp-endpoint", warnings)
    : env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
      ? validUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT.trim(), "OTEL_EXPORTER_OTLP_ENDPOINT", warnings)
      : undefined;
  const specific = (name: string) => (env[name]?.trim() ? validUrl(env[name].trim(), name, warnings) : undefined);
  const tracesOff = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === "none";
  const metricsOff = !flags.otlpExportMetrics || env.OTEL_METRICS_EXPORTER?.trim().toLowerCase() === "none";
  const tracesUrl = tracesOff ? undefined : (specific("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? (base ? signalUrl(base, "v1/traces") : undefined));
  const metricsUrl = metricsOff ? undefined : (specific("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") ?? (base ? signalUrl(base, "v1/metrics") : undefined));
  if (!tracesUrl && !metricsUrl) return undefined;

  for (const name of ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"]) {
    const p = env[name]?.trim();
    if (p && p !== "http/json") warnings.push(`${name}=${p} is not supported; exporting OTLP over http/json`);
  }
  const commonHeaders = parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS, warnings);
  const commonTimeout = positiveInt(env, "OTEL_EXPORTER_OTLP_TIMEOUT", OTLP_DEFAULTS.timeoutMillis, warnings);
  const signal = (url: string, name: "TRACES" | "METRICS"): OtlpSignalConfig => ({
    url,
    headers: { ...commonHeaders, ...parseOtlpHeaders(env[`OTEL_EXPORTER_OTLP_${name}_HEADERS`], warnings) },
    timeoutMillis: positiveInt(env, `OTEL_EXPORTER_OTLP_${name}_TIMEOUT`, commonTimeout, warnings),
  });

  let sampleRatio = flags.traceSampleRatio;
  if (!Number.isFinite(sampleRatio) || sampleRatio < 0 || sampleRatio > 1) {
    warnings.push(`--trace-sample-ratio must be within 0..1, got ${sampleRatio}; using 1`);
    sampleRatio = 1;
  }
  const maxQueueSize = positiveInt(env, "OTEL_BSP_MAX_QUEUE_SIZE", OTLP_DEFAULTS.maxQueueSize, warnings);
  const resourceAttributes: Record<string, string> = {};
  if (info.serviceVersion) resourceAttributes["service.version"] = info.serviceVersion;
  if (env.POD_NAME?.trim()) resourceAttributes["k8s.pod.name"] = env.POD_NAME.trim();
  if (env.POD_NAMESPACE?.trim()) resourceAttributes["k8s.namespace.name"] = env.POD_NAMESPACE.trim();

  return {
    serviceName: env.OTEL_SERVICE_NAME?.trim() || OTLP_DEFAULTS.serviceName,
    resourceAttributes,
    ...(tracesUrl
      ? {
          traces: {
            ...signal(tracesUrl, "TRACES"),
            sampleRatio,
            maxQueueSize,
            maxExportBatchSize: Math.min(maxQueueSize, positiveInt(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", OTLP_DEFAULTS.maxExportBatchSize, warnings)),
            scheduledDelayMillis: positiveInt(env, "OTEL_BSP_SCHEDULE_DELAY", OTLP_DEFAULTS.scheduledDelayMillis, warnings),
            exportTimeoutMillis: positiveInt(env, "OTEL_BSP_EXPORT_TIMEOUT", OTLP_DEFAULTS.exportTimeoutMillis, warnings),
          },
        }
      : {}),
    ...(metricsUrl
      ? {
          metrics: {
            ...signal(metricsUrl, "METRICS"),
            ...metricTiming(env, warnings),
          },
        }
      : {}),
    shutdownTimeoutMillis: OTLP_DEFAULTS.shutdownTimeoutMillis,
    warnings,
  };
}

/** The SDK rejects an export timeout longer than the interval: clamp it. */
function metricTiming(env: NodeJS.ProcessEnv, warnings: string[]): { exportIntervalMillis: number; exportTimeoutMillis: number } {
  const exportIntervalMillis = positiveInt(env, "OTEL_METRIC_EXPORT_INTERVAL", OTLP_DEFAULTS.metricExportIntervalMillis, warnings);
  const exportTimeoutMillis = Math.min(exportIntervalMillis, positiveInt(env, "OTEL_METRIC_EXPORT_TIMEOUT", OTLP_DEFAULTS.metricExportTimeoutMillis, warnings));
  return { exportIntervalMillis, exportTimeoutMillis };
}

/** Resolves when `p` settles or after `ms`, whichever is first; never rejects. */
export async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
