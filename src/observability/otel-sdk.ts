/**
 * The OpenTelemetry SDK side of OTLP export. main.ts imports this module
 * dynamically, and only when an OTLP endpoint is configured (otel-config.ts),
 * so the default operator loads none of these packages.
 *
 * Traces: a TracerProvider with a parent-based ratio sampler and a
 * BatchSpanProcessor (bounded queue: spans beyond it are dropped, never
 * buffered without limit) feeding an OTLP/HTTP JSON exporter; registered
 * globally together with an AsyncLocalStorage context manager, so spans
 * started inside `traced()` (src/observability/tracing.ts) parent across awaits.
 * Metrics: a MeterProvider with a PeriodicExportingMetricReader and an
 * OTLP/HTTP JSON exporter; OperatorMetrics records into its Meter as well as
 * into the Prometheus registry that serves /metrics.
 *
 * A collector that is down or never answers costs a bounded queue, bounded
 * in-flight requests (each with a timeout) and a throttled warning; shutdown
 * waits at most `shutdownTimeoutMillis`.
 */
import { context, diag, DiagLogLevel, trace, type DiagLogger, type Meter } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from "@opentelemetry/sdk-trace";
import type { Logger } from "pino";
import { withTimeout, type OtlpConfig } from "./otel-config.ts";

export interface OtlpTelemetry {
  resource: Resource;
  /** The Meter whose measurements are pushed over OTLP (undefined when metrics are not exported). */
  meter?: Meter;
  /**
   * Flushes and stops the tracer and meter providers (the meter's last export included); resolves within the
   * timeout even if the collector never answers.
   */
  shutdown(): Promise<void>;
}

export function startOtlpTelemetry(config: OtlpConfig, logger: Logger): OtlpTelemetry {
  diag.setLogger(throttledDiagLogger(logger.child({ component: "opentelemetry" })), DiagLogLevel.WARN);
  const resource = defaultResource().merge(resourceFromAttributes({ "service.name": config.serviceName, ...config.resourceAttributes }));

  let provider: TracerProvider | undefined;
  if (config.traces) {
    const t = config.traces;
    provider = new TracerProvider({
      resource,
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(t.sampleRatio) }),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter({ url: t.url, headers: t.headers, timeoutMillis: t.timeoutMillis }),
          maxQueueSize: t.maxQueueSize,
          maxExportBatchSize: t.maxExportBatchSize,
          scheduledDelayMillis: t.scheduledDelayMillis,
          exportTimeoutMillis: t.exportTimeoutMillis,
        }),
      ],
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
  }

  let meterProvider: MeterProvider | undefined;
  if (config.metrics) {
    const m = config.metrics;
    meterProvider = new MeterProvider({
      resource,
      readers: [
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter({ url: m.url, headers: m.headers, timeoutMillis: m.timeoutMillis }),
          exportIntervalMillis: m.exportIntervalMillis,
          exportTimeoutMillis: m.exportTimeoutMillis,
        }),
      ],
    });
  }

  logger.info(
    { traces: config.traces?.url, metrics: config.metrics?.url, sampleRatio: config.traces?.sampleRatio, service: config.serviceName },
    "OTLP export enabled",
  );
  for (const w of config.warnings) logger.warn(w);

  return {
    resource,
    ...(meterProvider ? { meter: meterProvider.getMeter("finetune-operator") } : {}),
    async shutdown() {
      const stopping = [provider?.shutdown(), meterProvider?.shutdown()].filter((p) => p !== undefined);
      await withTimeout(Promise.all(stopping), config.shutdownTimeoutMillis);
    },
  };
}

/**
 * SDK diagnostics (failed exports, dropped spans) as pino warnings, at most one
 * per 30 s: a collector that stays down must not flood the operator's log.
 */
function throttledDiagLogger(log: Logger, intervalMs = 30_000): DiagLogger {
  let last = 0;
  let suppressed = 0;
  const emit =
    (level: "warn" | "error") =>
    (message: string, ...args: unknown[]) => {
      const now = Date.now();
      if (now - last < intervalMs) {
        suppressed++;
        return;
      }
      last = now;
      const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === "string" ? a : safeJson(a))).join(" ");
      log[level]({ ...(suppressed ? { suppressed } : {}), ...(detail ? { detail } : {}) }, readable(message));
      suppressed = 0;
    };
  const noop = () => {};
  return { error: emit("error"), warn: emit("warn"), info: noop, debug: noop, verbose: noop };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 500) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The SDK's global error handler passes errors as JSON strings: log their message, not the stack. */
function readable(message: string): string {
  if (!message.startsWith("{")) return message;
  try {
    const parsed = JSON.parse(message) as { message?: unknown };
    return typeof parsed.message === "string" ? `OpenTelemetry export failed: ${parsed.message}` : message;
  } catch {
    return message;
  }
}
