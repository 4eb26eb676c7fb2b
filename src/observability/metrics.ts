/**
 * Operator metrics through @opentelemetry/api, exported in Prometheus text
 * format at /metrics (always), and pushed over OTLP too when main.ts passes an
 * OTLP reader (`readers`): both readers share one MeterProvider. Names follow controller-runtime
 * so existing Grafana dashboards work unchanged.
 *
 * Per-job series (step, loss) are capped by `perJobSeriesLimit`: a cluster with
 * thousands of jobs must not explode the scrape.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { metrics, type Attributes, type Meter, type ObservableResult } from "@opentelemetry/api";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import type { Resource } from "@opentelemetry/resources";
import { MeterProvider, type MetricReader } from "@opentelemetry/sdk-metrics";
import { PHASES, type FineTuneJobObject } from "../api/schema.ts";
import type { QueueMetrics } from "../runtime/workqueue.ts";

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface MetricsSource {
  /** FineTuneJobs in the cache (for gauges computed at scrape time). */
  fineTuneJobs(): Iterable<FineTuneJobObject>;
  isLeader(): boolean;
  /** Whether reconciles are paused because the Lease renewal is late (optional: false when absent). */
  isShedding?(): boolean;
}

export class OperatorMetrics {
  readonly #exporter: PrometheusExporter;
  readonly #serializer = new PrometheusSerializer(undefined, false, undefined, true, true);
  readonly #meter: Meter;
  readonly #provider: MeterProvider;
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

