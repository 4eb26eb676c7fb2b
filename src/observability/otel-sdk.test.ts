/**
 * The SDK wiring against a loopback OTLP/HTTP collector: spans parent across
 * awaits (context manager registered), metrics go out over OTLP as well as
 * to /metrics, and shutdown is bounded when the collector is a
 * black hole. (e2e/otlp.test.ts does the same with the real operator.)
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { context, diag, metrics as metricsApi, trace } from "@opentelemetry/api";
import { pino } from "pino";
import { startBlackHole, startOtlpCollector } from "../../e2e/lib/otlp-collector.ts";
import { OperatorMetrics } from "./metrics.ts";
import { resolveOtlpConfig } from "./otel-config.ts";
import { startOtlpTelemetry } from "./otel-sdk.ts";
import { traced } from "./tracing.ts";

const logger = pino({ level: "silent" });
const source = { fineTuneJobs: () => [], isLeader: () => true };

afterEach(() => {
  trace.disable();
  context.disable();
  metricsApi.disable();
  diag.disable();
});

describe("OTLP telemetry (SDK)", () => {
  it("nested traced() calls parent across awaits; each measurement goes to /metrics and over OTLP", async () => {
    const collector = await startOtlpCollector();
    try {
      const config = resolveOtlpConfig(
        { otlpExportMetrics: true, traceSampleRatio: 1 },
        { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, POD_NAME: "op-1" },
        { serviceVersion: "9.9.9" },
      )!;
      const telemetry = startOtlpTelemetry(config, logger);
      const m = new OperatorMetrics(source, { otlpMeter: telemetry.meter! });
      await traced(
        "reconcile FineTuneJob",
        async () => {
          await sleep(5);
          await traced("k8s create jobs", async () => sleep(5), { "k8s.verb": "create" });
          await Promise.all([traced("k8s get configmaps", async () => sleep(1)), traced("k8s update finetunejobs/status", async () => sleep(2))]);
        },
        { "finetune.job": "ns/a" },
      );
      await assert.rejects(traced("k8s delete jobs", async () => Promise.reject(new Error("boom"))));
      m.reconciled("success", 0.01);
      assert.match(await m.scrape(), /controller_runtime_reconcile_total\{/, "/metrics still served");
      await telemetry.shutdown();

      const root = collector.spans.find((s) => s.name === "reconcile FineTuneJob");
      assert.ok(root, `spans: ${collector.spans.map((s) => s.name)}`);
      assert.equal(root.parentSpanId, undefined);
      assert.equal(root.attributes["finetune.job"], "ns/a");
      assert.equal(root.resource["service.name"], "finetune-operator");
      assert.equal(root.resource["service.version"], "9.9.9");
      assert.equal(root.resource["k8s.pod.name"], "op-1");
      for (const name of ["k8s create jobs", "k8s get configmaps", "k8s update finetunejobs/status"]) {
        const child = collector.spans.find((s) => s.name === name);
        assert.ok(child, name);
        assert.equal(child.parentSpanId, root.spanId, `${name} is a child of the reconcile span`);
        assert.equal(child.traceId, root.traceId);
      }
      const failed = collector.spans.find((s) => s.name === "k8s delete jobs")!;
      assert.equal(failed.status?.code, 2, "error status");
      assert.ok(
        failed.events.some((e) => e.name === "exception"),
        "exception recorded",
      );
      assert.ok(collector.metricNames.has("controller_runtime_reconcile"), `metrics: ${[...collector.metricNames]}`);
      assert.equal(collector.metricResources[0]?.["service.name"], "finetune-operator");
    } finally {
      await collector.close();
    }
  });

  it("a black-hole collector: spans are dropped beyond the queue, shutdown returns", async () => {
    const hole = await startBlackHole();
    try {
      const config = resolveOtlpConfig(
        { otlpExportMetrics: true, traceSampleRatio: 1 },
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: hole.url,
          OTEL_BSP_SCHEDULE_DELAY: "50",
          OTEL_BSP_MAX_QUEUE_SIZE: "64",
          OTEL_METRIC_EXPORT_INTERVAL: "100",
        },
      )!;
      const telemetry = startOtlpTelemetry(config, logger);
      const m = new OperatorMetrics(source, { otlpMeter: telemetry.meter! });
      const started = Date.now();
      for (let i = 0; i < 2_000; i++) await traced("reconcile FineTuneJob", async () => traced("k8s get configmaps", async () => undefined));
      const spanTime = Date.now() - started;
      for (const t0 = Date.now(); hole.connections() === 0 && Date.now() - t0 < 120_000;) await sleep(10);
      assert.ok(hole.connections() > 0, "the exporter did connect");
      const stopStart = Date.now();
      m.reconciled("success", 0.01);
      await Promise.race([telemetry.shutdown(), sleep(config.shutdownTimeoutMillis)]);
      const stopTime = Date.now() - stopStart;
      // Loose bounds that only catch blocking on the collector (which never answers), never the machine's speed:
      // a blocked span path or shutdown would take forever, a busy machine only takes longer.
      assert.ok(spanTime < 120_000, `4000 spans took ${spanTime} ms`);
      assert.ok(stopTime < config.shutdownTimeoutMillis + 60_000, `shutdown took ${stopTime} ms`);
    } finally {
      await hole.close();
    }
  });
});
