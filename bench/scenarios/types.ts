/** What scenarios get (context) and give back (results); shared by run.ts and report.ts. */
import type { KubeClients } from "../../e2e/lib/index.ts";
import type { AuditCounts } from "../measure/audit.ts";
import type { Step } from "../measure/breakdown.ts";
import type { LeaseRenewals } from "../measure/leases.ts";
import type { Distribution } from "../measure/stats.ts";
import type { JobShape, SystemUnderTest } from "../sut/types.ts";

export interface BenchContext {
  admin: KubeClients;
  sut: SystemUnderTest;
  /** Path of the API server's audit log. */
  auditLog: string;
  /** Parallel create calls. */
  concurrency: number;
  log: (msg: string) => void;
}

export interface ProcessFigures {
  /** VmRSS right after the controller became ready, before any job existed. */
  startRssMiB?: number;
  /** VmHWM at the end of the scenario. */
  peakRssMiB: number;
  /** VmRSS once the scenario's jobs are all terminal and settled (or mean over the at-rest window). */
  restRssMiB: number;
  /** utime+stime of the controller during the scenario's window. */
  cpuSeconds: number;
}

export interface ScenarioResult {
  scenario: "burst" | "steady" | "recovery";
  jobs: number;
  shape: JobShape;
  sut: { name: string; settings: Record<string, string | number | boolean> };
  startedAt: string;
  /** Index of the alternating pair (--compare), from 1; absent in single-controller runs. */
  pair?: number;
  wallSeconds: number;
  latencyMs: {
    /** Create answered → the controller's first status on the user job seen. */
    firstStatus?: Distribution;
    /** Create answered → first training Job of attempt 0 seen (the controller's own reaction). */
    reaction?: Distribution;
    /** Create answered → every training pod of attempt 0 Running (end to end). */
    allPodsRunning?: Distribution;
    /** Training Job created → every pod Running, step by step (bench/measure/breakdown.ts). */
    breakdown?: Partial<Record<Step, Distribution>>;
    /** Rank failure written → first pod of the next attempt created / whole next gang Running. */
    recoveryPodsCreated?: Distribution;
    recoveryRunning?: Distribution;
  };
  /** User jobs reaching Succeeded per minute, from the first create to the last completion. */
  completionsPerMinute?: number;
  outcome?: { succeeded: number; failed: number; unfinished: number };
  /** Requests of the controller's user in the scenario's window, as the API server audited them. */
  audit: AuditCounts;
  auditWindowSeconds: number;
  /** audit figures divided by jobs. */
  perJob?: { writes: number; eventWrites: number; gets: number; requests: number; byVerbResource: Record<string, number> };
  atRest?: {
    seconds: number;
    writesPerMinute: number;
    eventWritesPerMinute: number;
    leaseWritesPerMinute: number;
    requestsPerMinute: number;
    lists: number;
    watches: number;
  };
  process?: ProcessFigures;
  /** Lease renewals in the audit window (bench/measure/leases.ts) and the controller's own exits. */
  leadership?: Leadership;
  notes: string[];
}

export interface Leadership extends LeaseRenewals {
  /** Processes of the controller that exited on their own (each one lost, or gave up, its Lease). */
  exits: number;
}

export interface BenchResults {
  version: 1;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string; note: string };
  cluster: { nodes: number; gpusPerNode: number };
  options: Record<string, unknown>;
  sut: string;
  scenarios: ScenarioResult[];
}

export type { JobShape, SystemUnderTest };
