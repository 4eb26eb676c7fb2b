import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it, mock } from "node:test";
import { BatchedLineWriter, type LineSink } from "./log-destination.ts";

function recorder(): LineSink & { chunks: string[]; syncs: number } {
  const r = {
    chunks: [] as string[],
    syncs: 0,
    write(chunk: string) {
      r.chunks.push(chunk);
      return true;
    },
    flushSync() {
      r.syncs++;
    },
  };
  return r;
}

describe("BatchedLineWriter", () => {
  it("writes the lines of one window together, in order, when the window closes", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const sink = recorder();
      const w = new BatchedLineWriter(sink, { flushMs: 200 });
      w.write('{"msg":"a"}\n');
      w.write('{"msg":"b"}\n');
      mock.timers.tick(199);
      assert.deepEqual(sink.chunks, []);
      mock.timers.tick(1);
      assert.deepEqual(sink.chunks, ['{"msg":"a"}\n{"msg":"b"}\n']);
      // The next line opens a new window.
      w.write('{"msg":"c"}\n');
      mock.timers.tick(200);
      assert.deepEqual(sink.chunks, ['{"msg":"a"}\n{"msg":"b"}\n', '{"msg":"c"}\n']);
      // Nothing buffered: no empty write.
      mock.timers.tick(1000);
      assert.equal(sink.chunks.length, 2);
    } finally {
      mock.timers.reset();
    }
  });

  it("writes at once when the buffer passes its size, and the window's timer writes nothing twice", () => {
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      const sink = recorder();
      const w = new BatchedLineWriter(sink, { flushMs: 200, flushChars: 10 });
      w.write("12345\n");
      assert.deepEqual(sink.chunks, []);
      w.write("67890\n");
      assert.deepEqual(sink.chunks, ["12345\n67890\n"]);
      mock.timers.tick(500);
      assert.deepEqual(sink.chunks, ["12345\n67890\n"]);
    } finally {
      mock.timers.reset();
    }
  });

  it("flushSync hands over what is buffered and makes the sink write it before returning", () => {
    const sink = recorder();
    const w = new BatchedLineWriter(sink, { flushMs: 60_000 });
    w.write("x\n");
    w.flushSync();
    assert.deepEqual(sink.chunks, ["x\n"]);
    assert.equal(sink.syncs, 1);
  });

  it("flush(cb), as pino's logger.flush(cb) calls it, hands the lines over and calls back once the sink has written them", () => {
    const sink = recorder();
    const pending: Array<(err?: Error | null) => void> = [];
    const w = new BatchedLineWriter({ ...sink, flush: (cb) => pending.push(cb) }, { flushMs: 60_000 });
    w.write("y\n");
    let called = false;
    w.flush(() => (called = true));
    assert.deepEqual(sink.chunks, ["y\n"]);
    assert.equal(called, false, "not before the sink has written");
    pending.forEach((cb) => cb());
    assert.equal(called, true);
    // A sink without flush: the callback comes at once.
    let direct = false;
    new BatchedLineWriter(recorder()).flush(() => (direct = true));
    assert.equal(direct, true);
  });

  it("a buffered line reaches stdout when the process exits, and the window's timer does not hold the process up", () => {
    // A real process: pino on stdoutLineWriter, the stdout main.ts logs to. The process logs and returns at once;
    // its 60 s window would otherwise hold the lines back.
    const program = `
      import { pino } from "pino";
      import { stdoutLineWriter } from ${JSON.stringify(new URL("./log-destination.ts", import.meta.url).href)};
      const log = pino({ base: null }, stdoutLineWriter({ flushMs: 60_000 }));
      log.info("first");
      log.warn({ n: 2 }, "second");
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", program], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string; level: number; n?: number });
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.n]),
      [
        [30, "first", undefined],
        [40, "second", 2],
      ],
    );
  });
});