  constructor(source: MetricsSource, opts: { perJobSeriesLimit?: number; readers?: MetricReader[]; resource?: Resource } = {}) {
    this.#exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo: true });
    const provider = new MeterProvider({ readers: [this.#exporter, ...(opts.readers ?? [])], ...(opts.resource ? { resource: opts.resource } : {}) });
    this.#provider = provider;
    metrics.setGlobalMeterProvider(provider);
    this.#meter = provider.getMeter("finetune-operator");
    const m = this.#meter;
    this.#reconcileTotal = m.createCounter("controller_runtime_reconcile", { description: "Total number of reconciliations per controller" });
    this.#reconcileErrors = m.createCounter("controller_runtime_reconcile_errors", { description: "Total number of reconciliation errors per controller" });
    this.#reconcileTime = m.createHistogram("controller_runtime_reconcile_time_seconds", {
      description: "Length of time per reconciliation per controller",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.#apiRequests = m.createCounter("finetune_api_requests", { description: "API requests made by the operator, by verb, resource and status code" });
    this.#queueAdds = m.createCounter("workqueue_adds", { description: "Total number of adds handled by workqueue" });
    this.#queueRetries = m.createCounter("workqueue_retries", { description: "Total number of retries handled by workqueue" });
    this.#queueLatency = m.createHistogram("workqueue_queue_duration_seconds", {
      description: "How long in seconds an item stays in workqueue before being requested",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.#queueWork = m.createHistogram("workqueue_work_duration_seconds", {
      description: "How long in seconds processing an item from workqueue takes",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.#stageDuration = m.createHistogram("finetune_stage_duration_seconds", {
      description: "Time from a stage's start to its completion",
      advice: { explicitBucketBoundaries: [10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400] },
    });
    this.#progressReports = m.createCounter("finetune_progress_reports", {
      description: "Progress reports received from trainers, by result (accepted, unauthorized, forbidden, rate_limited, ...)",
    });
    this.#progressWrites = m.createCounter("finetune_progress_status_writes", {
      description: "Status writes made for progress reports, by result (ok, error)",
    });
    this.#renewLateness = m.createHistogram("finetune_lease_renew_lateness_seconds", {
      description: "How late each Lease renewal started against its schedule (event-loop lag of a saturated leader)",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    this.#renewDuration = m.createHistogram("finetune_lease_renew_duration_seconds", {
      description: "Duration of each Lease renewal attempt, by result (ok, error)",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS },
    });
    m.createObservableGauge("finetune_reconcile_shedding", { description: "1 while reconciles are paused because the Lease renewal is late" }).addCallback(
      (r) => r.observe(source.isShedding?.() ? 1 : 0),
    );
    // The main thread's event-loop delay: how far behind a saturated operator runs (the Lease is renewed on a thread
    // of its own, so renewal lateness no longer shows it). Quantiles since the previous collection.
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    m.createObservableGauge("finetune_event_loop_delay_seconds", {
      description: "Delay of the main event loop since the previous collection (quantile 0.5, 0.99, 1 = max)",
    }).addCallback((r) => {
      if (loopDelay.count === 0) return;
      for (const q of [0.5, 0.99]) r.observe(loopDelay.percentile(q * 100) / 1e9, { quantile: String(q) });
      r.observe(loopDelay.max / 1e9, { quantile: "1" });
      loopDelay.reset();
    });
    m.createObservableGauge("workqueue_depth", { description: "Current depth of workqueue" }).addCallback((r) =>
      r.observe(this.#queueDepth, { name: this.#controller }),
    );
    m.createObservableGauge("leader_election_master_status", { description: "Whether this replica is the leader (1) or not (0)" }).addCallback((r) =>
      r.observe(source.isLeader() ? 1 : 0, { name: "finetune-operator" }),
    );
    const limit = opts.perJobSeriesLimit ?? 100;
    m.createObservableGauge("finetune_jobs", { description: "FineTuneJobs by phase" }).addCallback((r) => observePhases(r, source));
    m.createObservableGauge("finetune_job_restarts", { description: "Counted training restarts, summed over FineTuneJobs by namespace" }).addCallback((r) =>
      observeRestarts(r, source),
    );
    m.createObservableGauge("finetune_job_progress_step", { description: `Training step per running FineTuneJob (at most ${limit} series)` }).addCallback((r) =>
      observePerJob(r, source, limit, (j) => j.status?.progress?.step),
    );
    m.createObservableGauge("finetune_job_progress_loss", {
      description: `Latest training loss per running FineTuneJob (at most ${limit} series)`,
    }).addCallback((r) => observePerJob(r, source, limit, (j) => j.status?.progress?.loss));
  }

  reconciled(outcome: "success" | "error" | "requeue_after", seconds: number): void {
    const attrs = { controller: this.#controller, result: outcome };
    this.#reconcileTotal.add(1, attrs);
    if (outcome === "error") this.#reconcileErrors.add(1, { controller: this.#controller });
    this.#reconcileTime.record(seconds, { controller: this.#controller });
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
    const name = { name: this.#controller };
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

  /** Stops every reader; an OTLP reader makes a last export, bounded by its export timeout. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }

  /** Prometheus text exposition of everything collected so far. */
  async scrape(): Promise<string> {
    const { resourceMetrics } = await this.#exporter.collect();
    return this.#serializer.serialize(resourceMetrics);
  }
}

function observePhases(r: ObservableResult<Attributes>, source: MetricsSource): void {
  const counts = new Map<string, number>(PHASES.map((p) => [p, 0]));
  for (const job of source.fineTuneJobs()) {
    const phase = job.status?.phase ?? "Pending";
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  for (const [phase, n] of counts) r.observe(n, { phase });
}

function observeRestarts(r: ObservableResult<Attributes>, source: MetricsSource): void {
  const byNs = new Map<string, number>();
  for (const job of source.fineTuneJobs()) {
    const ns = job.metadata.namespace ?? "";
    byNs.set(ns, (byNs.get(ns) ?? 0) + (job.status?.restarts ?? 0));
  }
  for (const [namespace, n] of byNs) r.observe(n, { namespace });
}

function observePerJob(r: ObservableResult<Attributes>, source: MetricsSource, limit: number, value: (j: FineTuneJobObject) => number | undefined): void {
  let n = 0;
  for (const job of source.fineTuneJobs()) {
    if (job.status?.phase !== "Training") continue;
    const v = value(job);
    if (v === undefined) continue;
    if (n++ >= limit) return;
    r.observe(v, { namespace: job.metadata.namespace ?? "", finetunejob: job.metadata.name ?? "" });
  }
}
