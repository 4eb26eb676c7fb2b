/**
 * Polling instead of sleeping.
 *
 *   const pod = await waitFor('pod p to be Running', async (note) => {
 *     const p = await k.core.readNamespacedPod({ name: 'p', namespace });
 *     note(p.status?.phase);                    // what the timeout error will report
 *     return p.status?.phase === 'Running' && p;
 *   }, { timeoutMs: 20_000 });
 *
 * `fn` is called every `intervalMs` until it returns a truthy value, which waitFor
 * returns. Errors thrown by `fn` are retried (and reported). On timeout it throws
 * an Error naming `description` and the last observed state: the last value given
 * to `note`, else the last falsy return value or error.
 */
import { ApiException } from "@kubernetes/client-node";
import { inspect } from "node:util";

export interface WaitOptions {
  /**
   * Only catches hangs, never measures speed: values below HANG_FLOOR_MS (3 min) are raised to it,
   * so a wait written for an idle machine still holds on a busy one. Default HANG_FLOOR_MS.
   */
  timeoutMs?: number;
  /** Default 200 ms. */
  intervalMs?: number;
}

function describe(v: unknown): string {
  if (v instanceof ApiException) {
    const body = typeof v.body === "string" ? v.body : JSON.stringify(v.body);
    return `ApiException ${v.code}: ${body?.slice(0, 1000)}`;
  }
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  const s = typeof v === "string" ? v : inspect(v, { depth: 6, breakLength: 160 });
  return s.length > 3000 ? `${s.slice(0, 3000)}…` : s;
}

export class WaitTimeoutError extends Error {
  readonly lastObserved: unknown;
  constructor(message: string, lastObserved: unknown) {
    super(message);
    this.name = "WaitTimeoutError";
    this.lastObserved = lastObserved;
  }
}

/** The shortest time any wait gives up after (a machine busy with other work can be many times slower). */
export const HANG_FLOOR_MS = 3 * 60_000;

export async function waitFor<T>(
  description: string,
  fn: (note: (state: unknown) => void) => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const timeoutMs = Math.max(opts.timeoutMs ?? 0, HANG_FLOOR_MS);
  const intervalMs = opts.intervalMs ?? 200;
  const started = Date.now();
  const noted: { set: boolean; state: unknown } = { set: false, state: undefined };
  let last: unknown = "(fn never returned)";
  const note = (state: unknown) => {
    noted.set = true;
    noted.state = state;
  };
  for (let attempt = 1; ; attempt++) {
    noted.set = false;
    try {
      const v = await fn(note);
      if (v) return v as Exclude<T, false | 0 | "" | null | undefined>;
      last = noted.set ? noted.state : v;
    } catch (err) {
      last = noted.set ? { noted: noted.state, error: describe(err) } : err;
    }
    const elapsed = Date.now() - started;
    if (elapsed >= timeoutMs) {
      throw new WaitTimeoutError(
        `timed out after ${(elapsed / 1000).toFixed(1)}s (${attempt} attempts) waiting for ${description}; last observed: ${describe(last)}`,
        last,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, timeoutMs - elapsed))));
  }
}
