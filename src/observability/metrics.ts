/**
 * Operator metrics, exported in Prometheus text format at /metrics (always, by the small registry in
 * prometheus.ts), and pushed over OTLP too when main.ts passes an OpenTelemetry Meter (`otlpMeter`, from the SDK
 * that otel-sdk.ts loads only when OTLP export is configured): every measurement goes to both. Names follow
 * controller-runtime so existing Grafana dashboards work unchanged.
 *
 * Per-job series (step, loss) are capped by `perJobSeriesLimit`: a cluster with
 * thousands of jobs must not explode the scrape.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Attributes, Meter } from "@opentelemetry/api";
import { PHASES, type FineTuneJobObject } from "../api/schema.ts";
import type { QueueMetrics } from "../runtime/workqueue.ts";
import { PrometheusRegistry, type Counter, type Histogram, type Labels, type Observe } from "./prometheus.ts";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsSource {
  /** FineTuneJobs in the cache (for gauges computed at scrape time). */
  fineTuneJobs(): Iterable<FineTuneJobObject>;
  isLeader(): boolean;
  /** Whether reconciles are paused because the Lease renewal is late (optional: false when absent). */
  isShedding?(): boolean;
}

/** Instruments that record into the Prometheus registry and, when OTLP export is on, into the SDK's Meter as well. */
class Instruments {
  readonly #registry: PrometheusRegistry;
  readonly #meter: Meter | undefined;

  constructor(registry: PrometheusRegistry, meter: Meter | undefined) {
    this.#registry = registry;
    this.#meter = meter;
  }

  counter(name: string, description: string): Counter {
    const prom = this.#registry.counter(name, description);
    const otel = this.#meter?.createCounter(name, { description });
    return otel ? { add: (v, labels) => (prom.add(v, labels), otel.add(v, labels)) } : prom;
  }

  histogram(name: string, description: string, buckets: number[]): Histogram {
    const prom = this.#registry.histogram(name, description, buckets);
    const otel = this.#meter?.createHistogram(name, { description, advice: { explicitBucketBoundaries: buckets } });
    return otel ? { record: (v, labels) => (prom.record(v, labels), otel.record(v, labels)) } : prom;
  }

  /** `collect` runs at each scrape and at each OTLP collection. */
  gauge(name: string, description: string, collect: (observe: Observe) => void): void {
    this.#registry.gauge(name, description, collect);
    this.#meter?.createObservableGauge(name, { description }).addCallback((r) => collect((v, labels) => r.observe(v, labels as Attributes | undefined)));
  }
}

export class OperatorMetrics {
  readonly #registry = new PrometheusRegistry();
  readonly #reconcileTotal;
  readonly #reconcileErrors;
  readonly #reconcileTime;
  readonly #apiRequests;
  readonly #queueAdds;
  readonly #queueRetries;
  readonly #queueLatency;
  readonly #queueWork;
  readonly #stageDuration;
  readonly #progressReports;
  readonly #progressWrites;
  readonly #renewLateness;
  readonly #renewDuration;
  #queueDepth = 0;
  readonly #controller = "finetunejob";
  readonly #controllerLabels: Labels = { controller: this.#controller };
  readonly #queueLabels: Labels = { name: this.#controller };

