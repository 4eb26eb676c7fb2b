/**
 * Runs one pod of a rendered stage Job on this machine, the way a kubelet would, so the real-Axolotl tests execute
 * exactly what the operator renders: the container's argv and environment, its ConfigMap and projected files, its
 * claims. What a container runtime would give it and this machine cannot is mapped, and only that:
 *
 * - every volume mount becomes a folder (ConfigMap keys written as files, claims and hostPaths mapped to the
 *   folders the test names, `subPath` honoured); the mount paths are rewritten to those folders in the argv, the
 *   environment and the ConfigMap's YAML/JSON files (the config's `output_dir` is on the claim);
 * - cluster DNS names and ports (the rank Service) map to loopback addresses and free ports;
 * - `fieldRef`s are resolved as the kubelet resolves them (the Job's completion index);
 * - the termination message goes to a file (FINETUNE_TERMINATION_LOG) instead of /dev/termination-log;
 * - `python3`, `axolotl` and `torchrun` come first on PATH from the real-Axolotl venv (the image's interpreter).
 *
 * The pod's log is stdout and stderr interleaved, as the kubelet keeps it. Signals go to the container's first
 * process (the launcher), as `kubectl delete pod` sends SIGTERM to PID 1.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { V1ConfigMap, V1EnvVar, V1Job, V1Volume } from "@kubernetes/client-node";
import type { AxolotlEnv } from "./env.ts";

export interface LocalPodOptions {
  job: V1Job;
  /** The Job's completion index (the node rank of a training pod). */
  index: number;
  /** The ConfigMaps the pod mounts (the job's config and the launcher). */
  configMaps: V1ConfigMap[];
  /** Folder for each claim or hostPath volume, by volume name. */
  claims: Record<string, string>;
  /** Cluster DNS name -> address on this machine (the rank Service's pod names -> 127.0.0.1). */
  hosts?: Record<string, string>;
  /** Container port -> free port on this machine. */
  ports?: Record<number, number>;
  /** Content of projected service-account tokens, by volume name. */
  tokens?: Record<string, string>;
  /** Variables of this sandbox, not of the pod (no Hub here: HF_HUB_OFFLINE). Added before the pod's own. */
  sandboxEnv?: Record<string, string>;
  env: AxolotlEnv;
  /** The pod's own scratch folder (mounted files, termination message, log copy). */
  scratch: string;
}

