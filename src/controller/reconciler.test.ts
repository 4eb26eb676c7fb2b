import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "./plan.ts";
import { executionBatches } from "./reconciler.ts";

const create = (kind: string, name: string): Action => ({ kind: "create", object: { apiVersion: "v1", kind, metadata: { name } } });
const names = (batches: Action[][]) => batches.map((b) => b.map((a) => (a.kind === "create" ? a.object.metadata?.name : a.kind === "delete" ? `delete ${a.name}` : a.kind)));

describe("executionBatches", () => {
  it("creates the base objects together, then the Job after them", () => {
    const batches = executionBatches([create("PersistentVolumeClaim", "out"), create("ConfigMap", "cfg"), create("Service", "ranks"), create("Job", "train-0")]);
    assert.deepEqual(names(batches), [["out", "cfg", "ranks"], ["train-0"]]);
  });

  it("keeps everything else in order, one at a time", () => {
    const del: Action = { kind: "delete", apiVersion: "batch/v1", resource: "jobs", namespace: "ns", name: "train-0", reason: "restart" };
    const batches = executionBatches([del, create("ConfigMap", "cfg"), create("Job", "train-1"), create("Service", "ranks")]);
    assert.deepEqual(names(batches), [["delete train-0"], ["cfg"], ["train-1"], ["ranks"]]);
  });

  it("no actions, no batches", () => {
    assert.deepEqual(executionBatches([]), []);
  });
});
