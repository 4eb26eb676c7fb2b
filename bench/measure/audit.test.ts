import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { countRequests, parseAuditLine, perJob, readAuditLog } from "./audit.ts";

const USER = "system:serviceaccount:finetune-system:finetune-operator";
let id = 0;
function line(
  verb: string,
  resource: string,
  opts: { user?: string; sub?: string; ns?: string; at?: string; code?: number; stage?: string; auditID?: string } = {},
): string {
  return JSON.stringify({
    kind: "Event",
    apiVersion: "audit.k8s.io/v1",
    level: "Metadata",
    auditID: opts.auditID ?? `id-${++id}`,
    stage: opts.stage ?? "ResponseComplete",
    requestURI: "/x",
    verb,
    user: { username: opts.user ?? USER, groups: ["system:serviceaccounts"] },
    objectRef: { resource, ...(opts.sub ? { subresource: opts.sub } : {}), ...(opts.ns ? { namespace: opts.ns } : {}), apiVersion: "v1" },
    responseStatus: { metadata: {}, code: opts.code ?? 200 },
    requestReceivedTimestamp: opts.at ?? "2026-01-01T00:00:01.500000Z",
    stageTimestamp: opts.at ?? "2026-01-01T00:00:01.600000Z",
  });
}

describe("audit log aggregation", () => {
  it("parses a Metadata event, with subresource and ms timestamp", () => {
    const r = parseAuditLine(line("patch", "pods", { sub: "status", ns: "a", at: "2026-01-01T00:00:01.250000Z" }));
    assert.equal(r?.resource, "pods/status");
    assert.equal(r?.verb, "patch");
    assert.equal(r?.namespace, "a");
    assert.equal(r?.receivedMs, Date.parse("2026-01-01T00:00:01.250Z"));
    assert.equal(parseAuditLine("not json"), undefined);
    assert.equal(parseAuditLine(JSON.stringify({ kind: "Status" })), undefined);
    assert.equal(
      parseAuditLine(JSON.stringify({ kind: "Event", auditID: "n", verb: "get", user: { username: "u" }, requestReceivedTimestamp: "2026-01-01T00:00:00Z" }))
        ?.resource,
      "(non-resource)",
    );
  });

  it("counts one user's requests by verb and resource; watches once; Events and Leases apart", () => {
    const reqs = [
      line("create", "jobs"),
      line("create", "services"),
      line("update", "finetunejobs", { sub: "status" }),
      line("patch", "finetunejobs", { sub: "status", code: 409 }),
      line("create", "events"),
      line("patch", "events"),
      line("update", "leases"),
      line("get", "leases"),
      line("list", "pods"),
      line("watch", "pods", { stage: "ResponseStarted", auditID: "w1" }),
      line("watch", "pods", { stage: "ResponseComplete", auditID: "w1" }),
      line("create", "jobs", { user: "someone-else" }),
    ].map((l) => parseAuditLine(l)!);
    const c = countRequests(reqs, { user: USER });
    assert.equal(c.total, 10);
    assert.equal(c.writes, 4);
    assert.equal(c.eventWrites, 2);
    assert.equal(c.leaseWrites, 1);
    assert.equal(c.gets, 1);
    assert.deepEqual(c.lists, { pods: 1 });
    assert.deepEqual(c.watches, { pods: 1 });
    assert.deepEqual(c.errors, { "409": 1 });
    assert.deepEqual(c.errorsByVerbResource, { "patch finetunejobs/status 409": 1 });
    assert.equal(c.byVerbResource["create jobs"], 1);
    assert.equal(c.byVerbResource["patch finetunejobs/status"], 1);
    assert.deepEqual(perJob({ a: 3, b: 1 }, 3), { a: 1, b: 0.33 });
  });

  it("filters on a time window", () => {
    const reqs = ["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"].map((at) => parseAuditLine(line("create", "jobs", { at }))!);
    const c = countRequests(reqs, { user: USER, fromMs: Date.parse("2026-01-01T00:00:02Z"), toMs: Date.parse("2026-01-01T00:00:02.5Z") });
    assert.equal(c.total, 1);
  });

  it("counts several users together (a controller of two processes)", () => {
    const reqs = [line("create", "jobs"), line("create", "jobsets", { user: "jobset" }), line("create", "pods", { user: "admin" })].map((l) =>
      parseAuditLine(l)!,
    );
    const c = countRequests(reqs, { user: [USER, "jobset"] });
    assert.equal(c.total, 2);
    assert.deepEqual(c.byVerbResource, { "create jobs": 1, "create jobsets": 1 });
  });

  it("reads a log file, keeping only the user's lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), "audit-"));
    try {
      const file = join(dir, "audit.log");
      writeFileSync(file, [line("create", "jobs"), line("get", "pods", { user: "admin" }), "", "garbage"].join("\n") + "\n");
      const reqs = await readAuditLog(file, USER);
      assert.deepEqual(
        reqs.map((r) => `${r.verb} ${r.resource}`),
        ["create jobs"],
      );
      const both = await readAuditLog(file, [USER, "admin"]);
      assert.deepEqual(
        both.map((r) => `${r.verb} ${r.resource}`),
        ["create jobs", "get pods"],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
