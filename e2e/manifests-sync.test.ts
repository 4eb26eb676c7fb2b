/**
 * The Helm chart and what is derived from it: the chart's CRD copy and
 * manifests/finetune-operator.yaml must match what `npm run manifests` would
 * write now; `helm lint` is clean for the defaults and every optional feature;
 * the rendered RBAC is exactly the least privilege the controller needs; the
 * values schema rejects bad values; the dashboard reads metrics the operator exports.
 * Needs the pinned helm binary (built on first use), not the cluster.
 * Run: npx node --test e2e/manifests-sync.test.ts
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { CHART_CRD, CRD_SOURCE, MANIFESTS_FILE, helm, helmBinary, renderManifests } from "../scripts/render-manifests.ts";

const DASHBOARD_FILE = new URL("../charts/finetune-operator/dashboards/finetune-operator.json", import.meta.url);
const STALE = "run `npm run manifests` (scripts/render-manifests.ts) and commit the result";

interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

function docs(text: string): K8sDoc[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sDoc | null)
    .filter((d): d is K8sDoc => d !== null);
}

/** The rules the controller needs, as "group/resource: verbs" (src/controller/controller.ts, src/kube/api.ts, src/progress/log-poller.ts). */
const EXPECTED_OPERATOR_RULES = [
  "finetune.dev/finetunejobs: delete,get,list,watch",
  "finetune.dev/finetunejobs/status: patch,update",
  "finetune.dev/finetunejobs/finalizers: update",
  "batch/jobs: create,delete,get,list,watch",
  "/pods: get,list,watch",
  "/configmaps: create,get,list,watch",
  "/services: create,list,watch",
  "/persistentvolumeclaims: create,list,watch",
  "/events: create,list,patch",
  "/pods/log: get",
].sort();

function flatten(rules: Rule[]): string[] {
  return rules
    .flatMap((r) =>
      r.apiGroups.flatMap((g) =>
        r.resources.map((res) => `${g}/${res}: ${[...r.verbs].sort().join(",")}${r.resourceNames ? ` (${r.resourceNames.join(",")})` : ""}`),
      ),
    )
    .sort();
}

