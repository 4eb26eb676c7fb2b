import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { applyJsonPatch, kustomize, transform } from "./kustomize.ts";

/** A tree shaped like JobSet's config/default under Trainer's overlay: nested kustomizations, a prefix, a remote resource, a JSON 6902 patch. */
function tree(): string {
  const root = mkdtempSync(join(tmpdir(), "kustomize-"));
  const w = (path: string, text: string) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  w(
    "overlay/kustomization.yaml",
    "namespace: outer-system\nresources:\n  - ns.yaml\n  - ../base\n  - https://example.invalid/remote.yaml\nlabels:\n  - pairs:\n      team: ml\n    includeSelectors: false\nconfigMapGenerator:\n  - name: cfg\n",
  );
  w("overlay/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: outer-system\n");
  w("base/kustomization.yaml", "namespace: inner-system\nnamePrefix: js-\nresources:\n  - rbac.yaml\n  - webhook\npatches:\n  - path: deploy_patch.yaml\n");
  w("base/deploy_patch.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: manager\n");
  w(
    "base/rbac.yaml",
    [
      "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: controller-manager\n  namespace: system",
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\nrules: []",
      "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: manager-rolebinding\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: manager-role\nsubjects:\n  - kind: ServiceAccount\n    name: controller-manager\n    namespace: system\n  - kind: Group\n    name: system:authenticated",
      "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.example.com\nspec: {}",
    ].join("\n---\n") + "\n",
  );
  w(
    "base/webhook/kustomization.yaml",
    "resources:\n  - manifests.yaml\npatches:\n  - path: patch.yaml\n    target:\n      kind: MutatingWebhookConfiguration\n      name: mutating-webhook-configuration\n",
  );
  w(
    "base/webhook/manifests.yaml",
    "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: mutating-webhook-configuration\nwebhooks:\n  - name: a\n    clientConfig:\n      service:\n        name: webhook-service\n        path: /mutate\n",
  );
  w("base/webhook/patch.yaml", "- op: add\n  path: /webhooks/0/objectSelector\n  value:\n    matchLabels:\n      managed: 'yes'\n");
  return root;
}

describe("kustomize subset", () => {
  const root = tree();
  after(() => rmSync(root, { recursive: true, force: true }));

  it("reads nested resources depth first, inner transforms before outer ones", () => {
    const { objects } = kustomize(join(root, "overlay"));
    const byKind = Object.fromEntries(objects.map((o) => [o.kind!, o]));
    assert.deepEqual(
      objects.map((o) => o.kind),
      ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "MutatingWebhookConfiguration"],
    );
    // namePrefix from the inner tree; not on CRDs or Namespaces.
    assert.equal(byKind.ServiceAccount!.metadata!.name, "js-controller-manager");
    assert.equal(byKind.CustomResourceDefinition!.metadata!.name, "things.example.com");
    assert.equal(byKind.MutatingWebhookConfiguration!.metadata!.name, "js-mutating-webhook-configuration");
    // The outer namespace wins over the inner one; cluster-scoped kinds get none.
    assert.equal(byKind.ServiceAccount!.metadata!.namespace, "outer-system");
    assert.equal(byKind.ClusterRole!.metadata!.namespace, undefined);
    // Bindings follow the renamed role and ServiceAccount; other subjects are untouched.
    const crb = byKind.ClusterRoleBinding!;
    assert.equal(crb.roleRef.name, "js-manager-role");
    assert.deepEqual(crb.subjects, [
      { kind: "ServiceAccount", name: "js-controller-manager", namespace: "outer-system" },
      { kind: "Group", name: "system:authenticated" },
    ]);
    // The JSON 6902 patch was aimed by the name before the prefix; labels land on metadata.
    assert.deepEqual(byKind.MutatingWebhookConfiguration!.webhooks[0].objectSelector, { matchLabels: { managed: "yes" } });
    assert.equal(byKind.Namespace!.metadata!.labels!.team, "ml");
  });

  it("reports what it leaves out", () => {
    const { skipped } = kustomize(join(root, "overlay"));
    assert.equal(skipped.length, 3);
    assert.match(skipped.join("\n"), /remote resource https:\/\/example.invalid\/remote.yaml/);
    assert.match(skipped.join("\n"), /strategic-merge patch deploy_patch.yaml/);
    assert.match(skipped.join("\n"), /configMapGenerator/);
  });

  it("fails on a directory without a kustomization", () => {
    assert.throws(() => kustomize(join(root, "base", "webhook", "none")), /no kustomization/);
  });
});

describe("JSON 6902 patches and transforms", () => {
  it("add, replace and remove on objects and arrays, without touching the input", () => {
    const o = { kind: "X", metadata: { name: "x" }, spec: { list: [1, 2, 3], keep: true, drop: 1 } };
    const out = applyJsonPatch(o, [
      { op: "replace", path: "/spec/list/0", value: 9 },
      { op: "add", path: "/spec/list/-", value: 4 },
      { op: "remove", path: "/spec/drop" },
      { op: "add", path: "/metadata/annotations", value: { "a/b": "c" } },
    ]);
    assert.deepEqual(out.spec, { list: [9, 2, 3, 4], keep: true });
    assert.deepEqual(out.metadata!.annotations, { "a/b": "c" });
    assert.deepEqual(o.spec.list, [1, 2, 3]);
    assert.throws(() => applyJsonPatch(o, [{ op: "add", path: "/nope/deeper/x", value: 1 }]), /does not exist/);
  });

  it("a namespace over objects already namespaced, as Trainer's overlay does over JobSet's tree", () => {
    const [sa, rb] = transform(
      [
        { kind: "ServiceAccount", metadata: { name: "sa", namespace: "jobset-system" } },
        {
          kind: "RoleBinding",
          metadata: { name: "rb", namespace: "jobset-system" },
          roleRef: { kind: "Role", name: "r" },
          subjects: [{ kind: "ServiceAccount", name: "sa", namespace: "jobset-system" }],
        },
      ],
      { namespace: "kubeflow-system" },
    );
    assert.equal(sa!.metadata!.namespace, "kubeflow-system");
    assert.equal(rb!.subjects[0].namespace, "kubeflow-system");
    assert.equal(rb!.roleRef.name, "r");
  });
});
