/**
 * The local test control plane: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok (fake GPU nodes) on 127.0.0.1, plus a hostPath PV
 * provisioner. Binaries come from build.sh (cached by version).
 *
 *   up()            idempotent start (fresh state every time it has to start)
 *   down()          stop every process, delete the state dir
 *   status()        what is running
 *   ensureCluster() used by test runners: start unless already running and healthy
 *
 * Contracts for tests (node names, labels, taint, pod fate annotations, storage
 * class) are exported from manifests.ts.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { join } from "node:path";
import { Api } from "./api.ts";
import { clientCerts, generatePki, readClientCredentials } from "./certs.ts";
import { withLock } from "./lock.ts";
import { auditPolicyPath, componentCommand, componentKubeconfig } from "./components.ts";
import { clusterLogsYaml, fakeNode, kubeconfigYaml, kwokLogsCrd, nodeNames, schedulerConfigYaml, storageClass } from "./manifests.ts";
import { binaryPath, clusterSrcDir, controlPlaneTools, layout, stateDir, type Layout, type Tool } from "./paths.ts";
import { pickPorts, type Ports } from "./ports.ts";
import { componentNames, isOurs, logTail, removePidFiles, runningPid, startProcess, stopAll, stopComponent, type Component } from "./processes.ts";

export { stateDir } from "./paths.ts";
export { restartAliases } from "./components.ts";
export type { Component } from "./processes.ts";

export type Log = (msg: string) => void;
const stderrLog: Log = (m) => process.stderr.write(`[cluster] ${m}\n`);

const MARKER = ".finetune-cluster";

export interface ClusterInfo {
  kubeconfigPath: string;
  server: string;
  stateDir: string;
  ports: Ports;
  nodes: string[];
  startedAt: string;
}

/** Path of the admin kubeconfig (exists only while the cluster is up). */
export function kubeconfigPath(): string {
  return layout().kubeconfig;
}

/** Users whose API requests the API server audits: $FINETUNE_CLUSTER_AUDIT_USERS (comma separated); none by default. */
export function auditUsers(): string[] {
  return (process.env["FINETUNE_CLUSTER_AUDIT_USERS"] ?? "")
    .split(",")
    .map((u) => u.trim())
    .filter(Boolean);
}

/** Path of the audit log (JSON lines, one event per request stage; exists only when auditUsers() was set at start). */
export function auditLogPath(): string {
  return layout().auditLog;
}

