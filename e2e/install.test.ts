/**
 * Installs the operator FROM THE HELM CHART on the real control plane, with
 * RBAC enforced, and proves the chart's permissions are enough and no more.
 *
 * No image can run here, so everything the chart renders is applied except the
 * Deployment, and the operator runs as a local process configured like the
 * Deployment's container: its env (FINETUNE_*, POD_NAME/POD_NAMESPACE as the
 * downward API would set them), authenticated as the chart's ServiceAccount
 * with a token from the TokenRequest API, leader election on. Then a
 * FineTuneJob must reach Succeeded, the operator must never have been refused
 * (no 403 on finetune_api_requests_total), and the ServiceAccount must be
 * unable to touch Secrets or anything else the controller does not use.
 *
 * Run: npx node --test e2e/install.test.ts   (starts the cluster if it is not running)
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import https from "node:https";
import { KubeConfig, type KubernetesObject, type V1Deployment, type V1ResourceAttributes } from "@kubernetes/client-node";
import { parse, parseAllDocuments } from "yaml";
import { LABEL_JOB_NAME, LABEL_STAGE } from "../src/api/group.ts";
import { progressAudience } from "../src/render/names.ts";
import { helm, helmBinary } from "../scripts/render-manifests.ts";
import {
  applyObjects,
  apiStatus,
  FATE_ANNOTATION,
  freshNamespace,
  ignoreNotFound,
  kubeClients,
  kubeClientsForToken,
  setPodLogs,
  waitFor,
  type KubeClients,
} from "./lib/index.ts";
import { createFtj, finishPod, ftjManifest, getFtj, listPods } from "./lib/ftj.ts";
import { applyCrdObject, deploymentEnv, writeServiceAccountKubeconfig } from "./lib/install.ts";
import { metricValue, startOperator, type OperatorProcess } from "./lib/operator.ts";

const CHART = fileURLToPath(new URL("../charts/finetune-operator", import.meta.url));
const CHART_CRD = `${CHART}/crds/finetune.dev_finetunejobs.yaml`;
const DASHBOARD = `${CHART}/dashboards/finetune-operator.json`;

let k: KubeClients;
let helmPath: string;

/** `helm template` of the chart into `namespace`, as parsed objects. */
async function renderChart(release: string, namespace: string, values: string[]): Promise<KubernetesObject[]> {
  const text = await helm(["template", release, CHART, "--namespace", namespace, ...values.flatMap((v) => ["--set", v])], helmPath);
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

/** Applies the chart's CRD (Helm's crds/ directory) and waits until it is served. */
const applyChartCrd = () => applyCrdObject(k, parse(readFileSync(CHART_CRD, "utf8")) as KubernetesObject);

interface Installed {
  release: string;
  namespace: string;
  serviceAccount: string;
  objects: KubernetesObject[];
  deployment: V1Deployment;
  /** Clients and a kubeconfig file authenticated as the chart's ServiceAccount. */
  sa: KubeClients;
  kubeconfig: string;
}

/**
 * Renders the chart into `namespace`, applies everything but the Deployment,
 * and returns a kubeconfig for the chart's ServiceAccount. Cluster-scoped
 * objects are deleted after the test (namespaced ones go with the namespaces).
 */
async function install(t: TestContext, namespace: string, values: string[]): Promise<Installed> {
  const release = `ft${namespace.slice(-6)}`; // unique per test: ClusterRole names must not collide with other runs
  const objects = await renderChart(release, namespace, values);
  const deployment = objects.find((o) => o.kind === "Deployment") as V1Deployment;
  assert.ok(deployment, "the chart renders a Deployment");
  const clusterScoped = objects.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding");
  t.after(async () => {
    for (const o of clusterScoped) {
      if (o.kind === "ClusterRole") await ignoreNotFound(k.rbac.deleteClusterRole({ name: o.metadata!.name! }));
      else await ignoreNotFound(k.rbac.deleteClusterRoleBinding({ name: o.metadata!.name! }));
    }
  });
  await applyChartCrd();
  await applyObjects(
    objects.filter((o) => o.kind !== "Deployment"),
    { clients: k, namespace },
  );

  const serviceAccount = deployment.spec!.template.spec!.serviceAccountName!;
  const dir = mkdtempSync(join(tmpdir(), "finetune-install-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, "kubeconfig");
  const { token, user } = await writeServiceAccountKubeconfig(k, kubeconfig, namespace, serviceAccount, 3600);
  return { release, namespace, serviceAccount, objects, deployment, sa: await kubeClientsForToken(token, user), kubeconfig };
}

/** The UID of the API Priority and Fairness priority level a GET of `path` by the kubeconfig's user was classified into. */
async function priorityLevelOf(kubeconfig: string, path: string): Promise<string | undefined> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    https
      .get(`${kc.getCurrentCluster()!.server}${path}`, opts, (res) => {
        res.resume();
        const uid = res.headers["x-kubernetes-pf-prioritylevel-uid"];
        resolve(Array.isArray(uid) ? uid[0] : uid);
      })
      .on("error", reject);
  });
}

