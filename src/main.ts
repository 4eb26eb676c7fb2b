/**
 * The operator process: `npm start` (from source, against $KUBECONFIG) or the
 * image's entrypoint (in-cluster config). All replicas keep warm caches; only
 * the Lease holder reconciles.
 */
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { Controller } from "./controller/controller.ts";
import { DEFAULT_PLANNER_SETTINGS, type PlannerSettings } from "./controller/planner/index.ts";
import { KubeApi } from "./kube/api.ts";
import { KubeClient } from "./kube/client.ts";
import { stdoutLineWriter } from "./observability/log-destination.ts";
import { OperatorMetrics } from "./observability/metrics.ts";
import { resolveOtlpConfig } from "./observability/otel-config.ts";
import type { OtlpTelemetry } from "./observability/otel-sdk.ts";
import { finishedStages } from "./observability/stage-durations.ts";
import { ProgressAuthenticator } from "./progress/auth.ts";
import { LogProgressPoller } from "./progress/log-poller.ts";
import { ProgressServer } from "./progress/server.ts";
import { parseOperatorOptions, type OperatorOptions } from "./options.ts";
import { startHttpServer } from "./runtime/http-server.ts";
import { ElectorThread } from "./runtime/elector-thread.ts";
import { defaultIdentity } from "./runtime/leader-election.ts";
import { launcherSource } from "./trainer/source.ts";

