/**
 * OTLP export end to end: the real operator process against the real control
 * plane, exporting to a loopback OTLP/HTTP collector (e2e/lib/otlp-collector.ts).
 * One span per reconcile with the API calls as its children; metrics pushed
 * from the same MeterProvider that serves /metrics. And a collector that is
 * down (closed port, or a black hole that never answers) changes nothing for
 * the jobs, /metrics or shutdown.
 */
import assert from "node:assert/strict";
import { before, describe, test, type TestContext } from "node:test";
import { ensureCluster, freshNamespace, kubeClients, waitFor, type KubeClients } from "./lib/index.ts";
import { createFtj, ftjManifest, getFtj } from "./lib/ftj.ts";
import { ensureCrd, metricValue, startOperator, type OperatorProcess } from "./lib/operator.ts";
import { closedPort, startBlackHole, startOtlpCollector } from "./lib/otlp-collector.ts";

let k: KubeClients;

before(async () => {
  await ensureCluster();
  await ensureCrd();
  k = await kubeClients();
});

const FAST_EXPORT = { OTEL_BSP_SCHEDULE_DELAY: "200", OTEL_METRIC_EXPORT_INTERVAL: "500", OTEL_EXPORTER_OTLP_TIMEOUT: "1000", OTEL_BSP_EXPORT_TIMEOUT: "1000" };

const succeeded = (ns: string, name: string, timeoutMs = 60_000) =>
  waitFor(
    `${ns}/${name} Succeeded`,
    async (note) => {
      const j = await getFtj(k, ns, name);
      note(j.status);
      if (j.status?.phase === "Failed") throw new Error(`${name} failed: ${j.status.message}`);
      return j.status?.phase === "Succeeded" ? j : undefined;
    },
    { timeoutMs },
  );

/** Starts an operator in a fresh namespace, stopped (and the namespace deleted) after the test. */
async function operatorIn(t: TestContext, prefix: string, env: Record<string, string>): Promise<{ ns: string; op: OperatorProcess }> {
  const ns = (await freshNamespace(prefix, { t, clients: k })).name;
  const op = await startOperator({ namespace: ns, env: { POD_NAME: `op-${prefix}`, POD_NAMESPACE: ns, ...env } });
  t.after(() => op.stop("SIGKILL"));
  return { ns, op };
}