/** Starts the operator as the Deployment's container would run, authenticated as the chart's ServiceAccount. */
async function runAsDeployment(
  t: TestContext,
  inst: Installed,
  opts: { namespace?: string; extraArgs?: string[] } = {},
): Promise<OperatorProcess & { podName: string }> {
  const podName = `${inst.deployment.metadata!.name}-7d9c8b6f5-x2x4q`;
  const op = await startOperator({
    kubeconfig: inst.kubeconfig,
    leaderElect: true,
    env: deploymentEnv(inst.deployment, { name: podName, namespace: inst.namespace }),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
    ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
  });
  t.after(() => op.stop());
  await waitFor(
    "operator ready and leading",
    async (note) => {
      const ready = (await fetch(`http://127.0.0.1:${op.port}/readyz`)).status;
      const leading = op.logs.some((l) => l.msg === "became leader; reconciling");
      note({ ready, leading, lastLogs: op.logs.slice(-5) });
      return ready === 200 && leading;
    },
    { timeoutMs: 30_000 },
  );
  return Object.assign(op, { podName });
}

/** Waits for Succeeded; stops early when the job Failed or the operator was refused an API call (a missing RBAC rule). */
async function succeeded(namespace: string, name: string, op: OperatorProcess, timeoutMs = 90_000) {
  let fatal: string | undefined;
  const job = await waitFor(
    `FineTuneJob ${namespace}/${name} Succeeded`,
    async (note) => {
      const j = await getFtj(k, namespace, name);
      note(j.status);
      if (j.status?.phase === "Failed") fatal = `${name} failed: ${j.status.message}`;
      const forbidden = (await op.metrics()).split("\n").filter((l) => l.startsWith("finetune_api_requests_total") && l.includes('code="403"'));
      if (forbidden.length) fatal = `the operator was refused API calls (RBAC): ${forbidden.join("; ")}`;
      return fatal ? j : j.status?.phase === "Succeeded" && j;
    },
    { timeoutMs },
  );
  if (fatal) assert.fail(fatal);
  return job;
}

/** SelfSubjectAccessReview as the ServiceAccount: may it do `attrs`? */
async function can(sa: KubeClients, attrs: V1ResourceAttributes): Promise<boolean> {
  const r = await sa.authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: attrs } } });
  return r.status?.allowed === true;
}

const attr = (s: string, namespace?: string, name?: string): V1ResourceAttributes => {
  // "verb group/resource[/subresource]"
  const [verb, path] = s.split(" ") as [string, string];
  const [group, resource, subresource] = path.split("/") as [string, string, string | undefined];
  return { verb, group, resource, ...(subresource ? { subresource } : {}), ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) };
};

async function assertPermissions(sa: KubeClients, allowed: [string, string?, string?][], denied: [string, string?, string?][]): Promise<void> {
  const wrong: string[] = [];
  for (const [s, ns, name] of allowed) if (!(await can(sa, attr(s, ns, name)))) wrong.push(`denied but needed: ${s} ns=${ns ?? "*"} name=${name ?? "*"}`);
  for (const [s, ns, name] of denied) if (await can(sa, attr(s, ns, name))) wrong.push(`allowed but not needed: ${s} ns=${ns ?? "*"} name=${name ?? "*"}`);
  assert.deepEqual(wrong, []);
}

