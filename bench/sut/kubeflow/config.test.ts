import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import {
  jobsetConfig,
  selectInstallObjects,
  selectRuntime,
  trainerConfig,
  trainJobManifest,
  trainJobTerminal,
  webhookToLocal,
  withoutConversionWebhook,
} from "./config.ts";
import type { Obj } from "./kustomize.ts";

const o = (kind: string, name: string, extra: Record<string, unknown> = {}): Obj => ({ kind, metadata: { name }, ...extra });
const ports = { health: 20001, metrics: 20002, webhook: 20003 };

describe("what the benchmark installs", () => {
  it("keeps the release's namespace, CRDs, RBAC and webhooks, CRDs first; drops what the local processes replace", () => {
    const trainer = [
      o("Namespace", "kubeflow-system"),
      o("Deployment", "mgr"),
      o("Service", "svc"),
      o("ClusterRole", "tr"),
      o("CustomResourceDefinition", "trainjobs"),
      o("ServiceAccount", "tr-sa"),
      o("ValidatingWebhookConfiguration", "v"),
    ];
    const jobset = [
      o("Namespace", "jobset-system"),
      o("ServiceAccount", "js-sa"),
      o("CustomResourceDefinition", "jobsets"),
      o("Secret", "cert"),
      o("RoleBinding", "js-rb"),
      o("MutatingWebhookConfiguration", "m"),
    ];
    assert.deepEqual(
      selectInstallObjects(trainer, jobset).map((x) => `${x.kind}/${x.metadata!.name}`),
      [
        "Namespace/kubeflow-system",
        "CustomResourceDefinition/trainjobs",
        "CustomResourceDefinition/jobsets",
        "ClusterRole/tr",
        "ServiceAccount/tr-sa",
        "ValidatingWebhookConfiguration/v",
        "ServiceAccount/js-sa",
        "RoleBinding/js-rb",
        "MutatingWebhookConfiguration/m",
      ],
    );
  });

  it("picks the torch-distributed runtime", () => {
    const rts = [o("ClusterTrainingRuntime", "deepspeed-distributed"), o("ClusterTrainingRuntime", "torch-distributed")];
    assert.equal(selectRuntime(rts), rts[1]);
    assert.throws(() => selectRuntime([rts[0]!]), /no ClusterTrainingRuntime torch-distributed/);
  });

  it("webhooks call 127.0.0.1 on the process's port, with the run's CA, keeping each path", () => {
    const wh = o("MutatingWebhookConfiguration", "m", {
      webhooks: [
        { name: "a", clientConfig: { service: { name: "svc", namespace: "system", path: "/mutate-jobset" } }, objectSelector: { matchLabels: { x: "y" } } },
        { name: "b", clientConfig: { service: { name: "svc", namespace: "system", path: "/mutate--v1-pod" } } },
      ],
    });
    const out = webhookToLocal(wh, 9443, "Q0E=");
    assert.deepEqual(
      out.webhooks.map((w: { clientConfig: unknown }) => w.clientConfig),
      [
        { url: "https://127.0.0.1:9443/mutate-jobset", caBundle: "Q0E=" },
        { url: "https://127.0.0.1:9443/mutate--v1-pod", caBundle: "Q0E=" },
      ],
    );
    assert.deepEqual(out.webhooks[0].objectSelector, { matchLabels: { x: "y" } });
    assert.ok(wh.webhooks[0].clientConfig.service, "input untouched");
  });

  it("JobSet's CRD without its conversion webhook", () => {
    const crd = o("CustomResourceDefinition", "jobsets.jobset.x-k8s.io", {
      spec: { group: "jobset.x-k8s.io", conversion: { strategy: "Webhook", webhook: {} } },
    });
    crd.metadata!.annotations = { "cert-manager.io/inject-ca-from": "x/y", keep: "1" };
    const out = withoutConversionWebhook(crd);
    assert.deepEqual(out.spec, { group: "jobset.x-k8s.io", conversion: { strategy: "None" } });
    assert.deepEqual(out.metadata!.annotations, { keep: "1" });
  });
});