/** Audit policy: Metadata for the given users (no RequestReceived stage), nothing for anyone else. */
export function auditPolicyYaml(users: string[]): string {
  return [
    "apiVersion: audit.k8s.io/v1",
    "kind: Policy",
    'omitStages: ["RequestReceived"]',
    "rules:",
    "  - level: Metadata",
    `    users: [${users.map((u) => JSON.stringify(u)).join(", ")}]`,
    "  - level: None",
    "",
  ].join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

// ---- binaries ----------------------------------------------------------------

/**
 * Makes sure the given tools are built (runs build.sh for the missing ones).
 * Returns the build duration in seconds when something was built.
 */
export async function ensureBinaries(tools: Tool[] = controlPlaneTools, log: Log = stderrLog): Promise<number | undefined> {
  const missing = tools.filter((t) => !existsSync(binaryPath(t)));
  if (missing.length === 0) return undefined;
  const t0 = Date.now();
  log(`building ${missing.join(", ")} from Go modules via build.sh (first run only; several minutes on 2 cores)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn("bash", [join(clusterSrcDir, "build.sh"), ...missing], { stdio: ["ignore", "ignore", "pipe"] });
    let tail = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      tail = (tail + chunk).slice(-4000);
      for (const line of chunk.split("\n")) if (/^(building|built) /.test(line)) log(`  ${line}`);
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`build.sh ${missing.join(" ")} failed (exit ${code}):\n${tail}`))));
  });
  const took = (Date.now() - t0) / 1000;
  log(`cold build finished in ${took.toFixed(0)}s (binaries cached in ${join(binaryPath("etcd"), "..")})`);
  return took;
}

/** Path of a pinned tool binary (e.g. helm), building it first if needed. */
export async function toolPath(tool: Tool, log: Log = stderrLog): Promise<string> {
  await ensureBinaries([tool], log);
  return binaryPath(tool);
}

// ---- probes ------------------------------------------------------------------

function probe(url: string, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const req = get(url, { timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

async function probeOk(url: string): Promise<boolean> {
  try {
    const r = await probe(url);
    return r.status === 200;
  } catch {
    return false;
  }
}

function healthUrls(p: Ports): Record<Component, string | undefined> {
  return {
    etcd: `http://127.0.0.1:${p.etcdClient}/health`,
    "kube-apiserver": undefined, // needs client auth; checked through Api
    "kube-controller-manager": `https://127.0.0.1:${p.controllerManager}/healthz`,
    "kube-scheduler": `https://127.0.0.1:${p.scheduler}/healthz`,
    kwok: `http://127.0.0.1:${p.kwok}/healthz`,
    provisioner: undefined, // pid + ready file
  };
}

async function readPorts(l: Layout): Promise<Ports | undefined> {
  try {
    return JSON.parse(await readFile(l.portsFile, "utf8")) as Ports;
  } catch {
    return undefined;
  }
}

async function adminApi(l: Layout, ports: Ports): Promise<Api> {
  return new Api(`https://127.0.0.1:${ports.apiserver}`, await readClientCredentials(l.certs, "admin"));
}

async function apiserverReady(api: Api): Promise<boolean> {
  try {
    // Generous: a slow answer on a busy machine must not read as "down" (up() would then restart components).
    return (await api.request<string>("GET", "/readyz", undefined, "application/json", 30_000)) === "ok";
  } catch {
    return false;
  }
}

/**
 * Polls `fn` until it returns a truthy value; fails fast when a component died. The limit only catches a
 * component that is alive but never gets ready: a busy machine makes starts slow, never failed.
 */
async function waitUntil<T>(l: Layout, what: string, fn: () => Promise<T | undefined | false>, watch: Component[], timeoutMs = 5 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    for (const c of watch) {
      if ((await runningPid(l, c)) === undefined) {
        throw new Error(`${c} exited while waiting for ${what}; last log lines (${join(l.logs, c + ".log")}):\n${await logTail(l, c)}`);
      }
    }
    if (Date.now() > deadline) {
      const tails = await Promise.all(watch.map(async (c) => `--- ${c} ---\n${await logTail(l, c, 15)}`));
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}\n${tails.join("\n")}`);
    }
    await sleep(100);
  }
}

// ---- state dir -----------------------------------------------------------------

async function removeStateDir(l: Layout): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(l.root);
  } catch {
    return;
  }
  if (entries.length > 0 && !entries.includes(MARKER)) {
    throw new Error(
      `refusing to delete ${l.root}: it exists but was not created by this tool (no ${MARKER}); set FINETUNE_CLUSTER_DIR elsewhere or remove it yourself`,
    );
  }
  await rm(l.root, { recursive: true, force: true, maxRetries: 3 });
}

// ---- health ---------------------------------------------------------------------

export interface ComponentStatus {
  name: Component;
  pid?: number;
  healthy: boolean;
}

export interface ClusterStatus {
  running: boolean;
  healthy: boolean;
  stateDir: string;
  kubeconfigPath?: string;
  server?: string;
  ports?: Ports;
  components: ComponentStatus[];
  nodesReady?: string;
}

export async function status(): Promise<ClusterStatus> {
  const l = layout();
  const ports = await readPorts(l);
  const urls = ports ? healthUrls(ports) : undefined;
  const api = ports && existsSync(join(l.certs, "admin.crt")) ? await adminApi(l, ports) : undefined;
  try {
    const components = await Promise.all(
      componentNames.map(async (name): Promise<ComponentStatus> => {
        const pid = await runningPid(l, name);
        let healthy = pid !== undefined;
        if (healthy && name === "kube-apiserver") healthy = api ? await apiserverReady(api) : false;
        else if (healthy && name === "provisioner") healthy = existsSync(join(l.pids, "provisioner.ready"));
        else if (healthy && urls?.[name]) healthy = await probeOk(urls[name]);
        return { name, ...(pid === undefined ? {} : { pid }), healthy };
      }),
    );
    let nodesReady: string | undefined;
    if (api && components.find((c) => c.name === "kube-apiserver")?.healthy) {
      try {
        const nodes = await api.get<{ items: any[] }>("/api/v1/nodes");
        const ready = nodes.items.filter((n) => n.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"));
        nodesReady = `${ready.length}/${nodes.items.length} Ready`;
      } catch {
        /* ignore */
      }
    }
    const running = components.some((c) => c.pid !== undefined);
    const healthy = components.every((c) => c.healthy) && existsSync(l.readyFile);
    return {
      running,
      healthy,
      stateDir: l.root,
      ...(existsSync(l.kubeconfig) ? { kubeconfigPath: l.kubeconfig } : {}),
      ...(ports ? { server: `https://127.0.0.1:${ports.apiserver}`, ports } : {}),
      components,
      ...(nodesReady ? { nodesReady } : {}),
    };
  } finally {
    api?.close();
  }
}