export interface PodExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const SHM = "/dev/shm";

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class LocalPod {
  readonly child: ChildProcess;
  readonly exited: Promise<PodExit>;
  readonly terminationLogPath: string;
  readonly logPath: string;
  #log = "";
  readonly #rewrite: (text: string) => string;
  readonly opts: LocalPodOptions;

  constructor(opts: LocalPodOptions) {
    this.opts = opts;
    const template = opts.job.spec!.template;
    const podSpec = template.spec!;
    const container = podSpec.containers[0]!;
    mkdirSync(opts.scratch, { recursive: true });
    const volumeDirs = this.#materializeVolumes(podSpec.volumes ?? []);

    const mounts: Array<[string, string]> = [];
    for (const m of container.volumeMounts ?? []) {
      if (m.mountPath === SHM) continue; // the host's /dev/shm is already memory-backed
      const dir = volumeDirs.get(m.name);
      if (!dir) throw new Error(`volume ${m.name} has no folder on this machine`);
      const local = m.subPath ? join(dir, m.subPath) : dir;
      mkdirSync(local, { recursive: true });
      mounts.push([m.mountPath, local]);
    }
    mounts.sort((a, b) => b[0].length - a[0].length);
    const replacements: Array<[RegExp, string]> = [
      ...mounts.map(([from, to]): [RegExp, string] => [new RegExp(`${escapeRegExp(from)}(?=[/\\s"',:}\\]]|$)`, "gm"), to]),
      ...Object.entries(opts.hosts ?? {}).map(([from, to]): [RegExp, string] => [new RegExp(escapeRegExp(from), "g"), to]),
      ...Object.entries(opts.ports ?? {}).map(([from, to]): [RegExp, string] => [new RegExp(`(?<=port[=:]\\s*)${from}\\b`, "g"), String(to)]),
    ];
    this.#rewrite = (text) => replacements.reduce((t, [re, to]) => t.replace(re, to), text);
    // Files the container reads by path: the config names the claim's mount (output_dir, dataset_prepared_path).
    for (const [, local] of mounts) this.#rewriteFiles(local);

    this.terminationLogPath = join(opts.scratch, "termination-log");
    this.logPath = join(opts.scratch, "pod.log");
    const env: Record<string, string> = {
      PATH: `${opts.env.binDir}:/usr/local/bin:/usr/bin:/bin`,
      HOME: join(opts.scratch, "home"),
      LANG: "C.UTF-8",
      ...opts.sandboxEnv,
      FINETUNE_TERMINATION_LOG: this.terminationLogPath,
    };
    mkdirSync(env.HOME!, { recursive: true });
    for (const v of container.env ?? []) env[v.name] = this.#rewrite(this.#resolve(v));
    const argv = container.command!.map((a) => this.#rewrite(a));
    this.child = spawn(argv[0]!, argv.slice(1), { env, cwd: opts.scratch, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const keep = (d: Buffer) => {
      this.#log += d.toString();
    };
    this.child.stdout!.on("data", keep);
    this.child.stderr!.on("data", keep);
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        writeFileSync(this.logPath, this.#log);
        resolve({ code, signal });
      });
    });
  }

  /** The pod's log so far (stdout and stderr interleaved). */
  get log(): string {
    return this.#log;
  }

  /** The termination message the launcher wrote, parsed (undefined when none). */
  terminationMessage(): Record<string, unknown> | undefined {
    if (!existsSync(this.terminationLogPath)) return undefined;
    return JSON.parse(readFileSync(this.terminationLogPath, "utf8")) as Record<string, unknown>;
  }

  /** Sends a signal to the container's first process. */
  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Kills whatever is left of the pod (the whole process group). */
  destroy(): void {
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }

  #resolve(v: V1EnvVar): string {
    if (v.value !== undefined) return v.value;
    const field = v.valueFrom?.fieldRef?.fieldPath;
    if (field === "metadata.annotations['batch.kubernetes.io/job-completion-index']") return String(this.opts.index);
    throw new Error(`env ${v.name}: only values and the completion-index fieldRef can be resolved here`);
  }

  #materializeVolumes(volumes: V1Volume[]): Map<string, string> {
    const dirs = new Map<string, string>();
    for (const vol of volumes) {
      const dir = join(this.opts.scratch, "volumes", vol.name);
      if (vol.configMap) {
        const cm = this.opts.configMaps.find((c) => c.metadata?.name === vol.configMap!.name);
        if (!cm) throw new Error(`ConfigMap ${vol.configMap.name} (volume ${vol.name}) was not given`);
        mkdirSync(dir, { recursive: true });
        for (const [key, value] of Object.entries(cm.data ?? {})) writeFileSync(join(dir, key), value);
        dirs.set(vol.name, dir);
      } else if (vol.projected) {
        mkdirSync(dir, { recursive: true });
        for (const source of vol.projected.sources ?? []) {
          const token = this.opts.tokens?.[vol.name];
          if (source.serviceAccountToken && token !== undefined) writeFileSync(join(dir, source.serviceAccountToken.path), token);
        }
        dirs.set(vol.name, dir);
      } else if (vol.emptyDir) {
        mkdirSync(dir, { recursive: true });
        dirs.set(vol.name, dir);
      } else {
        const local = this.opts.claims[vol.name];
        if (!local) throw new Error(`volume ${vol.name} (claim or hostPath) has no folder in claims`);
        dirs.set(vol.name, local);
      }
    }
    return dirs;
  }

  #rewriteFiles(dir: string): void {
    if (!dir.startsWith(join(this.opts.scratch, "volumes"))) return; // only the pod's own ConfigMap files, never user data
    for (const name of readdirSync(dir)) {
      if (!/\.(ya?ml|json)$/.test(name)) continue;
      const path = join(dir, name);
      writeFileSync(path, this.#rewrite(readFileSync(path, "utf8")));
    }
  }
}

/** Pids of every live descendant of `pid` whose command line contains `needle` (the torchrun workers). */
export function descendantsMatching(pid: number, needle: string): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length) {
    const p = stack.pop()!;
    stack.push(...(children.get(p) ?? []));
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").includes(needle)) out.push(p);
    } catch {
      // exited while we looked
    }
  }
  return out;
}