describe("process configuration", () => {
  it("Trainer: release settings, ports on 127.0.0.1, Lease namespace set, certificate management off", () => {
    const c = parse(trainerConfig({ ports, leaseNamespace: "kubeflow-system" }));
    assert.equal(c.kind, "Configuration");
    assert.equal(c.apiVersion, "config.trainer.kubeflow.org/v1alpha1");
    assert.equal(c.health.healthProbeBindAddress, "127.0.0.1:20001");
    assert.equal(c.metrics.bindAddress, "127.0.0.1:20002");
    assert.deepEqual(c.webhook, { port: 20003, host: "127.0.0.1" });
    assert.equal(c.leaderElection.leaderElect, true);
    assert.equal(c.leaderElection.resourceNamespace, "kubeflow-system");
    assert.deepEqual(c.certManagement, { enable: false });
    assert.deepEqual(c.clientConnection, { qps: 50, burst: 100 });
    assert.equal(c.controller.groupKindConcurrency["TrainJob.trainer.kubeflow.org"], 5);
    assert.equal(parse(trainerConfig({ ports, leaseNamespace: "n", qps: 500, burst: 600 })).clientConnection.qps, 500);
  });

  it("JobSet: its defaults (QPS/burst 500), certificates from files for the webhook and metrics servers", () => {
    const c = parse(jobsetConfig({ ports, leaseNamespace: "kubeflow-system", certDir: "/run/certs" }));
    assert.equal(c.apiVersion, "config.jobset.x-k8s.io/v1alpha1");
    assert.deepEqual(c.internalCertManagement, { enable: false });
    assert.deepEqual(c.webhook, { port: 20003, host: "127.0.0.1", certDir: "/run/certs" });
    assert.deepEqual(c.metrics, { bindAddress: "127.0.0.1:20002", certDir: "/run/certs" });
    // JobSet registers endpoint names on the ServeMux as given: a name without "/" panics, so the defaults stay.
    assert.deepEqual(c.health, { healthProbeBindAddress: "127.0.0.1:20001" });
    assert.equal(c.leaderElection.resourceNamespace, "kubeflow-system");
    assert.deepEqual(c.clientConnection, { qps: 500, burst: 500 });
  });
});

describe("TrainJob", () => {
  it("on torch-distributed, with the pod fate and toleration patched into the node replicatedJob's pods", () => {
    const tj = trainJobManifest("job-1", "ns", {
      nodes: 2,
      gpusPerNode: 8,
      podAnnotations: { fate: "succeed" },
      tolerations: [{ key: "k", operator: "Exists" }],
    });
    assert.deepEqual(tj.metadata, { name: "job-1", namespace: "ns" });
    assert.deepEqual(tj.spec.runtimeRef, { name: "torch-distributed" });
    assert.deepEqual(tj.spec.trainer, { numNodes: 2, resourcesPerNode: { limits: { "nvidia.com/gpu": "8" } } });
    const [patch] = tj.spec.runtimePatches;
    assert.equal(patch.manager, "bench.finetune.dev/harness");
    const [rj] = patch.trainingRuntimeSpec.template.spec.replicatedJobs;
    assert.equal(rj.name, "node");
    assert.deepEqual(rj.template.spec.template, { metadata: { annotations: { fate: "succeed" } }, spec: { tolerations: [{ key: "k", operator: "Exists" }] } });
  });

  it("terminal from the Complete / Failed conditions only", () => {
    const cond = (type: string, status = "True") => ({ status: { conditions: [{ type, status }] } });
    assert.equal(trainJobTerminal(o("TrainJob", "a", cond("Complete"))), "Succeeded");
    assert.equal(trainJobTerminal(o("TrainJob", "a", cond("Failed"))), "Failed");
    assert.equal(trainJobTerminal(o("TrainJob", "a", cond("Complete", "False"))), undefined);
    assert.equal(trainJobTerminal(o("TrainJob", "a", cond("Created"))), undefined);
    assert.equal(trainJobTerminal(o("TrainJob", "a")), undefined);
  });
});