/** Quick check used by up/ensureCluster: every pid alive and the apiserver ready. */
async function isHealthy(l: Layout): Promise<ClusterInfo | undefined> {
  let info: ClusterInfo;
  try {
    info = JSON.parse(await readFile(l.readyFile, "utf8")) as ClusterInfo;
  } catch {
    return undefined;
  }
  for (const name of componentNames) if ((await runningPid(l, name)) === undefined) return undefined;
  const api = await adminApi(l, info.ports).catch(() => undefined);
  if (!api) return undefined;
  try {
    return (await apiserverReady(api)) ? info : undefined;
  } finally {
    api.close();
  }
}

// ---- up / down ---------------------------------------------------------------------

export interface UpResult extends ClusterInfo {
  alreadyRunning: boolean;
  /** Components started again in place (a degraded cluster keeps its data, ports and certificates). */
  restarted?: Component[];
  /** Seconds spent building binaries (cold start only). */
  buildSeconds?: number;
  /** Seconds from process start to a ready cluster (excluding the build). */
  startSeconds: number;
}

/**
 * Starts the cluster when it is not running. A degraded cluster (it was ready once, and some components
 * died) is repaired in place: only the components that are down start again, with the same etcd data,
 * ports and certificates, so the objects in it survive. Only a cluster that never became ready, or
 * whose repair fails, is wiped and started fresh.
 */
export async function up(opts: { log?: Log } = {}): Promise<UpResult> {
  const log = opts.log ?? stderrLog;
  const l = layout();
  return withLock(
    l.lockFile,
    async () => {
      const existing = await isHealthy(l);
      if (existing) return { ...existing, alreadyRunning: true, startSeconds: 0 };
      const buildSeconds = await ensureBinaries(controlPlaneTools, log);
      const built = buildSeconds === undefined ? {} : { buildSeconds };
      const t0 = Date.now();
      const repaired = await repairInPlace(l, log);
      if (repaired) return { ...repaired.info, alreadyRunning: false, restarted: repaired.restarted, startSeconds: (Date.now() - t0) / 1000, ...built };
      const stale = await stopAll(l);
      if (stale.length > 0) log(`stopped ${stale.length} leftover process(es) from a previous run: ${stale.join(", ")}`);
      await removeStateDir(l);
      try {
        const info = await start(l, log);
        const startSeconds = (Date.now() - t0) / 1000;
        return { ...info, alreadyRunning: false, startSeconds, ...built };
      } catch (err) {
        // Leave logs for debugging, but no processes.
        await stopAll(l, 2000);
        await removePidFiles(l);
        await rm(l.readyFile, { force: true });
        throw err;
      }
    },
    { onWait: (pid) => log(`another process (pid ${pid}) is starting/stopping the cluster; waiting`) },
  );
}

async function readInfo(l: Layout): Promise<ClusterInfo | undefined> {
  try {
    return JSON.parse(await readFile(l.readyFile, "utf8")) as ClusterInfo;
  } catch {
    return undefined;
  }
}

/**
 * Starts the components of a once-ready cluster that are not running. Returns undefined (and leaves
 * the wipe to the caller) when there is nothing to repair from, or the repair failed.
 */
