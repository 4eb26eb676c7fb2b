/**
 * The leader-election worker thread (started by runtime/elector-thread.ts from main.ts): runs the LeaderElector
 * on an event loop of its own, with its own connection to the API server, and reports to the main thread. When the
 * Lease is lost and the main thread does not acknowledge that it stopped acting within `hardStopMs`, the process
 * is killed: a main thread that far behind cannot be trusted to stop before a successor starts.
 *
 * Kept small, since a thread loads its own copy of every module: credentials come resolved from the main thread
 * (no kubeconfig parser), and log lines are written straight to stdout in pino's format (no pino): synchronously,
 * because a worker's process.stdout goes through the main thread, which may be the one that is stuck.
 */
import { writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import type { ClusterAccess } from "./kube/access.ts";
import { KubeClient } from "./kube/client.ts";
import type { ElectorThreadConfig, FromWorker, ToWorker } from "./runtime/elector-thread.ts";
import { LeaderElector, type ElectionLogger } from "./runtime/leader-election.ts";

const config = workerData as ElectorThreadConfig;
const port = parentPort!;
const post = (msg: FromWorker) => port.postMessage(msg);

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
const minLevel = LEVELS[config.logLevel as keyof typeof LEVELS] ?? LEVELS.info;

/** One JSON line per record on fd 1, with pino's fields (level number, time in ms, msg). */
function lineLogger(bindings: Record<string, unknown>): ElectionLogger & { fatal: (obj: object | string, msg?: string) => void } {
  const at =
    (level: number) =>
    (obj: object | string, msg?: string): void => {
      if (level < minLevel) return;
      const fields = typeof obj === "string" ? { msg: obj } : { ...errorFields(obj), ...(msg !== undefined ? { msg } : {}) };
      writeSync(1, `${JSON.stringify({ level, time: Date.now(), pid: process.pid, ...bindings, ...fields })}\n`);
    };
  return {
    info: at(LEVELS.info),
    warn: at(LEVELS.warn),
    error: at(LEVELS.error),
    fatal: at(LEVELS.fatal),
    child: (more) => lineLogger({ ...bindings, ...more }),
  };
}

/** `{ err }` as pino's serializer writes it (an Error's own fields do not survive JSON.stringify). */
function errorFields(obj: object): object {
  const err = (obj as { err?: unknown }).err;
  return err instanceof Error ? { ...obj, err: { type: err.name, message: err.message, code: (err as { code?: unknown }).code } } : obj;
}

const logger = lineLogger({ component: "finetune-operator", thread: "leader-election" });
// Resolved credentials from the main thread; client-node's transport (exec plugins and the like) only when it had none.
const client = config.access ? KubeClient.fromAccess(config.access as ClusterAccess) : await KubeClient.fromEnvironment();

let acknowledged = false;
const elector = new LeaderElector({
  client,
  namespace: config.namespace,
  name: config.name,
  identity: config.identity,
  logger,
  leaseDurationSeconds: config.leaseDurationSeconds,
  renewDeadlineSeconds: config.renewDeadlineSeconds,
  retryPeriodSeconds: config.retryPeriodSeconds,
  onStartedLeading: () => post({ type: "started" }),
  onRenewal: (report) => post({ type: "renewal", report }),
  onPressure: (on) => post({ type: "pressure", on }),
  onStoppedLeading: (reason) => {
    post({ type: "stopped", reason });
    if (reason !== "lost") return;
    setTimeout(() => {
      if (acknowledged) return;
      logger.fatal({ hardStopMs: config.hardStopMs }, "lease lost and the main thread did not stop in time; killing the process");
      process.kill(process.pid, "SIGKILL");
    }, config.hardStopMs);
  },
});

port.on("message", (msg: ToWorker) => {
  if (msg.type === "ack-stopped") acknowledged = true;
  else if (msg.type === "stop") {
    acknowledged = true;
    void elector.stop({ release: msg.release }).finally(() => {
      client.close(); // its keep-alive sockets would hold the thread open
      post({ type: "done" });
      port.close();
    });
  }
});

void elector.start();
