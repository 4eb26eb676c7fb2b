/**
 * API requests as the API server counted them: reads the kube-apiserver audit
 * log (JSON lines, audit.k8s.io/v1 Events, policy level Metadata) and
 * aggregates one user's requests in a time window by verb and resource.
 * Knows nothing about the system under test beyond its user name.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";

export interface AuditRequest {
  auditID: string;
  user: string;
  verb: string;
  /** resource, or resource/subresource (e.g. "pods/status"); "(non-resource)" for /healthz and the like. */
  resource: string;
  namespace?: string;
  /** objectRef.name, when the request names one object (a Lease renewal does). */
  name?: string;
  code?: number;
  /** requestReceivedTimestamp, ms since the epoch. */
  receivedMs: number;
}

export const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

/** One audit log line → a request (undefined for lines that are not audit Events). Both stages of a watch give the same auditID. */
export function parseAuditLine(line: string): AuditRequest | undefined {
  if (!line.trim()) return undefined;
  let e: any;
  try {
    e = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (e?.kind !== "Event" || typeof e.auditID !== "string") return undefined;
  const ref = e.objectRef ?? {};
  const resource = ref.resource ? (ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource) : "(non-resource)";
  return {
    auditID: e.auditID,
    user: e.user?.username ?? "",
    verb: e.verb ?? "",
    resource,
    ...(ref.namespace ? { namespace: ref.namespace } : {}),
    ...(ref.name ? { name: ref.name } : {}),
    ...(typeof e.responseStatus?.code === "number" ? { code: e.responseStatus.code } : {}),
    receivedMs: Date.parse(e.requestReceivedTimestamp),
  };
}

export interface AuditCounts {
  /** Distinct requests (a watch's ResponseStarted and ResponseComplete count once). */
  total: number;
  /** "verb resource" → requests. */
  byVerbResource: Record<string, number>;
  /** Writes (create/update/patch/delete) excluding Events and Leases: the per-job lifecycle cost. */
  writes: number;
  /** Writes to Events (reported apart). */
  eventWrites: number;
  /** Writes to Leases (leader election; independent of the number of jobs). */
  leaseWrites: number;
  /** GETs. */
  gets: number;
  /** LIST starts by resource. */
  lists: Record<string, number>;
  /** WATCH starts by resource. */
  watches: Record<string, number>;
  /** Requests answered 4xx/5xx by code (409 conflicts, 403 refusals, 429 throttling...). */
  errors: Record<string, number>;
  /** "verb resource code" → failed requests. */
  errorsByVerbResource: Record<string, number>;
}

export interface AuditFilter {
  /** One user, or several counted together (a controller made of more than one process, each with its own ServiceAccount). */
  user: string | readonly string[];
  fromMs?: number;
  toMs?: number;
}

/** Counts the requests of `filter.user` received in [fromMs, toMs]. */
export function countRequests(requests: Iterable<AuditRequest>, filter: AuditFilter): AuditCounts {
  const users = new Set(typeof filter.user === "string" ? [filter.user] : filter.user);
  const seen = new Set<string>();
  const out: AuditCounts = {
    total: 0,
    byVerbResource: {},
    writes: 0,
    eventWrites: 0,
    leaseWrites: 0,
    gets: 0,
    lists: {},
    watches: {},
    errors: {},
    errorsByVerbResource: {},
  };
  for (const r of requests) {
    if (!users.has(r.user)) continue;
    if (filter.fromMs !== undefined && r.receivedMs < filter.fromMs) continue;
    if (filter.toMs !== undefined && r.receivedMs > filter.toMs) continue;
    if (seen.has(r.auditID)) continue;
    seen.add(r.auditID);
    out.total++;
    const key = `${r.verb} ${r.resource}`;
    out.byVerbResource[key] = (out.byVerbResource[key] ?? 0) + 1;
    if (WRITE_VERBS.has(r.verb)) {
      if (r.resource === "events") out.eventWrites++;
      else if (r.resource === "leases") out.leaseWrites++;
      else out.writes++;
    } else if (r.verb === "get") out.gets++;
    else if (r.verb === "list") out.lists[r.resource] = (out.lists[r.resource] ?? 0) + 1;
    else if (r.verb === "watch") out.watches[r.resource] = (out.watches[r.resource] ?? 0) + 1;
    if (r.code !== undefined && r.code >= 400) {
      out.errors[String(r.code)] = (out.errors[String(r.code)] ?? 0) + 1;
      const ek = `${key} ${r.code}`;
      out.errorsByVerbResource[ek] = (out.errorsByVerbResource[ek] ?? 0) + 1;
    }
  }
  return out;
}

/** Every request of `user` (or of any of several users) in the audit log file (streamed; the file may be large). */
export async function readAuditLog(path: string, user?: string | readonly string[]): Promise<AuditRequest[]> {
  const users = user === undefined ? undefined : typeof user === "string" ? [user] : user;
  const out: AuditRequest[] = [];
  const lines = createInterface({ input: createReadStream(path, { encoding: "utf8" }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (users !== undefined && !users.some((u) => line.includes(u))) continue;
    const r = parseAuditLine(line);
    if (r && (users === undefined || users.includes(r.user))) out.push(r);
  }
  return out;
}

/** Divides every count by `n` (per-job figures), rounded to 0.01. */
export function perJob(counts: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / n) * 100) / 100]));
}
