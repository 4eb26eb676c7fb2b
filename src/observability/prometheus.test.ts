/**
 * The Prometheus registry: its text is what @opentelemetry/exporter-prometheus wrote for the same measurements
 * (the exporter served /metrics before; dashboards and alerts read these names and labels), and its own rules.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { PrometheusRegistry, type Labels } from "./prometheus.ts";

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The same measurements into the registry and into the OpenTelemetry SDK with its Prometheus exporter, as configured before. */
async function bothTexts(
  measure: (m: {
    counter(name: string, help: string): { add(v: number, l?: Labels): void };
    histogram(name: string, help: string, buckets: number[]): { record(v: number, l?: Labels): void };
    gauge(name: string, help: string, points: Array<[number, Labels?]>): void;
  }) => void,
): Promise<{ ours: string; otel: string }> {
  const registry = new PrometheusRegistry();
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const meter = provider.getMeter("test");
  measure({
    counter(name, help) {
      const a = registry.counter(name, help);
      const b = meter.createCounter(name, { description: help });
      return { add: (v, l) => (a.add(v, l), b.add(v, l)) };
    },
    histogram(name, help, buckets) {
      const a = registry.histogram(name, help, buckets);
      const b = meter.createHistogram(name, { description: help, advice: { explicitBucketBoundaries: buckets } });
      return { record: (v, l) => (a.record(v, l), b.record(v, l)) };
    },
    gauge(name, help, points) {
      registry.gauge(name, help, (observe) => points.forEach(([v, l]) => observe(v, l)));
      meter.createObservableGauge(name, { description: help }).addCallback((r) => points.forEach(([v, l]) => r.observe(v, l)));
    },
  });
  const { resourceMetrics } = await exporter.collect();
  const otel = new PrometheusSerializer(undefined, false, undefined, true, true).serialize(resourceMetrics);
  await provider.shutdown();
  return { ours: registry.render(), otel };
}

describe("PrometheusRegistry", () => {
  it("writes what the OpenTelemetry Prometheus exporter wrote: counters, histograms, gauges, labels, escaping, order", async () => {
    const { ours, otel } = await bothTexts((m) => {
      const reconciles = m.counter("controller_runtime_reconcile", "Total number of reconciliations per controller");
      reconciles.add(1, { controller: "finetunejob", result: "success" });
      reconciles.add(2, { controller: "finetunejob", result: "error" });
      reconciles.add(1, { controller: "finetunejob", result: "success" });
      m.counter("workqueue_retries", "never incremented: left out");
      const requests = m.counter("finetune_api_requests", 'API requests, with "quotes", a back\\slash and a\nnewline');
      requests.add(1, { verb: "get", resource: "pods", code: 'a"b\\c\nd' });
      requests.add(0.5, { verb: "create", resource: "jobs", code: "201" });
      const time = m.histogram("controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller", BUCKETS);
      // On a bound (counts in that bucket), between bounds, beyond the last one, zero.
      for (const v of [0.005, 0.0051, 0.3, 61, 0, 1, 2.5]) time.record(v, { controller: "finetunejob" });
      time.record(0.2, { controller: "other" });
      const lateness = m.histogram("finetune_lease_renew_lateness_seconds", "How late each Lease renewal started", BUCKETS);
      lateness.record(0.02);
      lateness.record(3);
      m.histogram("finetune_stage_duration_seconds", "nothing recorded: left out", [10, 30]);
      m.gauge("workqueue_depth", "Current depth of workqueue", [[3, { name: "finetunejob" }]]);
      m.gauge("finetune_reconcile_shedding", "1 while reconciles are paused", [[0]]);
      m.gauge("finetune_event_loop_delay_seconds", "Delay of the main event loop", [
        [0.020119551, { quantile: "0.5" }],
        [0.022298623, { quantile: "0.99" }],
        [Infinity, { quantile: "1" }],
      ]);
      m.gauge("finetune_job_progress_loss", "Latest training loss", [
        [1.25, { namespace: "ns", finetunejob: "a" }],
        [Number.NaN, { namespace: "ns", finetunejob: "b" }],
      ]);
      m.gauge("finetune_job_restarts", "no series this time: left out", []);
    });
    assert.equal(ours, otel);
    assert.match(ours, /^controller_runtime_reconcile_total\{controller="finetunejob",result="success"\} 2$/m, "the text is not empty");
  });

  it("an empty registry says so, as the exporter did", async () => {
    const { ours, otel } = await bothTexts(() => {});
    assert.equal(ours, otel);
    assert.equal(ours, "# no registered metrics");
  });

  it("ignores negative values; a counter already named _total keeps its name", () => {
    const r = new PrometheusRegistry();
    const c = r.counter("events_total", "events");
    c.add(2);
    c.add(-1);
    const h = r.histogram("latency_seconds", "latency", [1]);
    h.record(-0.5);
    h.record(0.5);
    assert.equal(
      r.render(),
      [
        "# HELP events_total events",
        "# TYPE events_total counter",
        "events_total 2",
        "# HELP latency_seconds latency",
        "# TYPE latency_seconds histogram",
        "latency_seconds_count 1",
        "latency_seconds_sum 0.5",
        'latency_seconds_bucket{le="1"} 1',
        'latency_seconds_bucket{le="+Inf"} 1',
        "",
      ].join("\n"),
    );
  });

  it("a gauge shows what its callback observes at each scrape: a series no longer observed is gone", () => {
    const r = new PrometheusRegistry();
    let running = ["a", "b"];
    r.gauge("step", "step per running job", (observe) => running.forEach((job, i) => observe(i + 1, { job })));
    assert.match(r.render(), /^step\{job="b"\} 2$/m);
    running = ["a"];
    const text = r.render();
    assert.match(text, /^step\{job="a"\} 1$/m);
    assert.doesNotMatch(text, /job="b"/);
  });
});
