/**
 * The operator process does not load what it does not use: importing src/main.ts's module graph (in a child
 * process, so this test runner's own imports do not count) must not load @kubernetes/client-node, whose index
 * alone costs about 85 MiB RSS. A module hook records every URL the child loads; the check fails as soon as any
 * import in that graph stops being `import type` (see the control case below, which loads the CLI's cluster
 * module and must see the library).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL(".", import.meta.url));

/** Every module URL loaded by importing `entry` (main.ts runs nothing on import: it checks import.meta.main). */
function loadedModules(entry: string): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const seen = [];
    registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
    await import(${JSON.stringify(entry)});
    process.stdout.write(JSON.stringify(seen));
  `;
  const out = execFileSync(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return JSON.parse(out) as string[];
}

const fromClientNode = (urls: string[]) => urls.filter((u) => u.includes("/node_modules/@kubernetes/client-node/"));

describe("the operator's module graph", () => {
  it("does not load @kubernetes/client-node (types only; the library is imported on demand for exotic credentials)", () => {
    const urls = loadedModules(`${SRC}main.ts`);
    assert.ok(
      urls.some((u) => u.endsWith("/src/controller/controller.ts")),
      "the hook saw the operator's own modules",
    );
    assert.deepEqual(fromClientNode(urls), []);
    // Nor its transport dependencies.
    assert.deepEqual(
      urls.filter((u) => /\/node_modules\/(undici|ws|jose|openid-client|js-yaml)\//.test(u)),
      [],
    );
  });

  it("control: the CLI's cluster module does load it, so the hook would see it", () => {
    assert.ok(fromClientNode(loadedModules(`${SRC}cli/cluster.ts`)).length > 0);
  });
});
