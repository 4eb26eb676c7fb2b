import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

import { buildCrd, toStructural } from "./crd.ts";
import { CRD_PATH, renderCrdYaml } from "./crd-file.ts";
import { DEFAULT_TRAINER_IMAGE } from "./group.ts";

type Node = Record<string, unknown>;

const crd = buildCrd() as {
  spec: { versions: { schema: { openAPIV3Schema: Node }; additionalPrinterColumns: { name: string; type: string; jsonPath: string }[]; subresources: Node }[] };
};
const version = crd.spec.versions[0]!;
const root = version.schema.openAPIV3Schema;

/** Keywords a structural schema node may carry (apiextensions.k8s.io/v1 JSONSchemaProps, as this CRD uses them). */
const ALLOWED_KEYS = new Set([
  "type",
  "description",
  "properties",
  "items",
  "additionalProperties",
  "required",
  "default",
  "enum",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "pattern",
  "format",
  "x-kubernetes-preserve-unknown-fields",
  "x-kubernetes-int-or-string",
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-embedded-resource",
]);

/** Every schema node with its path: the node, its properties, items and (schema-valued) additionalProperties. */
function schemaNodes(node: Node, path = "openAPIV3Schema"): { path: string; node: Node }[] {
  const out = [{ path, node }];
  const props = node.properties as Record<string, Node> | undefined;
  for (const [key, child] of Object.entries(props ?? {})) out.push(...schemaNodes(child, `${path}.${key}`));
  if (node.items && typeof node.items === "object") out.push(...schemaNodes(node.items as Node, `${path}[]`));
  if (node.additionalProperties && typeof node.additionalProperties === "object") out.push(...schemaNodes(node.additionalProperties as Node, `${path}{}`));
  return out;
}

function at(path: string): Node {
  let node: Node = root;
  for (const part of path.split(".")) {
    const next = (node.properties as Record<string, Node> | undefined)?.[part];
    assert.ok(next, `no schema node at ${path} (missing ${part})`);
    node = next;
  }
  return node;
}