  constructor(source: MetricsSource, opts: { perJobSeriesLimit?: number; otlpMeter?: Meter } = {}) {
    const m = new Instruments(this.#registry, opts.otlpMeter);
    this.#reconcileTotal = m.counter("controller_runtime_reconcile", "Total number of reconciliations per controller");
    this.#reconcileErrors = m.counter("controller_runtime_reconcile_errors", "Total number of reconciliation errors per controller");
    this.#reconcileTime = m.histogram("controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller", LATENCY_BUCKETS);
    this.#apiRequests = m.counter("finetune_api_requests", "API requests made by the operator, by verb, resource and status code");
    this.#queueAdds = m.counter("workqueue_adds", "Total number of adds handled by workqueue");
    this.#queueRetries = m.counter("workqueue_retries", "Total number of retries handled by workqueue");
    this.#queueLatency = m.histogram(
      "workqueue_queue_duration_seconds",
      "How long in seconds an item stays in workqueue before being requested",
      LATENCY_BUCKETS,
    );
    this.#queueWork = m.histogram("workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes", LATENCY_BUCKETS);
    this.#stageDuration = m.histogram(
      "finetune_stage_duration_seconds",
      "Time from a stage's start to its completion",
      [10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    );
    this.#progressReports = m.counter(
      "finetune_progress_reports",
      "Progress reports received from trainers, by result (accepted, unauthorized, forbidden, rate_limited, ...)",
    );
    this.#progressWrites = m.counter("finetune_progress_status_writes", "Status writes made for progress reports, by result (ok, error)");
    this.#renewLateness = m.histogram(
      "finetune_lease_renew_lateness_seconds",
      "How late each Lease renewal started against its schedule (event-loop lag of a saturated leader)",
      LATENCY_BUCKETS,
    );
    this.#renewDuration = m.histogram(
      "finetune_lease_renew_duration_seconds",
      "Duration of each Lease renewal attempt, by result (ok, error)",
      LATENCY_BUCKETS,
    );
    m.gauge("finetune_reconcile_shedding", "1 while reconciles are paused because the Lease renewal is late", (observe) =>
      observe(source.isShedding?.() ? 1 : 0),
    );
    // The main thread's event-loop delay: how far behind a saturated operator runs (the Lease is renewed on a thread
    // of its own, so renewal lateness no longer shows it). Quantiles since the previous collection; a collection
    // with no new samples repeats the last ones.
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    let lastDelays: Array<[number, string]> = [];
    m.gauge("finetune_event_loop_delay_seconds", "Delay of the main event loop since the previous collection (quantile 0.5, 0.99, 1 = max)", (observe) => {
      if (loopDelay.count > 0) {
        lastDelays = [...[0.5, 0.99].map((q): [number, string] => [loopDelay.percentile(q * 100) / 1e9, String(q)]), [loopDelay.max / 1e9, "1"]];
        loopDelay.reset();
      }
      for (const [value, quantile] of lastDelays) observe(value, { quantile });
    });
    m.gauge("workqueue_depth", "Current depth of workqueue", (observe) => observe(this.#queueDepth, this.#queueLabels));
    m.gauge("leader_election_master_status", "Whether this replica is the leader (1) or not (0)", (observe) =>
      observe(source.isLeader() ? 1 : 0, { name: "finetune-operator" }),
    );
    const limit = opts.perJobSeriesLimit ?? 100;
    m.gauge("finetune_jobs", "FineTuneJobs by phase", (observe) => observePhases(observe, source));
    m.gauge("finetune_job_restarts", "Counted training restarts, summed over FineTuneJobs by namespace", (observe) => observeRestarts(observe, source));
    m.gauge("finetune_job_progress_step", `Training step per running FineTuneJob (at most ${limit} series)`, (observe) =>
      observePerJob(observe, source, limit, (j) => j.status?.progress?.step),
    );
    m.gauge("finetune_job_progress_loss", `Latest training loss per running FineTuneJob (at most ${limit} series)`, (observe) =>
      observePerJob(observe, source, limit, (j) => j.status?.progress?.loss),
    );
  }

  reconciled(outcome: "success" | "error" | "requeue_after", seconds: number): void {
    this.#reconcileTotal.add(1, { controller: this.#controller, result: outcome });
    if (outcome === "error") this.#reconcileErrors.add(1, this.#controllerLabels);
    this.#reconcileTime.record(seconds, this.#controllerLabels);
  }

  apiCall(verb: string, resource: string, code: number | undefined): void {
    this.#apiRequests.add(1, { verb, resource, code: String(code ?? "error") });
  }

  progressReport(result: string): void {
    this.#progressReports.add(1, { result });
  }

  progressWrite(ok: boolean): void {
    this.#progressWrites.add(1, { result: ok ? "ok" : "error" });
  }

  leaseRenewal(r: { ok: boolean; latenessMs: number; durationMs: number }): void {
    this.#renewLateness.record(r.latenessMs / 1000);
    this.#renewDuration.record(r.durationMs / 1000, { result: r.ok ? "ok" : "error" });
  }

  stageFinished(stage: string, seconds: number): void {
    this.#stageDuration.record(seconds, { stage });
  }

  queueMetrics(): QueueMetrics {
    const name = this.#queueLabels;
    return {
      adds: () => this.#queueAdds.add(1, name),
      depth: (n) => {
        this.#queueDepth = n;
      },
      queueLatency: (s) => this.#queueLatency.record(s, name),
      workDuration: (s) => this.#queueWork.record(s, name),
      retries: () => this.#queueRetries.add(1, name),
    };
  }

  /** Prometheus text exposition of everything collected so far. */
  async scrape(): Promise<string> {
    return this.#registry.render();
  }
}

function observePhases(observe: Observe, source: MetricsSource): void {
  const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
  for (const job of source.fineTuneJobs()) {
    const phase = job.status?.phase ?? "Pending";
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  for (const [phase, n] of counts) observe(n, { phase });
}

function observeRestarts(observe: Observe, source: MetricsSource): void {
  const byNs = new Map<string, number>();
  for (const job of source.fineTuneJobs()) {
    const ns = job.metadata.namespace ?? "";
    byNs.set(ns, (byNs.get(ns) ?? 0) + (job.status?.restarts ?? 0));
  }
  for (const [namespace, n] of byNs) observe(n, { namespace });
}

function observePerJob(observe: Observe, source: MetricsSource, limit: number, value: (j: FineTuneJobObject) => number | undefined): void {
  let n = 0;
  for (const job of source.fineTuneJobs()) {
    if (job.status?.phase !== "Training") continue;
    const v = value(job);
    if (v === undefined) continue;
    if (n++ >= limit) return;
    observe(v, { namespace: job.metadata.namespace ?? "", finetunejob: job.metadata.name ?? "" });
  }
}
