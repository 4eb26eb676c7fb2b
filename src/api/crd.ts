/**
 * Builds the FineTuneJob CustomResourceDefinition from the zod schemas.
 * zod's OpenAPI output is close to, but not, a structural CRD schema; the
 * post-pass below fixes exactly the known differences (see kubernetes.md).
 */
import { z } from "zod";
import { FineTuneJobSpecSchema, FineTuneJobStatusSchema } from "./schema.ts";
import { GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION } from "./group.ts";
import { MAX_JOB_NAME_LENGTH } from "../render/names.ts";

type JsonSchema = Record<string, unknown>;

const JS_SAFE_INT = 9007199254740991;

/** Rewrites one zod-generated node (and its children) into a structural CRD schema node. */
export function toStructural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toStructural);
  if (node === null || typeof node !== "object") return node;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(node as JsonSchema)) {
    if (key === "$schema") continue;
    out[key] = key === "default" || key === "enum" ? value : toStructural(value);
  }
  // The API server rejects additionalProperties beside properties; unknown
  // fields are pruned anyway, which is what .strict() means for us.
  if ("properties" in out && "additionalProperties" in out) delete out.additionalProperties;
  if (out["x-kubernetes-preserve-unknown-fields"] === true) {
    delete out.additionalProperties;
    out.type = "object";
  }
  if (out["x-kubernetes-int-or-string"] === true) {
    delete out.anyOf;
    delete out.type;
  }
  if (out.maximum === JS_SAFE_INT) delete out.maximum;
  if (out.minimum === -JS_SAFE_INT) delete out.minimum;
  return out;
}

function openApi(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { target: "openapi-3.0", io: "input", unrepresentable: "any" })) as JsonSchema;
}

/**
 * Admission-time rules. Cheap scalar comparisons only: CEL cost is budgeted
 * by the API server and the embedded config is unbounded, so config drift
 * after start is caught by the controller (status.specHash) instead.
 */
const specRules = [
  { rule: "has(self.config) != has(self.configFrom)", message: "exactly one of spec.config and spec.configFrom must be set" },
  {
    rule: "!has(self.storage) || !has(self.storage.output) || !has(self.storage.output.existingClaim) || !has(self.storage.output.deletionPolicy) || self.storage.output.deletionPolicy == 'Retain'",
    message: "storage.output.deletionPolicy Delete applies only to claims the operator creates; an existingClaim is never deleted",
  },
];

/** Once a job has started, the shape of the run can no longer change under it; names fit the children's names. */
const rootRules = [
  {
    // Refused at admission rather than failing after creation: pod hostnames <name>-train-<attempt>-<index> must fit in 63.
    rule: `!has(self.metadata.name) || size(self.metadata.name) <= ${MAX_JOB_NAME_LENGTH}`,
    message: `metadata.name must be at most ${MAX_JOB_NAME_LENGTH} characters (the training pods' hostnames, <name>-train-<attempt>-<index>, must fit in 63)`,
  },
  {
    rule: "!has(oldSelf.status) || !has(oldSelf.status.startTime) || (self.spec.nodes == oldSelf.spec.nodes && self.spec.gpusPerNode == oldSelf.spec.gpusPerNode)",
    message: "spec.nodes and spec.gpusPerNode are immutable once the job has started; delete and re-create the FineTuneJob to change them",
  },
];

export function buildCrd(): Record<string, unknown> {
  const spec = openApi(FineTuneJobSpecSchema);
  spec["x-kubernetes-validations"] = specRules;
  const status = openApi(FineTuneJobStatusSchema);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES, categories: ["all", "finetune"] },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Phase", type: "string", jsonPath: ".status.phase" },
            { name: "Nodes", type: "integer", jsonPath: ".spec.nodes" },
            { name: "GPUs/node", type: "integer", jsonPath: ".spec.gpusPerNode" },
            { name: "Progress", type: "string", jsonPath: ".status.progress.summary" },
            { name: "Loss", type: "number", jsonPath: ".status.progress.loss" },
            { name: "Restarts", type: "integer", jsonPath: ".status.restarts" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description:
                "FineTuneJob runs an Axolotl fine-tune: preprocess, multi-node training as one gang with resume from the newest complete checkpoint, and LoRA merge.",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: spec,
                status: status,
              },
              "x-kubernetes-validations": rootRules,
            },
          },
        },
      ],
    },
  };
}