describe("committed CRD", () => {
  it("crds/finetune.dev_finetunejobs.yaml is up to date with src/api/schema.ts", () => {
    const committed = readFileSync(fileURLToPath(CRD_PATH), "utf8");
    assert.ok(
      committed === renderCrdYaml(),
      `${fileURLToPath(CRD_PATH)} is stale: it differs from what src/api/schema.ts generates. Run \`npm run generate\` and commit the result.`,
    );
  });

  it("parses back to exactly the generated object", () => {
    assert.deepEqual(parse(renderCrdYaml()), JSON.parse(JSON.stringify(buildCrd())));
    assert.match(renderCrdYaml(), /^# Generated from src\/api\/schema\.ts by `npm run generate`/);
  });
});

describe("generated schema is structural", () => {
  const nodes = schemaNodes(root);

  it("walks a realistic number of nodes", () => {
    assert.ok(nodes.length > 50, `only ${nodes.length} schema nodes`);
  });

  it("has no additionalProperties beside properties", () => {
    for (const { path, node } of nodes) {
      assert.ok(!("properties" in node && "additionalProperties" in node), `${path} has both properties and additionalProperties`);
    }
  });

  it("has no $ref, anyOf, oneOf, allOf, not, nullable or $schema anywhere", () => {
    for (const { path, node } of nodes) {
      for (const key of ["$ref", "anyOf", "oneOf", "allOf", "not", "nullable", "$schema", "propertyNames", "const"]) {
        assert.ok(!(key in node), `${path} has ${key}`);
      }
    }
  });

  it("uses only keywords the API server accepts", () => {
    for (const { path, node } of nodes) {
      for (const key of Object.keys(node)) assert.ok(ALLOWED_KEYS.has(key), `${path} has unsupported keyword ${key}`);
    }
  });

  it("gives every node a type, or preserve-unknown-fields / int-or-string", () => {
    for (const { path, node } of nodes) {
      const ok = typeof node.type === "string" || node["x-kubernetes-preserve-unknown-fields"] === true || node["x-kubernetes-int-or-string"] === true;
      assert.ok(ok, `${path} has no type: ${JSON.stringify(node)}`);
    }
  });

  it("int-or-string nodes carry no type (the API server rejects both)", () => {
    const intOrString = nodes.filter(({ node }) => node["x-kubernetes-int-or-string"] === true);
    assert.ok(intOrString.length >= 4, "quantities (size, sharedMemory, cpu, memory) are int-or-string");
    for (const { path, node } of intOrString) assert.equal(node.type, undefined, `${path} is int-or-string and has type ${String(node.type)}`);
  });

  it("drops the JS safe-integer bounds zod adds to plain integers", () => {
    for (const { path, node } of nodes) {
      assert.notEqual(node.maximum, Number.MAX_SAFE_INTEGER, `${path}.maximum`);
      assert.notEqual(node.minimum, -Number.MAX_SAFE_INTEGER, `${path}.minimum`);
    }
  });

  it("required lists only declared properties", () => {
    for (const { path, node } of nodes) {
      for (const key of (node.required as string[] | undefined) ?? []) {
        assert.ok((node.properties as Node | undefined)?.[key], `${path} requires undeclared ${key}`);
      }
    }
  });

  it("spec.config and embedded Kubernetes objects preserve unknown fields", () => {
    const config = at("spec.config");
    assert.equal(config.type, "object");
    assert.equal(config["x-kubernetes-preserve-unknown-fields"], true);
    assert.equal(config.additionalProperties, undefined);
    for (const path of ["spec.scheduling.affinity"]) assert.equal(at(path)["x-kubernetes-preserve-unknown-fields"], true, path);
    for (const path of ["spec.scheduling.tolerations", "spec.volumes", "spec.volumeMounts", "spec.env", "spec.envFrom"]) {
      const items = at(path).items as Node;
      assert.equal(items.type, "object", path);
      assert.equal(items["x-kubernetes-preserve-unknown-fields"], true, `${path}[] preserves unknown fields`);
    }
  });

  it("string maps keep additionalProperties (they have no properties)", () => {
    assert.deepEqual(at("spec.scheduling.nodeSelector").additionalProperties, { type: "string" });
    assert.deepEqual(at("spec.podLabels").additionalProperties, { type: "string" });
  });

  it("conditions are a map list keyed by type", () => {
    const conditions = at("status.conditions");
    assert.equal(conditions["x-kubernetes-list-type"], "map");
    assert.deepEqual(conditions["x-kubernetes-list-map-keys"], ["type"]);
    assert.deepEqual(((conditions.items as Node).required as string[]).toSorted(), ["lastTransitionTime", "message", "reason", "status", "type"]);
  });
});

describe("defaults", () => {
  it("pins the trainer image (never latest)", () => {
    const image = at("spec.image").default;
    assert.equal(image, DEFAULT_TRAINER_IMAGE);
    assert.equal(typeof image, "string");
    assert.match(image as string, /^[^:@]+(:[^:]+|@sha256:[0-9a-f]{64})$/, "image has a tag or digest");
    assert.doesNotMatch(image as string, /:latest$/);
  });

  it("has the documented spec defaults", () => {
    assert.equal(at("spec.maxRestarts").default, 3);
    assert.equal(at("spec.preprocess.enabled").default, true);
    assert.deepEqual(at("spec.preprocess").default, {});
    assert.equal(at("spec.merge.onCPU").default, false);
    assert.equal(at("spec.nodes").default, 1);
    assert.equal(at("spec.gpusPerNode").default, 1);
    assert.equal(at("spec.sharedMemory").default, "16Gi");
    assert.equal(at("spec.storage.output.size").default, "100Gi");
    assert.equal(at("spec.storage.output.deletionPolicy").default, "Retain");
    assert.equal(at("spec.telemetry").default, false);
    assert.equal(at("spec.suspend").default, false);
    assert.equal(at("spec.imagePullPolicy").default, "IfNotPresent");
    assert.equal(at("spec.merge.enabled").default, undefined, "merge.enabled defaults from the config (adapter), not in the schema");
  });

  it("keeps bounds on the integers users set", () => {
    assert.equal(at("spec.nodes").minimum, 1);
    assert.equal(at("spec.gpusPerNode").minimum, 1);
    assert.equal(at("spec.maxRestarts").minimum, 0);
    assert.deepEqual(at("spec.imagePullPolicy").enum, ["Always", "IfNotPresent", "Never"]);
  });
});

describe("CRD shape", () => {
  it("serves v1alpha1 with the status subresource", () => {
    assert.equal((crd as unknown as { metadata: { name: string } }).metadata.name, "finetunejobs.finetune.dev");
    assert.deepEqual(version.subresources, { status: {} });
    assert.deepEqual(root.required, ["spec"]);
  });

  it("has the printer columns kubectl get shows", () => {
    const cols = version.additionalPrinterColumns;
    assert.deepEqual(
      cols.map((c) => c.name),
      ["Phase", "Nodes", "GPUs/node", "Progress", "Loss", "Restarts", "Age"],
    );
    const byName = Object.fromEntries(cols.map((c) => [c.name, c]));
    assert.equal(byName.Phase!.jsonPath, ".status.phase");
    assert.equal(byName.Nodes!.jsonPath, ".spec.nodes");
    assert.equal(byName["GPUs/node"]!.jsonPath, ".spec.gpusPerNode");
    assert.equal(byName.Progress!.jsonPath, ".status.progress.summary");
    assert.equal(byName.Loss!.type, "number");
    assert.equal(byName.Restarts!.jsonPath, ".status.restarts");
    assert.equal(byName.Age!.type, "date");
  });

  it("has CEL rules for config/configFrom and immutable shape after start", () => {
    const specRules = at("spec")["x-kubernetes-validations"] as { rule: string }[];
    assert.ok(specRules.some((r) => r.rule.includes("has(self.config) != has(self.configFrom)")));
    const rootRules = root["x-kubernetes-validations"] as { rule: string }[];
    assert.ok(rootRules.some((r) => r.rule.includes("oldSelf.spec.nodes")));
  });
});

describe("toStructural", () => {
  it("rewrites the known differences of zod output", () => {
    assert.deepEqual(
      toStructural({
        $schema: "x",
        type: "object",
        properties: { a: { type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER } },
        additionalProperties: false,
      }),
      { type: "object", properties: { a: { type: "integer" } } },
    );
    assert.deepEqual(toStructural({ anyOf: [{ type: "string" }, { type: "number" }], "x-kubernetes-int-or-string": true }), {
      "x-kubernetes-int-or-string": true,
    });
    assert.deepEqual(toStructural({ type: "object", additionalProperties: {}, "x-kubernetes-preserve-unknown-fields": true }), {
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
    });
  });

  it("leaves default and enum values untouched", () => {
    const def = { properties: { x: 1 }, additionalProperties: true };
    assert.deepEqual(toStructural({ type: "object", default: def, enum: [def] }), { type: "object", default: def, enum: [def] });
  });
});