describe("OTLP export", () => {
  test("reconcile spans with API-call children, and metrics, reach the collector", async (t) => {
    const collector = await startOtlpCollector();
    t.after(() => collector.close());
    const { ns, op } = await operatorIn(t, "otlp", { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, ...FAST_EXPORT });
    assert.ok(
      op.logs.some((l) => l.msg === "OTLP export enabled"),
      "the operator says OTLP export is on",
    );

    await createFtj(k, ftjManifest("traced", ns, { preprocess: { enabled: false } }));
    await succeeded(ns, "traced");
    const key = `${ns}/traced`;

    // A reconcile that created the training Job: its "k8s create jobs" span is a child of it.
    const { root, child } = await waitFor(
      "a reconcile span with a 'k8s create jobs' child",
      (note) => {
        const reconciles = collector.spans.filter((s) => s.name === "reconcile FineTuneJob" && s.attributes["finetune.job"] === key);
        note({ spans: collector.spans.length, reconciles: reconciles.length, names: [...new Set(collector.spans.map((s) => s.name))] });
        for (const r of reconciles) {
          const c = collector.spans.find((s) => s.name === "k8s create jobs" && s.parentSpanId === r.spanId);
          if (c) return { root: r, child: c };
        }
        return undefined;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(child.traceId, root.traceId, "child shares the reconcile's trace");
    assert.equal(root.parentSpanId, undefined, "the reconcile span is a root");
    assert.ok(typeof root.attributes["finetune.reconcile_id"] === "string" && root.attributes["finetune.reconcile_id"] !== "", "reconcile id attribute");
    assert.equal(child.attributes["k8s.verb"], "create");
    assert.equal(child.attributes["k8s.resource"], "jobs");
    assert.equal(child.attributes["k8s.status_code"], 200);
    assert.equal(root.resource["service.name"], "finetune-operator");
    assert.equal(root.resource["k8s.pod.name"], "op-otlp");
    assert.equal(root.resource["k8s.namespace.name"], ns);
    assert.match(String(root.resource["service.version"]), /^\d+\.\d+\.\d+/);

    // Every API-call span of this job's reconciles hangs off a reconcile span of the same trace.
    const reconcileIds = new Map(collector.spans.filter((s) => s.name === "reconcile FineTuneJob").map((s) => [s.spanId, s.traceId]));
    const statusUpdates = collector.spans.filter((s) => s.name === "k8s update finetunejobs/status" && s.parentSpanId && reconcileIds.has(s.parentSpanId));
    assert.ok(statusUpdates.length > 0, "status updates are children of reconciles");
    for (const s of statusUpdates) assert.equal(s.traceId, reconcileIds.get(s.parentSpanId!));

    await waitFor("controller_runtime_reconcile in an OTLP metrics export", () => collector.metricNames.has("controller_runtime_reconcile"), {
      timeoutMs: 15_000,
    });
    assert.ok(collector.metricNames.has("finetune_api_requests"), `metric names: ${[...collector.metricNames]}`);
    assert.ok(
      collector.requests.every((r) => r.contentType?.startsWith("application/json")),
      "OTLP/HTTP JSON",
    );
    // Prometheus /metrics keeps working from the same MeterProvider.
    assert.ok(metricValue(await op.metrics(), "controller_runtime_reconcile_total") > 0);

    const text = await op.metrics();
    const sum = metricValue(text, "controller_runtime_reconcile_time_seconds_sum");
    const count = metricValue(text, "controller_runtime_reconcile_time_seconds_count");
    t.diagnostic(`tracing on: ${count} reconciles, mean ${((sum / count) * 1000).toFixed(2)} ms; ${collector.spans.length} spans exported`);

    assert.equal(await op.stop(), 0, "clean exit on SIGTERM");
  });

  for (const variant of ["closed port", "black hole"] as const) {
    test(`collector down (${variant}): jobs still succeed, /metrics answers, shutdown completes`, async (t) => {
      let endpoint: string;
      let connections = () => 0;
      if (variant === "closed port") {
        endpoint = `http://127.0.0.1:${await closedPort()}`;
      } else {
        const hole = await startBlackHole();
        t.after(() => hole.close());
        endpoint = hole.url;
        connections = hole.connections;
      }
      const { ns, op } = await operatorIn(t, variant === "closed port" ? "otlp-closed" : "otlp-hole", {
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        ...FAST_EXPORT,
      });
      await createFtj(k, ftjManifest("down", ns, { preprocess: { enabled: false } }));
      await createFtj(k, ftjManifest("down2", ns, { preprocess: { enabled: false } }));
      await succeeded(ns, "down");
      await succeeded(ns, "down2");
      if (variant === "black hole") assert.ok(connections() > 0, "the exporter did try the black hole");
      assert.equal(op.proc.exitCode, null, "the operator is still running");
      const res = await fetch(`http://127.0.0.1:${op.port}/metrics`);
      assert.equal(res.status, 200);
      assert.ok(metricValue(await res.text(), "controller_runtime_reconcile_total") > 0);
      const healthz = await fetch(`http://127.0.0.1:${op.port}/healthz`);
      assert.equal(healthz.status, 200);
      // Export failures are logged as warnings, throttled (not one line per failed export).
      const otelLines = op.logs.filter((l) => l.component === "opentelemetry");
      t.diagnostic(
        `${otelLines.length} opentelemetry log line(s): ${otelLines
          .map((l) => l.msg)
          .join(" | ")
          .slice(0, 300)}`,
      );
      const stopping = Date.now();
      assert.equal(await op.stop(), 0, "clean exit on SIGTERM");
      t.diagnostic(`SIGTERM to exit: ${Date.now() - stopping} ms`);
    });
  }
});
