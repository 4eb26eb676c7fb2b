/**
 * Where the operator's log lines go: stdout, the lines of a short window in one write.
 *
 * pino's default stdout stream writes each line as it comes, one asynchronous fs.write through libuv's thread pool
 * apiece. In a burst of 500 full-lifecycle jobs those writes (about 3000 lines) took 0.65 s of the operator's 17.5 s
 * of CPU, in a profile of the benchmark. Gathered for FLUSH_MS they are a few writes a second, each synchronous
 * (main.ts gives a synchronous SonicBoom; klog, the Go controllers' logger, writes synchronously too, and flushes
 * every 5 s). A line waits at most FLUSH_MS, and what is buffered is written when the process exits, an uncaught
 * error included; only a SIGKILL (the OOM killer) loses the last FLUSH_MS of lines.
 */

import { pino } from "pino";

/** The stream the lines are handed to (pino's SonicBoom on fd 1; a test's recorder). */
export interface LineSink {
  write(chunk: string): unknown;
  /** Writes what the sink holds and calls back once it is written (SonicBoom's flush). */
  flush?(cb: (err?: Error | null) => void): void;
  flushSync(): void;
}

export const FLUSH_MS = 200;
/**
 * Above this many buffered characters the lines go out at once, whatever the window. The election thread writes its
 * lines to the same fd, and a pipe keeps a write whole only up to 4 KiB; pino's own stream wrote up to 16 KiB at
 * once as well, so batches no larger than that leave the (rare) interleaving as likely as it was.
 */
export const FLUSH_CHARS = 16 * 1024;

export class BatchedLineWriter {
  readonly #sink: LineSink;
  readonly #flushMs: number;
  readonly #flushChars: number;
  #lines: string[] = [];
  #chars = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(sink: LineSink, opts: { flushMs?: number; flushChars?: number } = {}) {
    this.#sink = sink;
    this.#flushMs = opts.flushMs ?? FLUSH_MS;
    this.#flushChars = opts.flushChars ?? FLUSH_CHARS;
  }

  /** pino calls this once per line (the line ends in "\n"). */
  write(line: string): boolean {
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= this.#flushChars) this.flush();
    // Unref'd: a buffered line never keeps the process alive; the exit hook writes it.
    else this.#timer ??= setTimeout(() => this.flush(), this.#flushMs).unref();
    return true;
  }

  /**
   * Hands what is buffered to the sink in one write, lines in order. With a callback (pino's
   * `logger.flush(cb)` passes one), calls back once the sink has written it.
   */
  flush(cb?: (err?: Error | null) => void): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines.length > 0) {
      const chunk = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join("");
      this.#lines = [];
      this.#chars = 0;
      this.#sink.write(chunk);
    }
    if (!cb) return;
    if (this.#sink.flush) this.#sink.flush(cb);
    else cb();
  }

  /** Writes everything, the sink's own buffer too, before returning: for the exit path. */
  flushSync(): void {
    this.flush();
    this.#sink.flushSync();
  }
}

/**
 * The operator's stdout for pino: batches on a synchronous SonicBoom on fd 1 (pino's asynchronous one would be ended
 * by pino on beforeExit, and a process that ran out of work lost its buffered lines), and what is buffered written
 * when the process exits.
 */
export function stdoutLineWriter(opts: { flushMs?: number } = {}): BatchedLineWriter {
  const writer = new BatchedLineWriter(pino.destination({ dest: 1, sync: true }), opts);
  process.once("exit", () => {
    try {
      writer.flushSync();
    } catch {
      // stdout is gone (EPIPE): nothing left to write to, and an exit must not fail on it.
    }
  });
  return writer;
}