export async function runOperator(opts: OperatorOptions): Promise<{ stop: () => Promise<void> }> {
  // Lines gathered for a moment and written together, in one synchronous write; whatever is buffered is written on
  // exit (log-destination.ts).
  const logLines = stdoutLineWriter();
  const logger = pino({ level: opts.logLevel, base: { component: "finetune-operator" } }, logLines);
  // The lean REST client; client-node is loaded only for credentials it alone understands (exec plugins, proxies).
  const kube = await KubeClient.fromEnvironment();
  const identity = opts.identity ?? process.env.POD_NAME ?? defaultIdentity();
  let leading = false;
  let controller: Controller | undefined;
  // OTLP export only when an endpoint is configured; the SDK is imported lazily so the default path loads none of it.
  const otlp = resolveOtlpConfig(opts, process.env, { serviceVersion: packageVersion() });
  let telemetry: OtlpTelemetry | undefined;
  if (otlp) {
    const { startOtlpTelemetry } = await import("./observability/otel-sdk.ts");
    telemetry = startOtlpTelemetry(otlp, logger);
  }
  const metrics = new OperatorMetrics(
    { fineTuneJobs: () => controller?.ftjs.list() ?? [], isLeader: () => leading, isShedding: () => controller?.queue.isPaused() ?? false },
    { perJobSeriesLimit: opts.perJobSeriesLimit, ...(telemetry?.meter ? { otlpMeter: telemetry.meter } : {}) },
  );
  const api = new KubeApi(kube, (verb, resource, code) => metrics.apiCall(verb, resource, code));
  const settings: PlannerSettings = {
    ...DEFAULT_PLANNER_SETTINGS,
    launcherSource: launcherSource(),
    restartBackoffBaseMs: opts.restartBackoffBaseMs,
    imagePullGraceMs: opts.imagePullGraceMs,
    ...(opts.progressUrl ? { progressUrl: opts.progressUrl } : {}),
    // Read once at start: a rotated CA reaches jobs started after the next operator restart.
    ...(opts.progressCaFile ? { progressCaBundle: readFileSync(opts.progressCaFile, "utf8") } : {}),
  };
  controller = new Controller({
    client: kube,
    api,
    settings,
    logger,
    identity,
    concurrency: opts.concurrency,
    resyncIntervalMs: opts.resyncIntervalMs,
    queueMetrics: metrics.queueMetrics(),
    onReconciled: (outcome, seconds) => metrics.reconciled(outcome, seconds),
    onDecision: (ftj, status) => {
      for (const { stage, seconds } of finishedStages(ftj.status, status)) metrics.stageFinished(stage, seconds);
    },
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  });
  const ctrl = controller;
  const http = await startHttpServer({
    host: opts.bindAddress,
    port: opts.port,
    ready: () => ctrl.hasSynced(),
    metrics: () => metrics.scrape(),
    logger,
  });
  let progress: ProgressServer | undefined;
  if (opts.progressPort !== undefined) {
    progress = new ProgressServer({
      api,
      auth: new ProgressAuthenticator(kube, { pod: (ns, name) => ctrl.pods.get(ns, name) }),
      getJob: (ns, name) => ctrl.ftjs.get(ns, name),
      logger,
      host: opts.bindAddress,
      port: opts.progressPort,
      writeIntervalMs: opts.progressWriteIntervalMs,
      maxWritesPerSecond: opts.progressMaxWritesPerSecond,
      onReport: (result) => metrics.progressReport(result),
      onWrite: (ok) => metrics.progressWrite(ok),
      ...(opts.progressTls ? { tls: opts.progressTls } : {}),
    });
    await progress.start();
  }
  // Progress from rank 0's log tail when no fresh push report exists; it writes status, so the leader alone runs it.
  const logPoller = new LogProgressPoller({
    api,
    jobs: () => ctrl.ftjs.list(),
    getJob: (ns, name) => ctrl.ftjs.get(ns, name),
    podsOf: (ns, name) => ctrl.podsOf(ns, name),
    logger,
    intervalMs: opts.progressLogIntervalMs,
    // A push report older than this (3 log intervals, at least 3 push write intervals) no longer holds the log off.
    pushStaleMs: 3 * Math.max(opts.progressLogIntervalMs, opts.progressWriteIntervalMs),
  });
  logger.info(
    {
      identity,
      apiServer: kube.description,
      port: http.port,
      progressPort: progress?.port,
      progressLogIntervalSeconds: opts.progressLogIntervalMs / 1000,
      namespace: opts.namespace ?? "(all)",
    },
    "starting",
  );
  await ctrl.startCaches();
  logger.info("caches synced");

  let elector: ElectorThread | undefined;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down");
    // No new log reads; a round in progress finishes (at most one GET + one patch per job in it).
    await logPoller.stop();
    // Finish in-flight reconciles first (each is idempotent, so one cut short is also safe), then hand the lease over at once.
    await ctrl.stop(opts.drainTimeoutMs);
    await progress?.close();
    await elector?.stop({ release: true });
    await http.close();
    // Last: flush the spans and metrics of the final reconciles. Bounded, so a collector that is down cannot hold up the exit.
    if (telemetry) await telemetry.shutdown();
    // Out now rather than at exit (the sink is synchronous); the exit hook stays for anything logged after this.
    logLines.flush();
  };
  if (opts.leaderElect) {
    // On a thread of its own: a main event loop seconds behind under load must not cost the Lease (see elector-thread.ts).
    const workerFile = new URL(`./lease-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    elector = new ElectorThread(
      workerFile,
      {
        namespace: opts.leaseNamespace,
        name: opts.leaseName,
        identity,
        leaseDurationSeconds: opts.leaseDurationSeconds,
        renewDeadlineSeconds: opts.renewDeadlineSeconds,
        retryPeriodSeconds: opts.retryPeriodSeconds,
        // A successor may take over leaseDuration - renewDeadline after we give up at the earliest; stop well before.
        hardStopMs: ((opts.leaseDurationSeconds - opts.renewDeadlineSeconds) * 1000) / 2,
        logLevel: opts.logLevel,
        ...(kube.access ? { access: kube.access } : {}),
      },
      {
        onStartedLeading: () => {
          leading = true;
          logger.info("became leader; reconciling");
          ctrl.startWorkers();
          logPoller.start();
        },
        onRenewal: (r) => metrics.leaseRenewal(r),
        // A late renewal (the API server is slow) sheds reconciles (in-flight ones finish) rather than add to its load.
        onPressure: (late) => (late ? ctrl.queue.pause() : ctrl.queue.resume()),
        onStoppedLeading: (reason) => {
          leading = false;
          // Stop acting before this returns: the worker is told we stopped as soon as it does.
          ctrl.queue.pause();
          void logPoller.stop();
          logger.warn({ reason }, "leadership ended");
          // Never keep reconciling without the lease: exit and let the Deployment restart us as a candidate.
          if (!stopping) void stop().then(() => process.exit(reason === "lost" ? 1 : 0));
        },
        // Without its election thread this replica could never lead again: exit, so the restart (and the crash) shows.
        onError: (err) => {
          logger.error({ err }, "leader election thread failed");
          if (!stopping) void stop().then(() => process.exit(1));
        },
      },
    );
  } else {
    leading = true;
    ctrl.startWorkers();
    logPoller.start();
  }
  return { stop };
}

/** The operator's version (service.version), from the package.json next to src/ or dist/. */
function packageVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const opts = parseOperatorOptions(process.argv.slice(2), process.env);
  const { stop } = await runOperator(opts);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      void stop().then(() => process.exit(0));
    });
  }
}