describe("Helm chart and generated manifests", { timeout: 600_000 }, () => {
  let helmPath: string;
  const template = async (values: string[] = [], namespace = "finetune-system") =>
    docs(await helm(["template", "finetune-operator", "charts/finetune-operator", "--namespace", namespace, ...values.flatMap((v) => ["--set", v])], helmPath));

  before(async () => {
    helmPath = await helmBinary();
  });

  test("the chart's CRD is identical to crds/finetune.dev_finetunejobs.yaml", () => {
    assert.ok(readFileSync(CHART_CRD, "utf8") === readFileSync(CRD_SOURCE, "utf8"), `charts/finetune-operator/crds/ is stale: ${STALE}`);
  });

  test("manifests/finetune-operator.yaml is what the chart renders now", async () => {
    const expected = await renderManifests(helmPath);
    const actual = readFileSync(MANIFESTS_FILE, "utf8");
    if (actual !== expected) {
      const a = actual.split("\n");
      const e = expected.split("\n");
      const line = e.findIndex((l, i) => l !== a[i]);
      assert.fail(
        `manifests/finetune-operator.yaml is stale (first difference at line ${line + 1}: expected ${JSON.stringify(e[line])}, found ${JSON.stringify(a[line])}): ${STALE}`,
      );
    }
  });

  test("kustomize builds manifests/ into the same objects", () => {
    let out: string;
    try {
      out = execFileSync("kubectl", ["kustomize", fileURLToPath(new URL("../manifests/", import.meta.url))], { encoding: "utf8" });
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return; // no kubectl on this machine
      throw err;
    }
    const kinds = (t: string) =>
      docs(t)
        .map((d) => `${d.kind}/${d.metadata.name}`)
        .sort();
    assert.deepEqual(kinds(out), kinds(readFileSync(MANIFESTS_FILE, "utf8")));
  });

  const lintCases: Record<string, string[]> = {
    defaults: [],
    "every optional feature": [
      "metrics.serviceMonitor.enabled=true",
      "dashboard.enabled=true",
      "progress.enabled=true",
      "progress.tls.secretName=progress-tls",
      "otlp.endpoint=http://otel-collector.observability:4318",
      "otlp.headersSecret.name=otlp-headers",
    ],
    "one namespace": ["watchNamespace=ml-team", "replicaCount=1", "leaderElection.enabled=false"],
  };
  for (const [name, values] of Object.entries(lintCases)) {
    test(`helm lint --strict is clean: ${name}`, async () => {
      const out = await helm(["lint", "--strict", "charts/finetune-operator", ...values.flatMap((v) => ["--set", v])], helmPath);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(out, /\[(WARNING|ERROR)\]/, out);
    });
  }

  test("default RBAC: a ClusterRole with exactly the controller's rules, a Role for the Lease, no Secrets", async () => {
    const objs = await template();
    const clusterRoles = objs.filter((o) => o.kind === "ClusterRole");
    assert.deepEqual(clusterRoles.map((r) => r.metadata.name).sort(), [
      "finetune-operator-finetune-system",
      "finetune-operator-finetune-system-edit",
      "finetune-operator-finetune-system-view",
    ]);
    assert.deepEqual(flatten(clusterRoles.find((r) => r.metadata.name === "finetune-operator-finetune-system")!.rules as Rule[]), EXPECTED_OPERATOR_RULES);
    // The user-facing roles aggregate into admin/edit/view and are bound to nobody by the chart.
    assert.equal(clusterRoles.find((r) => r.metadata.name.endsWith("-edit"))!.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    assert.equal(clusterRoles.find((r) => r.metadata.name.endsWith("-view"))!.metadata.labels?.["rbac.authorization.k8s.io/aggregate-to-view"], "true");
    assert.deepEqual(
      objs
        .filter((o) => o.kind.endsWith("Binding"))
        .map((b) => (b as K8sDoc & { roleRef: { name: string } }).roleRef.name)
        .sort(),
      ["finetune-operator-finetune-system", "finetune-operator-leader-election"],
    );
    const roles = objs.filter((o) => o.kind === "Role");
    assert.deepEqual(
      roles.map((r) => `${r.metadata.namespace}/${r.metadata.name}`),
      ["finetune-system/finetune-operator-leader-election"],
    );
    assert.deepEqual(flatten(roles[0]!.rules as Rule[]), ["coordination.k8s.io/leases: create", "coordination.k8s.io/leases: get,update (finetune-operator)"]);
    for (const o of objs.filter((x) => x.kind === "ClusterRole" || x.kind === "Role")) {
      for (const r of o.rules as Rule[]) {
        assert.ok(!r.resources.includes("secrets"), `${o.kind} ${o.metadata.name} grants secrets`);
        assert.ok(![...r.resources, ...r.verbs, ...r.apiGroups].includes("*"), `${o.kind} ${o.metadata.name} has a wildcard`);
      }
    }
    const binding = objs.find((o) => o.kind === "ClusterRoleBinding")!;
    assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: "finetune-operator", namespace: "finetune-system" }]);
    assert.ok(!JSON.stringify(objs).includes("tokenreviews"), "tokenreviews only with progress.enabled");
  });

  test("progress.enabled adds tokenreviews create (and nothing else), the endpoint port, its Service and URL", async () => {
    const objs = await template(["progress.enabled=true"]);
    const rules = flatten(objs.find((o) => o.kind === "ClusterRole" && o.metadata.name === "finetune-operator-finetune-system")!.rules as Rule[]);
    assert.deepEqual(rules, [...EXPECTED_OPERATOR_RULES, "authentication.k8s.io/tokenreviews: create"].sort());
    const c = deployment(objs).spec.template.spec.containers[0]!;
    const env = Object.fromEntries((c.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    assert.equal(env.FINETUNE_PROGRESS_PORT, "8443");
    assert.equal(env.FINETUNE_PROGRESS_URL, "http://finetune-operator-progress.finetune-system.svc:8443");
    assert.equal(env.FINETUNE_PROGRESS_TLS_CERT, undefined);
    assert.ok((c.ports as { name: string }[]).some((p) => p.name === "progress"));
    const svc = objs.find((o) => o.kind === "Service" && o.metadata.name === "finetune-operator-progress") as K8sDoc & {
      spec: { ports: { port: number; targetPort: string }[] };
    };
    assert.deepEqual(
      svc.spec.ports.map((p) => `${p.port}->${p.targetPort}`),
      ["8443->progress"],
    );

    const tls = await template(["progress.enabled=true", "progress.tls.secretName=progress-tls"]);
    const tc = deployment(tls).spec.template.spec;
    const tenv = Object.fromEntries((tc.containers[0].env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    assert.equal(tenv.FINETUNE_PROGRESS_URL, "https://finetune-operator-progress.finetune-system.svc:8443");
    assert.equal(tenv.FINETUNE_PROGRESS_TLS_CERT, "/etc/finetune-operator/progress-tls/tls.crt");
    assert.deepEqual(tc.volumes.find((v: { name: string }) => v.name === "progress-tls").secret, { secretName: "progress-tls" });
    // The kubelet mounts the Secret; the operator's own RBAC still has no Secrets access.
    assert.ok(!JSON.stringify(tls.filter((o) => o.kind.endsWith("Role"))).includes("secrets"));
  });

  test("the log-tail progress fallback: FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS, and pods/log get only while it is on", async () => {
    const env = (objs: K8sDoc[]) =>
      Object.fromEntries((deployment(objs).spec.template.spec.containers[0]!.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    assert.equal(env(await template()).FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS, "60");
    const off = await template(["progress.logIntervalSeconds=0"]);
    assert.equal(env(off).FINETUNE_PROGRESS_LOG_INTERVAL_SECONDS, "0");
    const rules = flatten(off.find((o) => o.kind === "ClusterRole" && o.metadata.name === "finetune-operator-finetune-system")!.rules as Rule[]);
    assert.deepEqual(
      rules,
      EXPECTED_OPERATOR_RULES.filter((r) => r !== "/pods/log: get"),
    );
    const ns = await template(["watchNamespace=ml-team", "progress.logIntervalSeconds=0"]);
    assert.ok(!JSON.stringify(ns.filter((o) => o.kind.endsWith("Role"))).includes("pods/log"));
  });

  test("watchNamespace: a Role in that namespace instead of a ClusterRole, and FINETUNE_WATCH_NAMESPACE", async () => {
    const objs = await template(["watchNamespace=ml-team"]);
    assert.equal(objs.filter((o) => o.kind === "ClusterRoleBinding").length, 0, "no cluster-wide permissions for the operator");
    assert.deepEqual(
      objs
        .filter((o) => o.kind === "ClusterRole")
        .map((o) => o.metadata.name)
        .sort(),
      ["finetune-operator-finetune-system-edit", "finetune-operator-finetune-system-view"],
    );
    const role = objs.find((o) => o.kind === "Role" && o.metadata.namespace === "ml-team")!;
    assert.deepEqual(flatten(role.rules as Rule[]), EXPECTED_OPERATOR_RULES);
    const rb = objs.find((o) => o.kind === "RoleBinding" && o.metadata.namespace === "ml-team")!;
    assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "finetune-operator", namespace: "finetune-system" }]);
    const env = deployment(objs).spec.template.spec.containers[0]!.env as { name: string; value?: string }[];
    assert.equal(env.find((e) => e.name === "FINETUNE_WATCH_NAMESPACE")?.value, "ml-team");
  });

  test("Deployment: 2 leader-elected replicas, downward API identity, hardened, probed", async () => {
    const objs = await template(["extraEnv[0].name=NODE_OPTIONS", "extraEnv[0].value=--max-old-space-size=384"]);
    const d = deployment(objs);
    assert.equal(d.spec.replicas, 2);
    const pod = d.spec.template.spec;
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    assert.equal(pod.serviceAccountName, "finetune-operator");
    assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const c = pod.containers[0]!;
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    const env = Object.fromEntries(
      (c.env as { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[]).map((e) => [
        e.name,
        e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath}`,
      ]),
    );
    assert.equal(env.POD_NAME, "fieldRef:metadata.name");
    assert.equal(env.POD_NAMESPACE, "fieldRef:metadata.namespace");
    assert.equal(env.FINETUNE_LEADER_ELECT, "true");
    assert.equal(env.FINETUNE_PORT, "8080");
    assert.equal(env.NODE_OPTIONS, "--max-old-space-size=384");
    assert.equal(env.FINETUNE_WATCH_NAMESPACE, undefined);
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c.livenessProbe.httpGet, { path: "/healthz", port: "http" });
    assert.deepEqual(c.readinessProbe.httpGet, { path: "/readyz", port: "http" });
    assert.ok(c.resources.requests && c.resources.limits, "resources set");
    assert.equal(c.image, "ghcr.io/finetune-dev/finetune-operator:0.1.0");
    const pdb = objs.find((o) => o.kind === "PodDisruptionBudget") as K8sDoc & { spec: { minAvailable: number } };
    assert.equal(pdb.spec.minAvailable, 1);
    assert.ok(
      !(await template(["replicaCount=1", "leaderElection.enabled=false"])).some((o) => o.kind === "PodDisruptionBudget"),
      "no PDB for a single replica: it would only block drains",
    );
    const svc = objs.find((o) => o.kind === "Service") as K8sDoc & { spec: { ports: { name: string; targetPort: string }[] } };
    assert.deepEqual(
      svc.spec.ports.map((p) => `${p.name}->${p.targetPort}`),
      ["http-metrics->http"],
    );
    assert.ok(!objs.some((o) => o.kind === "ServiceMonitor" || o.metadata.name.endsWith("-dashboard")), "ServiceMonitor and dashboard are opt-in");
  });

  test("otlp.endpoint sets the OpenTelemetry env vars (headers from a Secret); unset, none of them", async () => {
    const envOf = (objs: K8sDoc[]) => deployment(objs).spec.template.spec.containers[0]!.env as { name: string; value?: string; valueFrom?: unknown }[];
    assert.ok(
      !envOf(await template()).some((e) => e.name.startsWith("OTEL_") || e.name.includes("OTLP") || e.name.includes("TRACE")),
      "no OTLP settings by default",
    );
    const env = envOf(
      await template([
        "otlp.endpoint=http://otel-collector.observability:4318",
        "otlp.traceSampleRatio=0.25",
        "otlp.metricExportIntervalSeconds=15",
        "otlp.headersSecret.name=otlp-headers",
      ]),
    );
    const value = (name: string) => env.find((e) => e.name === name)?.value;
    assert.equal(value("OTEL_EXPORTER_OTLP_ENDPOINT"), "http://otel-collector.observability:4318");
    assert.equal(value("OTEL_SERVICE_NAME"), "finetune-operator");
    assert.equal(value("FINETUNE_OTLP_EXPORT_METRICS"), "true");
    assert.equal(value("FINETUNE_TRACE_SAMPLE_RATIO"), "0.25");
    assert.equal(value("OTEL_METRIC_EXPORT_INTERVAL"), "15000");
    assert.deepEqual(env.find((e) => e.name === "OTEL_EXPORTER_OTLP_HEADERS")?.valueFrom, { secretKeyRef: { name: "otlp-headers", key: "headers" } });
    const noSecret = envOf(await template(["otlp.endpoint=http://c:4318"]));
    assert.ok(!noSecret.some((e) => e.name === "OTEL_EXPORTER_OTLP_HEADERS"));
  });

  test("heap.compilers sets node's flags in the container's args, before the program", async () => {
    const args = async (compilers?: string) =>
      deployment(await template(compilers ? [`heap.compilers=${compilers}`] : [])).spec.template.spec.containers[0]!.args;
    assert.deepEqual(await args(), ["--no-opt", "--no-maglev", "dist/main.js"], "baseline by default");
    assert.deepEqual(await args("baseline"), ["--no-opt", "--no-maglev", "dist/main.js"]);
    assert.deepEqual(await args("lite"), ["--lite-mode", "dist/main.js"]);
    assert.deepEqual(await args("all"), ["dist/main.js"]);
  });

  test("image digest wins over the tag", async () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const d = deployment(await template([`image.digest=${digest}`, "image.tag=9.9.9"]));
    assert.equal(d.spec.template.spec.containers[0]!.image, `ghcr.io/finetune-dev/finetune-operator@${digest}`);
  });

  test("the values schema and the template guards reject bad values", async () => {
    const bad: [string[], RegExp][] = [
      [["replicaCount=-1"], /replicaCount/],
      [["unknownValue=1"], /additional properties 'unknownValue'/],
      [["image.pullPolicy=Sometimes"], /pullPolicy/],
      [["watchNamespace=Not_A_Namespace"], /watchNamespace/],
      [["operator.concurrency=0"], /concurrency/],
      [["operator.logLevel=loud"], /logLevel/],
      [["metrics.serviceMonitor.interval=30"], /interval/],
      [["podDisruptionBudget.minAvailable=half"], /minAvailable/],
      [["leaderElection.enabled=false"], /leaderElection.enabled must be true/],
      [["progress.enabled=true", "progress.port=8080"], /progress.port must differ/],
      [["progress.url=ftp://x"], /url/],
      [["otlp.endpoint=otel-collector:4317"], /endpoint/],
      [["otlp.traceSampleRatio=2"], /traceSampleRatio/],
      [["progress.logIntervalSeconds=-1"], /logIntervalSeconds/],
      [["heap.compilers=turbo"], /compilers/],
      [["heap.liteMode=true"], /additional properties 'liteMode'/],
    ];
    for (const [values, message] of bad) {
      await assert.rejects(template(values), message, `--set ${values.join(" ")} should be rejected`);
    }
  });

  test("ServiceMonitor and dashboard ConfigMap render when enabled", async () => {
    const objs = await template([
      "metrics.serviceMonitor.enabled=true",
      "metrics.serviceMonitor.labels.release=prom",
      "dashboard.enabled=true",
      "dashboard.namespace=monitoring",
    ]);
    const sm = objs.find((o) => o.kind === "ServiceMonitor") as K8sDoc & { spec: { endpoints: { port: string; path: string; honorLabels: boolean }[] } };
    assert.equal(sm.metadata.labels?.release, "prom");
    assert.deepEqual(
      sm.spec.endpoints.map((e) => [e.port, e.path, e.honorLabels]),
      [["http-metrics", "/metrics", true]],
    );
    const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("-dashboard")) as K8sDoc & { data: Record<string, string> };
    assert.equal(cm.metadata.namespace, "monitoring");
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
    assert.deepEqual(JSON.parse(cm.data["finetune-operator.json"]!), JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")));
  });

  test("the dashboard has a panel for every metric the brief names, each with a valid query target", () => {
    const dash = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as { uid: string; panels: { type: string; title: string; targets?: { expr: string }[] }[] };
    assert.equal(dash.uid, "finetune-operator");
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const metric of DASHBOARD_METRICS)
      assert.ok(
        exprs.some((e) => e.includes(metric)),
        `no panel reads ${metric}`,
      );
    for (const p of dash.panels.filter((x) => x.type !== "row")) assert.ok(p.targets?.length, `panel ${p.title} has no query`);
  });
});

/** Metrics the dashboard must read; e2e/install.test.ts checks the running operator exports every metric the dashboard uses. */
const DASHBOARD_METRICS = [
  "finetune_jobs",
  "finetune_job_progress_step",
  "finetune_job_progress_loss",
  "finetune_job_restarts",
  "controller_runtime_reconcile_total",
  "controller_runtime_reconcile_time_seconds_bucket",
  "workqueue_depth",
  "finetune_api_requests_total",
  "leader_election_master_status",
];

type AnyDeployment = K8sDoc & { spec: { replicas: number; template: { spec: any } } };
function deployment(objs: K8sDoc[]): AnyDeployment {
  const d = objs.find((o) => o.kind === "Deployment");
  assert.ok(d, "a Deployment");
  return d as AnyDeployment;
}
