import assert from "node:assert/strict";
import { test } from "node:test";
import type { AuditRequest } from "./audit.ts";
import { leaseRenewals } from "./leases.ts";

let id = 0;
const req = (over: Partial<AuditRequest>): AuditRequest => ({
  auditID: String(id++),
  user: "op",
  verb: "update",
  resource: "leases",
  namespace: "ns",
  name: "a",
  code: 200,
  receivedMs: 0,
  ...over,
});

test("gaps are taken per Lease, between successful renewals of the controller's users, inside the window", () => {
  const requests = [
    req({ receivedMs: 1000 }),
    req({ receivedMs: 3000 }),
    req({ receivedMs: 9000 }), // a 6 s gap on Lease a
    req({ receivedMs: 4000, code: 409 }), // refused: counted as failed, not as a renewal
    req({ receivedMs: 2000, name: "b" }),
    req({ receivedMs: 4500, name: "b" }), // 2.5 s on Lease b, interleaved with a's renewals
    req({ receivedMs: 5000, user: "someone-else" }),
    req({ receivedMs: 5000, verb: "get" }),
    req({ receivedMs: 5000, resource: "configmaps" }),
    req({ receivedMs: 50_000 }), // outside the window
  ];
  const dup = { ...requests[0]! }; // the same request's second audit stage
  const r = leaseRenewals([...requests, dup], ["op"], 0, 10_000);
  assert.deepEqual(r.leases, ["ns/a", "ns/b"]);
  assert.equal(r.renewals, 5);
  assert.equal(r.failed, 1);
  assert.equal(r.gapMs?.count, 3);
  assert.equal(r.gapMs?.max, 6000);
  assert.equal(r.gapMs?.min, 2000);
});

test("no renewals: no gap distribution", () => {
  const r = leaseRenewals([req({ user: "x" })], ["op"], 0, 10_000);
  assert.deepEqual(r, { leases: [], renewals: 0, failed: 0 });
});
