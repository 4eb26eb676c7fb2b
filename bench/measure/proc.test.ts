import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStatCpuSeconds, parseStatus, sampleProc, summarizeSamples } from "./proc.ts";

describe("/proc parsing", () => {
  it("VmRSS and VmHWM in bytes", () => {
    const text = "Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   65536 kB\nThreads:\t11\n";
    assert.deepEqual(parseStatus(text), { rssBytes: 64 * 1024 * 1024, hwmBytes: 80 * 1024 * 1024 });
    assert.throws(() => parseStatus("Name:\tx\n"), /VmRSS/);
  });

  it("utime+stime from stat, even with spaces and parentheses in the command name", () => {
    // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const stat = "4242 (node (main) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 12345 1000000 2000 18446744073709551615";
    assert.equal(parseStatCpuSeconds(stat), 3);
  });

  it("reads this very process", () => {
    const s = sampleProc(process.pid);
    assert.ok(s.rssBytes > 0 && s.hwmBytes >= s.rssBytes && s.cpuSeconds >= 0);
  });

  it("summarizes a window: peak from VmHWM, mean and last RSS, CPU spent inside", () => {
    const w = summarizeSamples([
      { atMs: 0, rssBytes: 10, hwmBytes: 10, cpuSeconds: 1 },
      { atMs: 1000, rssBytes: 30, hwmBytes: 40, cpuSeconds: 1.5 },
      { atMs: 2000, rssBytes: 20, hwmBytes: 40, cpuSeconds: 3 },
    ]);
    assert.deepEqual(w, { samples: 3, peakRssBytes: 40, meanRssBytes: 20, lastRssBytes: 20, cpuSeconds: 2, seconds: 2 });
    assert.equal(summarizeSamples([]), undefined);
  });
});

describe("ProcSampler over several processes", () => {
  it("adds up RSS and VmHWM of every pid, and keeps CPU seconds when a process goes", async () => {
    const { spawn } = await import("node:child_process");
    const { ProcSampler } = await import("./proc.ts");
    const kids = [spawn("sleep", ["30"]), spawn("sleep", ["30"])];
    try {
      let pids = kids.map((k) => k.pid!);
      // A process that has just been spawned is still paging itself in: wait until both RSS figures hold still.
      await Promise.all(kids.map((k) => new Promise((r) => k.once("spawn", r))));
      for (let i = 0, last = ""; i < 100; i++) {
        const now = JSON.stringify(pids.map(sampleProc).map((x) => [x?.rssBytes, x?.hwmBytes]));
        if (now === last) break;
        last = now;
        await new Promise((r) => setTimeout(r, 50));
      }
      const sampler = new ProcSampler(() => pids, 60_000);
      sampler.stop();
      const both = sampler.sample()!;
      const alone = pids.map(sampleProc);
      assert.equal(both.rssBytes, alone[0]!.rssBytes + alone[1]!.rssBytes);
      assert.equal(both.hwmBytes, alone[0]!.hwmBytes + alone[1]!.hwmBytes);
      pids = [process.pid];
      const self = sampler.sample()!;
      assert.ok(self.cpuSeconds >= both.cpuSeconds, "CPU seconds of the processes sampled before still count");
      assert.ok(self.rssBytes > 0);
      pids = [];
      assert.equal(sampler.sample(), undefined);
    } finally {
      for (const k of kids) k.kill();
    }
  });
});
