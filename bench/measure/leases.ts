/**
 * Leader election as the API server saw it: from the audit log, the controller's
 * Lease renewals (successful updates of each Lease it writes) and the gaps
 * between them. A leader renews every retry period; a gap longer than the renew
 * deadline means the leader gave up (or was about to), whatever its own metrics
 * say. Independent of the system under test's counters.
 */
import type { AuditRequest } from "./audit.ts";
import { distribution, type Distribution } from "./stats.ts";

export interface LeaseRenewals {
  /** Leases the controller wrote in the window (one per leader-elected process). */
  leases: string[];
  /** Successful updates of those Leases. */
  renewals: number;
  /** Lease writes the API server refused or failed (409 conflicts, 5xx, timeouts). */
  failed: number;
  /** Time between successive successful renewals of one Lease, over all Leases (ms). */
  gapMs?: Distribution;
}

/** Renewals of the Leases that `users` updated in [fromMs, toMs] (both stages of a request count once). */
export function leaseRenewals(requests: Iterable<AuditRequest>, users: readonly string[], fromMs: number, toMs: number): LeaseRenewals {
  const who = new Set(users);
  const seen = new Set<string>();
  const byLease = new Map<string, number[]>();
  let failed = 0;
  for (const r of requests) {
    if (!who.has(r.user) || r.resource !== "leases" || (r.verb !== "update" && r.verb !== "patch")) continue;
    if (r.receivedMs < fromMs || r.receivedMs > toMs || seen.has(r.auditID)) continue;
    seen.add(r.auditID);
    const lease = `${r.namespace ?? ""}/${r.name ?? ""}`;
    if (r.code === undefined || r.code >= 300) {
      failed++;
      continue;
    }
    let times = byLease.get(lease);
    if (!times) byLease.set(lease, (times = []));
    times.push(r.receivedMs);
  }
  const gaps: number[] = [];
  let renewals = 0;
  for (const times of byLease.values()) {
    times.sort((a, b) => a - b);
    renewals += times.length;
    for (let i = 1; i < times.length; i++) gaps.push(times[i]! - times[i - 1]!);
  }
  const gapMs = distribution(gaps);
  return { leases: [...byLease.keys()].sort(), renewals, failed, ...(gapMs ? { gapMs } : {}) };
}