/** Every metric name the Grafana dashboard queries. */
function dashboardMetrics(): string[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: { targets?: { expr: string }[] }[] };
  const names = new Set<string>();
  for (const p of dash.panels)
    for (const t of p.targets ?? [])
      for (const m of t.expr.matchAll(/\b(finetune_[a-z_]+|controller_runtime_[a-z_]+|workqueue_[a-z_]+|leader_election_[a-z_]+)\b/g)) names.add(m[1]!);
  return [...names].sort();
}

describe("install from the Helm chart with RBAC enforced", { timeout: 300_000 }, () => {
  before(async () => {
    k = await kubeClients();
    helmPath = await helmBinary();
  });

  test("cluster-wide install: the chart's ServiceAccount runs a FineTuneJob to Succeeded, with progress, and nothing more", async (t) => {
    const rel = await freshNamespace("install", { t, clients: k });
    const jobs = await freshNamespace("install-jobs", { t, clients: k });
    const inst = await install(t, rel.name, ["progress.enabled=true", "dashboard.enabled=true", "metrics.serviceMonitor.enabled=false"]);
    assert.deepEqual(inst.objects.map((o) => o.kind).sort(), [
      "ClusterRole",
      "ClusterRole",
      "ClusterRole",
      "ClusterRoleBinding",
      "ConfigMap",
      "Deployment",
      "FlowSchema",
      "PodDisruptionBudget",
      "Role",
      "RoleBinding",
      "Service",
      "Service",
      "ServiceAccount",
    ]);

    // What RBAC now allows the ServiceAccount, checked by the API server itself.
    const other = jobs.name;
    await assertPermissions(
      inst.sa,
      [
        ["list finetune.dev/finetunejobs"],
        ["watch finetune.dev/finetunejobs"],
        ["get finetune.dev/finetunejobs", other],
        ["delete finetune.dev/finetunejobs", other],
        ["update finetune.dev/finetunejobs/status", other],
        ["patch finetune.dev/finetunejobs/status", other],
        ["list batch/jobs"],
        ["watch batch/jobs"],
        ["create batch/jobs", other],
        ["delete batch/jobs", other],
        ["list /pods"],
        ["watch /pods"],
        ["get /pods/log", other],
        ["list /configmaps"],
        ["get /configmaps", other],
        ["create /configmaps", other],
        ["list /services"],
        ["create /services", other],
        ["list /persistentvolumeclaims"],
        ["create /persistentvolumeclaims", other],
        ["create /events", other],
        ["create authentication.k8s.io/tokenreviews"],
        ["create coordination.k8s.io/leases", rel.name],
        ["get coordination.k8s.io/leases", rel.name, "finetune-operator"],
        ["update coordination.k8s.io/leases", rel.name, "finetune-operator"],
      ],
      [
        ["list /secrets"],
        ["get /secrets", rel.name],
        ["get /secrets", other],
        ["watch /secrets", other],
        ["create /secrets", other],
        ["create finetune.dev/finetunejobs", other],
        ["update finetune.dev/finetunejobs", other],
        ["patch finetune.dev/finetunejobs", other],
        ["create /pods", other],
        ["delete /pods", other],
        ["create /pods/exec", other],
        ["update batch/jobs", other],
        ["delete /configmaps", other],
        ["update /configmaps", other],
        ["delete /services", other],
        ["delete /persistentvolumeclaims", other],
        ["update /persistentvolumeclaims", other],
        ["create /serviceaccounts/token", other],
        ["get coordination.k8s.io/leases", rel.name, "someone-else"],
        ["update coordination.k8s.io/leases", rel.name, "someone-else"],
        ["create coordination.k8s.io/leases", other],
        ["delete coordination.k8s.io/leases", rel.name, "finetune-operator"],
        ["list /nodes"],
        ["create rbac.authorization.k8s.io/clusterrolebindings"],
        ["create authorization.k8s.io/subjectaccessreviews"],
      ],
    );
    await assert.rejects(inst.sa.core.listSecretForAllNamespaces(), (err) => apiStatus(err) === 403, "the ServiceAccount must not list Secrets cluster-wide");
    await assert.rejects(inst.sa.core.listNamespacedSecret({ namespace: rel.name }), (err) => apiStatus(err) === 403, "nor in its own namespace");

    // The operator, configured as the Deployment configures it. Its informers are kept to the test's job
    // namespace (--namespace) so that it stays out of other suites' FineTuneJobs on this shared cluster;
    // the cluster-wide list/watch the ClusterRole grants is checked above. Local ports replace 8080/8443.
    const op = await runAsDeployment(t, inst, {
      namespace: jobs.name,
      extraArgs: ["--progress-port=0", "--progress-write-interval-seconds=1", "--progress-log-interval-seconds=1"],
    });
    const lease = await k.coordination.readNamespacedLease({ namespace: rel.name, name: "finetune-operator" });
    assert.equal(lease.spec?.holderIdentity, op.podName, "the Lease in the release namespace names POD_NAME");
    // The chart's FlowSchema: the API server classifies the ServiceAccount's Lease requests into its built-in
    // leader-election priority level (API Priority and Fairness names the level in a response header).
    const leaderElectionLevel = (
      await k.objects.read({ apiVersion: "flowcontrol.apiserver.k8s.io/v1", kind: "PriorityLevelConfiguration", metadata: { name: "leader-election" } })
    ).metadata?.uid;
    assert.ok(leaderElectionLevel, "the built-in leader-election priority level");
    assert.equal(await priorityLevelOf(inst.kubeconfig, `/apis/coordination.k8s.io/v1/namespaces/${rel.name}/leases/finetune-operator`), leaderElectionLevel);
    assert.notEqual(await priorityLevelOf(inst.kubeconfig, `/apis/batch/v1/namespaces/${jobs.name}/jobs`), leaderElectionLevel, "only the Lease requests");

    // A job whose pods keep running until the test ends them, so the trainer can report progress.
    const running = { preprocess: { enabled: false }, podAnnotations: { [FATE_ANNOTATION]: "run" } };
    await createFtj(k, ftjManifest("installed", jobs.name, running));
    const trainPod = await waitFor(
      "training pod running",
      async () => (await listPods(k, jobs.name, `${LABEL_JOB_NAME}=installed,${LABEL_STAGE}=train`)).find((p) => p.status?.phase === "Running"),
      { timeoutMs: 60_000 },
    );
    // Before any push: progress from rank 0's log tail (pods/log RBAC) + status patch. The log agrees with
    // the push report below, so whichever source wrote last, the job shows step 42.
    await setPodLogs(
      jobs.name,
      trainPod.metadata!.name!,
      "Maximum number of steps set at 100\n 42%|████▏     | 42/100 [01:00<01:23,  1.43s/it]\n{'loss': 1.5, 'learning_rate': 0.0002, 'epoch': 0.42}\n",
    );
    await waitFor("progress from the log tail", async () => {
      const p = (await getFtj(k, jobs.name, "installed")).status?.progress;
      return p?.source === "logs" && p.step === 42 && p.loss === 1.5;
    });
    // A progress report with a real projected-style token: TokenReview (progress RBAC) + status patch.
    const { status } = await k.core.createNamespacedServiceAccountToken({
      namespace: jobs.name,
      name: "default",
      body: {
        spec: {
          audiences: [progressAudience({ namespace: jobs.name, name: "installed" })],
          expirationSeconds: 600,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: trainPod.metadata!.name!, uid: trainPod.metadata!.uid! },
        },
      },
    });
    const res = await fetch(`http://127.0.0.1:${op.progressPort}/v1/progress/${jobs.name}/installed`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${status!.token}` },
      body: JSON.stringify({ step: 42, totalSteps: 100, epoch: 0.42, loss: 1.5 }),
    });
    assert.equal(res.status, 202, await res.text());
    await waitFor("pushed progress in status", async () => (await getFtj(k, jobs.name, "installed")).status?.progress?.source === "push");
    // While it trains, /metrics carries every series the Grafana dashboard reads (the per-job ones exist only then).
    const training = await waitFor("per-job progress series on /metrics", async (note) => {
      const text = await op.metrics();
      note(text.split("\n").filter((l) => l.startsWith("finetune_job")));
      return metricValue(text, "finetune_job_progress_step", { namespace: jobs.name, finetunejob: "installed" }) === 42 && text;
    });
    assert.equal(metricValue(training, "finetune_job_progress_loss", { finetunejob: "installed" }), 1.5);
    for (const name of dashboardMetrics())
      assert.match(training, new RegExp(`^${name}[{ ]`, "m"), `the dashboard reads ${name}, which the operator does not export`);
    await finishPod(k, trainPod, 0);
    const mergePod = await waitFor(
      "merge pod running",
      async () => (await listPods(k, jobs.name, `${LABEL_JOB_NAME}=installed,${LABEL_STAGE}=merge`)).find((p) => p.status?.phase === "Running"),
      { timeoutMs: 60_000 },
    );
    await finishPod(k, mergePod, 0);
    const done = await succeeded(jobs.name, "installed", op);
    assert.equal(done.status?.progress?.step, 42);

    // The chart's user roles aggregate into the built-in ones: a namespace editor may submit FineTuneJobs, a viewer only read them.
    for (const [role, verbs] of [
      ["edit", ["create", "delete", "list"]],
      ["view", ["list", "watch"]],
    ] as const) {
      const sa = `${role}-user`;
      await k.core.createNamespacedServiceAccount({ namespace: jobs.name, body: { metadata: { name: sa } } });
      await k.rbac.createNamespacedRoleBinding({
        namespace: jobs.name,
        body: {
          metadata: { name: sa },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
          subjects: [{ kind: "ServiceAccount", name: sa, namespace: jobs.name }],
        },
      });
      const tok = (await k.core.createNamespacedServiceAccountToken({ namespace: jobs.name, name: sa, body: { spec: { expirationSeconds: 600 } } })).status!
        .token!;
      const user = await kubeClientsForToken(tok, sa);
      await waitFor(`the built-in ${role} role includes FineTuneJobs (aggregation)`, async () => {
        for (const verb of verbs) if (!(await can(user, { verb, group: "finetune.dev", resource: "finetunejobs", namespace: jobs.name }))) return false;
        return true;
      });
      if (role === "view") assert.equal(await can(user, { verb: "create", group: "finetune.dev", resource: "finetunejobs", namespace: jobs.name }), false);
    }

    // Events were recorded (events create), and no API call of the operator was ever refused.
    await waitFor(
      "events of the FineTuneJob",
      async () =>
        (await k.core.listNamespacedEvent({ namespace: jobs.name, fieldSelector: "involvedObject.kind=FineTuneJob,involvedObject.name=installed" })).items
          .length > 0,
    );
    const metrics = await op.metrics();
    assert.equal(metricValue(metrics, "finetune_api_requests_total", { code: "403" }), 0, "an API call of the operator was forbidden");
    const refused = op.logs.filter((l) => /forbidden|\b403\b/i.test(JSON.stringify(l)));
    assert.deepEqual(refused, [], "the operator logged a refusal");
    assert.equal(metricValue(metrics, "leader_election_master_status"), 1);
    assert.ok(metricValue(metrics, "finetune_jobs", { phase: "Succeeded" }) >= 1);
  });

  test("namespaced install (watchNamespace): a Role only, and the operator exactly as the Deployment runs it", async (t) => {
    const rel = await freshNamespace("install-ns", { t, clients: k });
    const jobs = await freshNamespace("install-ns-jobs", { t, clients: k });
    const inst = await install(t, rel.name, [`watchNamespace=${jobs.name}`]);
    assert.ok(!inst.objects.some((o) => o.kind === "ClusterRoleBinding"), "no cluster-wide permissions");
    await assertPermissions(
      inst.sa,
      [
        ["list finetune.dev/finetunejobs", jobs.name],
        ["watch /pods", jobs.name],
        ["create batch/jobs", jobs.name],
        ["update finetune.dev/finetunejobs/status", jobs.name],
      ],
      [
        ["list finetune.dev/finetunejobs"],
        ["list finetune.dev/finetunejobs", "default"],
        ["create batch/jobs", "default"],
        ["list /pods"],
        ["list /secrets", jobs.name],
        ["create authentication.k8s.io/tokenreviews"],
      ],
    );
    // No flag overrides the chart's env here: FINETUNE_WATCH_NAMESPACE comes from the Deployment.
    const op = await runAsDeployment(t, inst);
    assert.equal(op.logs.find((l) => l.msg === "starting")?.namespace, jobs.name);
    await createFtj(k, ftjManifest("scoped", jobs.name));
    await succeeded(jobs.name, "scoped", op);
    assert.equal(metricValue(await op.metrics(), "finetune_api_requests_total", { code: "403" }), 0, "an API call of the operator was forbidden");
  });
});
