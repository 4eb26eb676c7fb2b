import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseOperatorOptions } from "../options.ts";
import { OTLP_DEFAULTS, parseOtlpHeaders, resolveOtlpConfig, withTimeout } from "./otel-config.ts";

const flags = { otlpExportMetrics: true, traceSampleRatio: 1 };

describe("resolveOtlpConfig", () => {
  it("no endpoint anywhere: nothing is exported (no SDK)", () => {
    assert.equal(resolveOtlpConfig(flags, {}), undefined);
    assert.equal(resolveOtlpConfig(flags, { OTEL_SERVICE_NAME: "x", OTEL_EXPORTER_OTLP_HEADERS: "a=b" }), undefined);
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT: traces and metrics at /v1/<signal>, with defaults", () => {
    const c = resolveOtlpConfig(flags, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }, { serviceVersion: "0.1.0" })!;
    assert.equal(c.serviceName, "finetune-operator");
    assert.deepEqual(c.resourceAttributes, { "service.version": "0.1.0" });
    assert.equal(c.traces?.url, "http://collector:4318/v1/traces");
    assert.equal(c.metrics?.url, "http://collector:4318/v1/metrics");
    assert.equal(c.traces?.sampleRatio, 1);
    assert.equal(c.traces?.maxQueueSize, OTLP_DEFAULTS.maxQueueSize);
    assert.equal(c.traces?.timeoutMillis, OTLP_DEFAULTS.timeoutMillis);
    assert.equal(c.metrics?.exportIntervalMillis, OTLP_DEFAULTS.metricExportIntervalMillis);
    assert.deepEqual(c.warnings, []);
  });

  it("a trailing slash on the base endpoint is not doubled", () => {
    const c = resolveOtlpConfig(flags, { OTEL_EXPORTER_OTLP_ENDPOINT: "https://otel.example/prefix/" })!;
    assert.equal(c.traces?.url, "https://otel.example/prefix/v1/traces");
  });

  it("--otlp-endpoint wins over OTEL_EXPORTER_OTLP_ENDPOINT; per-signal endpoints are used as given", () => {
    const c = resolveOtlpConfig(
      { ...flags, otlpEndpoint: "http://flag:4318" },
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://env:4318",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http://metrics:9000/custom",
      },
    )!;
    assert.equal(c.traces?.url, "http://flag:4318/v1/traces");
    assert.equal(c.metrics?.url, "http://metrics:9000/custom");
  });

  it("only a traces endpoint: traces only", () => {
    const c = resolveOtlpConfig(flags, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/v1/traces" })!;
    assert.equal(c.traces?.url, "http://t:4318/v1/traces");
    assert.equal(c.metrics, undefined);
  });

  it("--otlp-export-metrics=false or OTEL_METRICS_EXPORTER=none: traces only; OTEL_TRACES_EXPORTER=none: metrics only", () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" };
    assert.equal(resolveOtlpConfig({ ...flags, otlpExportMetrics: false }, env)!.metrics, undefined);
    assert.equal(resolveOtlpConfig(flags, { ...env, OTEL_METRICS_EXPORTER: "none" })!.metrics, undefined);
    const m = resolveOtlpConfig(flags, { ...env, OTEL_TRACES_EXPORTER: "none" })!;
    assert.equal(m.traces, undefined);
    assert.ok(m.metrics);
    assert.equal(resolveOtlpConfig({ ...flags, otlpExportMetrics: false }, { ...env, OTEL_TRACES_EXPORTER: "none" }), undefined);
  });

  it("OTEL_SDK_DISABLED=true turns everything off", () => {
    assert.equal(resolveOtlpConfig({ ...flags, otlpEndpoint: "http://c:4318" }, { OTEL_SDK_DISABLED: "true" }), undefined);
  });

  it("service name, pod name and namespace become resource attributes", () => {
    const c = resolveOtlpConfig(flags, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_SERVICE_NAME: "ft-op",
      POD_NAME: "op-0",
      POD_NAMESPACE: "finetune-system",
    })!;
    assert.equal(c.serviceName, "ft-op");
    assert.deepEqual(c.resourceAttributes, { "k8s.pod.name": "op-0", "k8s.namespace.name": "finetune-system" });
  });

  it("headers: common and per-signal (per-signal wins), percent-decoded", () => {
    const c = resolveOtlpConfig(flags, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc, x-tenant=a",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-tenant=b",
    })!;
    assert.deepEqual(c.traces?.headers, { authorization: "Bearer abc", "x-tenant": "b" });
    assert.deepEqual(c.metrics?.headers, { authorization: "Bearer abc", "x-tenant": "a" });
  });

  it("BSP, timeout and metric interval env vars; metric export timeout clamped to the interval", () => {
    const c = resolveOtlpConfig(flags, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_BSP_MAX_QUEUE_SIZE: "100",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "512",
      OTEL_BSP_EXPORT_TIMEOUT: "1000",
      OTEL_EXPORTER_OTLP_TIMEOUT: "1500",
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "700",
      OTEL_METRIC_EXPORT_INTERVAL: "500",
    })!;
    assert.equal(c.traces?.scheduledDelayMillis, 200);
    assert.equal(c.traces?.maxQueueSize, 100);
    assert.equal(c.traces?.maxExportBatchSize, 100, "batch size at most the queue size");
    assert.equal(c.traces?.exportTimeoutMillis, 1000);
    assert.equal(c.traces?.timeoutMillis, 1500);
    assert.equal(c.metrics?.timeoutMillis, 700);
    assert.equal(c.metrics?.exportIntervalMillis, 500);
    assert.equal(c.metrics?.exportTimeoutMillis, 500);
  });

  it("malformed values are ignored with a warning, not fatal", () => {
    const c = resolveOtlpConfig(flags, {
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
      OTEL_BSP_SCHEDULE_DELAY: "soon",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_HEADERS: "novalue",
    })!;
    assert.equal(c.traces?.scheduledDelayMillis, OTLP_DEFAULTS.scheduledDelayMillis);
    assert.equal(c.warnings.length, 3, c.warnings.join("; "));
    assert.match(c.warnings.join("; "), /grpc is not supported/);
  });

  it("an endpoint that is not an http(s) URL is ignored with a warning (nothing to export)", () => {
    assert.equal(resolveOtlpConfig(flags, { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" }), undefined);
  });

  it("the sample ratio comes from the flags", () => {
    const c = resolveOtlpConfig({ ...flags, traceSampleRatio: 0.25 }, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" })!;
    assert.equal(c.traces?.sampleRatio, 0.25);
  });
});

describe("operator flags for OTLP", () => {
  it("defaults: no endpoint, metrics export on, sample ratio 1", () => {
    const o = parseOperatorOptions([], {});
    assert.equal(o.otlpEndpoint, undefined);
    assert.equal(o.otlpExportMetrics, true);
    assert.equal(o.traceSampleRatio, 1);
    assert.equal(resolveOtlpConfig(o, {}), undefined);
  });

  it("flags and FINETUNE_* env vars", () => {
    const o = parseOperatorOptions(["--otlp-endpoint=http://c:4318", "--otlp-export-metrics=false", "--trace-sample-ratio=0.1"], {});
    assert.equal(o.otlpEndpoint, "http://c:4318");
    assert.equal(o.otlpExportMetrics, false);
    assert.equal(o.traceSampleRatio, 0.1);
    const c = resolveOtlpConfig(o, {})!;
    assert.equal(c.traces?.url, "http://c:4318/v1/traces");
    assert.equal(c.metrics, undefined);
    assert.equal(parseOperatorOptions([], { FINETUNE_OTLP_ENDPOINT: "http://e:4318", FINETUNE_TRACE_SAMPLE_RATIO: "0.5" }).traceSampleRatio, 0.5);
  });

  it("a sample ratio outside 0..1 is rejected", () => {
    assert.throws(() => parseOperatorOptions(["--trace-sample-ratio=2"], {}), /0\.\.1/);
    assert.throws(() => parseOperatorOptions(["--trace-sample-ratio=abc"], {}), /0\.\.1/);
  });
});

describe("parseOtlpHeaders / withTimeout", () => {
  it("parses k=v pairs, keeps '=' inside values", () => {
    assert.deepEqual(parseOtlpHeaders("a=1,b=x=y, c = 3 "), { a: "1", b: "x=y", c: "3" });
    assert.deepEqual(parseOtlpHeaders(undefined), {});
  });

  it("withTimeout resolves on a promise that never settles, and swallows rejections", async () => {
    await withTimeout(new Promise(() => {}), 20);
    await withTimeout(Promise.reject(new Error("x")), 1000);
  });
});