async function repairInPlace(l: Layout, log: Log): Promise<{ info: ClusterInfo; restarted: Component[] } | undefined> {
  const info = await readInfo(l);
  if (!info || !existsSync(l.etcdData) || !existsSync(join(l.certs, "ca.crt"))) return undefined;
  const down: Component[] = [];
  for (const name of componentNames) if ((await runningPid(l, name)) === undefined) down.push(name);
  log(
    down.length > 0
      ? `cluster degraded: restarting ${down.join(", ")} in place (same data, ports ${JSON.stringify(info.ports)})`
      : "every component runs but the cluster is not ready; waiting for it",
  );
  try {
    await startComponents(l, info.ports, down, log);
    await waitHealthy(l, info.ports, log);
    return { info, restarted: down };
  } catch (err) {
    log(`repair in place failed, starting a fresh cluster (its objects are lost): ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/**
 * Stops one component and starts it again with the same command line: etcd keeps its data dir, every
 * port and certificate stays. `signal` SIGKILL simulates a crash; SIGTERM (default) a clean stop.
 */
export async function restart(name: Component, opts: { log?: Log; signal?: NodeJS.Signals } = {}): Promise<{ pid: number; ports: Ports }> {
  const log = opts.log ?? stderrLog;
  const l = layout();
  return withLock(l.lockFile, async () => {
    const info = await readInfo(l);
    if (!info) throw new Error(`no ready cluster in ${l.root} to restart ${name} in; run cluster:up first`);
    const old = await stopComponent(l, name, opts.signal ?? "SIGTERM");
    log(`stopped ${name}${old === undefined ? " (was not running)" : ` (pid ${old}, ${opts.signal ?? "SIGTERM"})`}; starting it again`);
    await startComponents(l, info.ports, [name], log);
    await waitHealthy(l, info.ports, log);
    const pid = await runningPid(l, name);
    if (pid === undefined) throw new Error(`${name} is not running after its restart`);
    return { pid, ports: info.ports };
  });
}

/** Stops one component (without a restart), e.g. to simulate a crash; `up` starts it again in place. */
export async function stop(name: Component, signal: NodeJS.Signals = "SIGKILL"): Promise<number | undefined> {
  const l = layout();
  return withLock(l.lockFile, () => stopComponent(l, name, signal));
}

async function start(l: Layout, log: Log): Promise<ClusterInfo> {
  await mkdir(l.root, { recursive: true });
  await writeFile(join(l.root, MARKER), "state dir of the finetune-operator local test cluster (e2e/cluster); `npm run cluster:down` deletes it\n");
  await Promise.all([l.config, l.logs, l.pids, l.volumes, l.podLogs].map((d) => mkdir(d, { recursive: true })));
  const ports = await pickPorts();
  await writeFile(l.portsFile, JSON.stringify(ports, null, 2) + "\n");
  await generatePki(l.certs);
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const ca = await readFile(join(l.certs, "ca.crt"));
  for (const c of clientCerts) {
    if (c.name === "apiserver-kubelet-client" || c.name === "front-proxy-client") continue;
    const creds = await readClientCredentials(l.certs, c.name);
    await writeFile(componentKubeconfig(l, c.name), kubeconfigYaml({ server, user: c.user, ca, cert: creds.cert, key: creds.key }), { mode: 0o600 });
  }
  await writeFile(join(l.config, "kube-scheduler.yaml"), schedulerConfigYaml(componentKubeconfig(l, "kube-scheduler")));
  // Pods without their own Logs object read an empty log (like a container that printed nothing).
  const emptyLog = join(l.podLogs, "empty.log");
  await writeFile(emptyLog, "");
  await writeFile(join(l.config, "kwok.yaml"), (await readFile(join(clusterSrcDir, "kwok-stages.yaml"), "utf8")) + "\n---\n" + clusterLogsYaml(emptyLog));
  const audited = auditUsers();
  if (audited.length > 0) {
    await writeFile(auditPolicyPath(l), auditPolicyYaml(audited));
    log(`auditing requests of ${audited.join(", ")} to ${l.auditLog}`);
  }
  log(`state dir ${l.root}; ports ${JSON.stringify(ports)}`);

  await startComponents(l, ports, [...componentNames], log, { fresh: true });
  const nodes = await waitHealthy(l, ports, log);
  const info: ClusterInfo = { kubeconfigPath: l.kubeconfig, server, stateDir: l.root, ports, nodes, startedAt: new Date().toISOString() };
  await writeFile(l.readyFile, JSON.stringify(info, null, 2) + "\n");
  return info;
}

/**
 * Starts the named components in dependency order (etcd, API server, controllers, kwok, provisioner),
 * waiting for etcd and the API server before what needs them. `fresh` also creates the cluster objects
 * (CRD for kwok's logs, storage class, fake nodes), which a restart finds in etcd.
 */
async function startComponents(l: Layout, ports: Ports, which: Component[], log: Log, opts: { fresh?: boolean } = {}): Promise<void> {
  const t0 = Date.now();
  const run = async (name: Component) => {
    if (!which.includes(name)) return;
    // The provisioner writes its ready file once it watches; an old one would read as ready too early.
    if (name === "provisioner") await rm(join(l.pids, "provisioner.ready"), { force: true });
    const { command, args } = componentCommand(l, ports, name);
    // Right after a SIGKILL the old process's sockets on the same port can still refuse the bind for a moment
    // (seen with the API server during a burst, many connections open): start again until the port is ours.
    for (let tries = 1; ; tries++) {
      const logStart = await stat(join(l.logs, `${name}.log`)).then(
        (s) => s.size,
        () => 0,
      );
      const pid = await startProcess(l, name, command, args);
      const bindFailed = async () => {
        const text = await readFile(join(l.logs, `${name}.log`), "utf8").catch(() => "");
        return text.slice(logStart).includes("address already in use");
      };
      // Only a restart can meet its own old sockets; a fresh start's ports were free a moment ago.
      const settled = Date.now() + (opts.fresh ? 0 : 3000);
      while (Date.now() < settled && isOurs(pid, l.root) && !(await bindFailed())) await sleep(100);
      if (isOurs(pid, l.root) || !(await bindFailed()) || tries >= 60) return;
      log(`${name}: its port is still held by the old process; starting it again (try ${tries + 1})`);
      await sleep(1000);
    }
  };
  const urls = healthUrls(ports);
  await run("etcd");
  await waitUntil(l, "etcd health", () => probeOk(urls.etcd!), ["etcd"]);
  await run("kube-apiserver");
  const api = await adminApi(l, ports);
  try {
    await waitUntil(l, "kube-apiserver /readyz", () => apiserverReady(api), ["etcd", "kube-apiserver"]);
    if (which.includes("kube-apiserver")) log(`apiserver ready after ${seconds(t0)}s`);
    await run("kube-controller-manager");
    await run("kube-scheduler");
    if (opts.fresh) {
      await api.createIfAbsent("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", kwokLogsCrd);
      await api.createIfAbsent("/apis/storage.k8s.io/v1/storageclasses", storageClass);
      await Promise.all(nodeNames().map((n) => api.createIfAbsent("/api/v1/nodes", fakeNode(n))));
      await waitUntil(
        l,
        "kwok Logs CRD to be established",
        async () => {
          const crd = await api.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${kwokLogsCrd.metadata.name}`);
          return crd.status?.conditions?.some((c: any) => c.type === "Established" && c.status === "True");
        },
        ["kube-apiserver"],
      );
    }
    await run("kwok");
    await run("provisioner");
  } finally {
    api.close();
  }
}

