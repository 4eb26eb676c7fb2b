/**
 * Cross-process lock (a file holding the owner's pid) so that concurrent test
 * processes calling ensureCluster(), or `up` racing `down`, do not interleave.
 * A lock whose owner died is taken over.
 */
import { mkdir, open, readFile, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { timeoutMs?: number; onWait?: (ownerPid: number) => void } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 45 * 60_000);
  await mkdir(dirname(path), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
      if (!Number.isFinite(owner)) {
        // Being written right now, or left empty by a crash: take over only when it is old.
        const age = await stat(path).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > 5000) await rm(path, { force: true });
        else await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (!alive(owner)) {
        await rm(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path} held by pid ${owner}`);
      if (!announced) {
        opts.onWait?.(owner);
        announced = true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
