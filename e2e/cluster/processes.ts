/**
 * Background processes of the local cluster: each runs detached in its own process
 * group, logs to logs/<name>.log and records its pid in pids/<name>.pid.
 *
 * Every process we start has the state dir in its command line, so a pid is only
 * trusted when /proc/<pid>/cmdline still mentions the state dir (pids get reused),
 * and `down` also sweeps /proc for leftovers whose pid files were lost.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Layout } from "./paths.ts";

export const componentNames = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "provisioner"] as const;
export type Component = (typeof componentNames)[number];

/** argv[0] basenames (without version suffix) or script names we may have started. */
const ourExecutables = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"];
const ourScripts = ["provisioner.ts"];

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** True when `pid` is alive and its command line references the state dir. */
export function isOurs(pid: number, root: string): boolean {
  const args = cmdline(pid);
  if (!args || isZombie(pid)) return false;
  return args.some((a) => a.includes(root + "/") || a === root);
}

function isOurComponent(args: string[], root: string): boolean {
  if (!args.some((a) => a.includes(root + "/") || a === root)) return false;
  const exe = basename(args[0] ?? "").replace(/-\d+\.\d+\.\d+$/, "");
  return ourExecutables.includes(exe) || args.some((a) => ourScripts.includes(basename(a)));
}

export async function startProcess(l: Layout, name: Component, command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  await mkdir(l.logs, { recursive: true });
  await mkdir(l.pids, { recursive: true });
  const logPath = join(l.logs, `${name}.log`);
  const fd = openSync(logPath, "a");
  try {
    const child = spawn(command, args, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: env ?? process.env,
    });
    const pid = child.pid;
    if (pid === undefined) {
      const err = await new Promise<Error>((resolve) => child.once("error", resolve));
      throw new Error(`failed to start ${name} (${command}): ${err.message}`);
    }
    child.unref();
    await writeFile(join(l.pids, `${name}.pid`), `${pid}\n`);
    return pid;
  } finally {
    closeSync(fd);
  }
}

export async function readPid(l: Layout, name: Component): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(l.pids, `${name}.pid`), "utf8"), 10);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Pid of a running component, or undefined when it is not running (stale pid files are ignored). */
export async function runningPid(l: Layout, name: Component): Promise<number | undefined> {
  const pid = await readPid(l, name);
  return pid !== undefined && isOurs(pid, l.root) ? pid : undefined;
}

/** Last `lines` lines of a component's log, for error messages. */
export async function logTail(l: Layout, name: Component, lines = 25): Promise<string> {
  try {
    const text = await readFile(join(l.logs, `${name}.log`), "utf8");
    return text
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  } catch {
    return "(no log)";
  }
}

/** All live processes that belong to this state dir, found by scanning /proc. */
export function scanOurProcesses(root: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const args = cmdline(pid);
    if (args && !isZombie(pid) && isOurComponent(args, root)) found.push(pid);
  }
  return found;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  // Each component leads its own process group; signal the group, fall back to the pid.
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops every process of this state dir: the pid-file ones first (SIGTERM, then
 * SIGKILL after `graceMs`), then anything a /proc scan still finds. Returns the pids stopped.
 */
export async function stopAll(l: Layout, graceMs = 5000): Promise<number[]> {
  const pids = new Set<number>();
  // Reverse start order: provisioner/kwok/controllers before apiserver before etcd.
  for (const name of [...componentNames].reverse()) {
    const pid = await runningPid(l, name);
    if (pid !== undefined) pids.add(pid);
  }
  for (const pid of scanOurProcesses(l.root)) pids.add(pid);
  if (pids.size === 0) return [];
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && [...pids].some((p) => isOurs(p, l.root))) await sleep(100);
  for (const pid of pids) if (isOurs(pid, l.root)) signal(pid, "SIGKILL");
  for (let i = 0; i < 50 && scanOurProcesses(l.root).length > 0; i++) {
    for (const pid of scanOurProcesses(l.root)) signal(pid, "SIGKILL");
    await sleep(100);
  }
  return [...pids];
}

export async function removePidFiles(l: Layout): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(l.pids);
  } catch {
    return;
  }
  await Promise.all(names.map((n) => rm(join(l.pids, n), { force: true })));
}

/**
 * Stops one component: `signal` to its process group (SIGKILL simulates a crash), SIGKILL after
 * `graceMs` if it is still there (measured: kube-apiserver lingered over 30 s after its listener had
 * closed on SIGTERM). Returns the pid it stopped, or undefined when it was not running.
 */
export async function stopComponent(l: Layout, name: Component, sig: NodeJS.Signals, graceMs = 5000): Promise<number | undefined> {
  const pid = await runningPid(l, name);
  if (pid === undefined) return undefined;
  signal(pid, sig);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && isOurs(pid, l.root)) await sleep(50);
  if (isOurs(pid, l.root)) signal(pid, "SIGKILL");
  while (isOurs(pid, l.root)) await sleep(50);
  return pid;
}