/** Waits until every component is healthy, the fake nodes are Ready and the default ServiceAccount exists. */
async function waitHealthy(l: Layout, ports: Ports, log: Log): Promise<string[]> {
  const t0 = Date.now();
  const urls = healthUrls(ports);
  const nodes = nodeNames();
  const all: Component[] = [...componentNames];
  const api = await adminApi(l, ports);
  try {
    await Promise.all([
      waitUntil(l, "etcd health", () => probeOk(urls.etcd!), all),
      waitUntil(l, "kube-apiserver /readyz", () => apiserverReady(api), all),
      waitUntil(l, "kube-controller-manager /healthz", () => probeOk(urls["kube-controller-manager"]!), all),
      waitUntil(l, "kube-scheduler /healthz", () => probeOk(urls["kube-scheduler"]!), all),
      waitUntil(l, "kwok /healthz", () => probeOk(urls.kwok!), all),
      waitUntil(l, "provisioner to be ready", async () => existsSync(join(l.pids, "provisioner.ready")), all),
      waitUntil(
        l,
        `${nodes.length} fake nodes to be Ready`,
        async () => {
          const list = await api.get<{ items: any[] }>(`/api/v1/nodes?labelSelector=type%3Dkwok`);
          const ready = list.items.filter((n) => n.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True"));
          return ready.length >= nodes.length;
        },
        all,
      ),
      waitUntil(l, "default service account", () => api.get("/api/v1/namespaces/default/serviceaccounts/default").then(() => true), all),
    ]);
    log(`every component healthy after ${seconds(t0)}s`);
    return nodes;
  } finally {
    api.close();
  }
}

export async function down(opts: { log?: Log } = {}): Promise<{ stopped: number[] }> {
  const log = opts.log ?? stderrLog;
  const l = layout();
  return withLock(
    l.lockFile,
    async () => {
      const stopped = await stopAll(l);
      await removeStateDir(l);
      return { stopped };
    },
    { onWait: (pid) => log(`another process (pid ${pid}) is starting/stopping the cluster; waiting`) },
  );
}

let ensured: Promise<{ kubeconfigPath: string }> | undefined;

/**
 * Returns the admin kubeconfig of the local cluster, starting the cluster first
 * when it is not running and healthy (safe to call from concurrent processes).
 */
export function ensureCluster(opts: { log?: Log } = {}): Promise<{ kubeconfigPath: string }> {
  ensured ??= (async () => {
    const l = layout();
    const info = (await isHealthy(l)) ?? (await up(opts));
    return { kubeconfigPath: info.kubeconfigPath };
  })();
  ensured.catch(() => (ensured = undefined));
  return ensured;
}
