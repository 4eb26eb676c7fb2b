/**
 * Process sampler: memory and CPU of one process from /proc, independent of
 * what the process is. VmRSS (now) and VmHWM (peak) from /proc/<pid>/status,
 * utime+stime from /proc/<pid>/stat (clock ticks, 100 per second on Linux).
 */
import { readFileSync } from "node:fs";

export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcSample {
  atMs: number;
  rssBytes: number;
  hwmBytes: number;
  cpuSeconds: number;
}

/** VmRSS and VmHWM in bytes from the text of /proc/<pid>/status. */
export function parseStatus(text: string): { rssBytes: number; hwmBytes: number } {
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, "m").exec(text);
    if (!m) throw new Error(`no ${key} in /proc status`);
    return Number(m[1]) * 1024;
  };
  return { rssBytes: kb("VmRSS"), hwmBytes: kb("VmHWM") };
}

/** utime+stime in seconds from the text of /proc/<pid>/stat (the command name may contain spaces and parentheses). */
export function parseStatCpuSeconds(text: string, ticksPerSecond = CLOCK_TICKS_PER_SECOND): number {
  const rest = text
    .slice(text.lastIndexOf(")") + 2)
    .trim()
    .split(/\s+/);
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error("cannot parse utime/stime from /proc stat");
  return (utime + stime) / ticksPerSecond;
}

export function sampleProc(pid: number): ProcSample {
  const s = parseStatus(readFileSync(`/proc/${pid}/status`, "utf8"));
  return { atMs: Date.now(), ...s, cpuSeconds: parseStatCpuSeconds(readFileSync(`/proc/${pid}/stat`, "utf8")) };
}

export interface ProcWindow {
  samples: number;
  /** Peak resident set over the process's life so far (VmHWM at the end of the window). */
  peakRssBytes: number;
  /** Mean VmRSS over the window's samples. */
  meanRssBytes: number;
  /** VmRSS at the end of the window. */
  lastRssBytes: number;
  /** CPU seconds (user+system) spent inside the window. */
  cpuSeconds: number;
  seconds: number;
}

/** Summary of the samples taken inside one window. */
export function summarizeSamples(samples: readonly ProcSample[]): ProcWindow | undefined {
  if (samples.length === 0) return undefined;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  return {
    samples: samples.length,
    peakRssBytes: Math.max(...samples.map((s) => s.hwmBytes)),
    meanRssBytes: samples.reduce((a, s) => a + s.rssBytes, 0) / samples.length,
    lastRssBytes: last.rssBytes,
    cpuSeconds: last.cpuSeconds - first.cpuSeconds,
    seconds: (last.atMs - first.atMs) / 1000,
  };
}

/**
 * Samples one process, or several taken as one controller (their RSS, VmHWM and CPU added up),
 * every `intervalMs` until stopped; windows are slices of the sample list.
 * `pids` is asked at every sample: when a process is replaced (a restart), CPU seconds keep
 * adding up across processes and VmHWM is per process (the window's peak is the max). With
 * several processes the peak is the sum of each one's VmHWM: an upper bound of the peak of
 * their sum, since their peaks need not coincide.
 */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  readonly #pids: () => readonly number[];
  #timer: NodeJS.Timeout | undefined;
  /** CPU seconds of processes that were sampled before and are gone now (restarted). */
  #cpuBase = 0;
  /** Last CPU seconds seen per live pid. */
  #lastCpu = new Map<number, number>();

  constructor(pids: () => number | readonly number[] | undefined, intervalMs = 500) {
    this.#pids = () => {
      const p = pids();
      return p === undefined ? [] : typeof p === "number" ? [p] : p;
    };
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    this.#timer.unref();
  }

  sample(): ProcSample | undefined {
    const pids = this.#pids();
    if (pids.length === 0) return undefined;
    let parts: ProcSample[];
    try {
      parts = pids.map(sampleProc);
    } catch {
      return undefined; // a process exited
    }
    for (const [pid, cpu] of this.#lastCpu) {
      if (!pids.includes(pid)) {
        this.#cpuBase += cpu;
        this.#lastCpu.delete(pid);
      }
    }
    pids.forEach((pid, i) => this.#lastCpu.set(pid, parts[i]!.cpuSeconds));
    const out: ProcSample = {
      atMs: Date.now(),
      rssBytes: parts.reduce((a, s) => a + s.rssBytes, 0),
      hwmBytes: parts.reduce((a, s) => a + s.hwmBytes, 0),
      cpuSeconds: this.#cpuBase + parts.reduce((a, s) => a + s.cpuSeconds, 0),
    };
    this.samples.push(out);
    return out;
  }

  /** Summary of [fromMs, toMs], taking a fresh sample first when the window is open-ended. */
  window(fromMs: number, toMs = Date.now()): ProcWindow | undefined {
    if (toMs >= Date.now() - 1) this.sample();
    return summarizeSamples(this.samples.filter((s) => s.atMs >= fromMs && s.atMs <= toMs));
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
