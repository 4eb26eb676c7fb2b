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
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL(".", import.meta.url));

/**
 * Every module URL loaded by importing `entry` (main.ts runs nothing on import: it checks import.meta.main). The whole
 * static graph loads before any module runs, so an entry that throws outside its context (lease-worker.ts has no
 * parent port here) still shows what it would load.
 */
function loadedModules(entry: string): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const seen = [];
    registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
    await import(${JSON.stringify(entry)}).catch(() => undefined);
    process.stdout.write(JSON.stringify(seen));
  `;
  const out = execFileSync(process.execPath, ["--no-warnings", "--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return JSON.parse(out) as string[];
}

/** Source that calls the global fetch() or uses WebAssembly, neither of which exists under --lite-mode. */
const needsWasm = (text: string) => /\bWebAssembly\b/.test(text) || /(?<![.\w$])fetch\(/.test(text);

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

  it("does not load the OpenTelemetry SDK: /metrics is written by prometheus.ts, the SDK only comes with OTLP export", () => {
    const urls = loadedModules(`${SRC}main.ts`);
    assert.ok(
      urls.some((u) => u.endsWith("/src/observability/prometheus.ts")),
      "the hook saw the registry",
    );
    assert.deepEqual(
      urls.filter((u) => /\/node_modules\/@opentelemetry\/(?!api\/)/.test(u)),
      [],
    );
  });

  it("needs no WebAssembly, so it runs under V8's --lite-mode (the image's and the chart's flag): no fetch(), no WebAssembly", () => {
    // Lite mode implies --jitless, which removes WebAssembly, and Node's fetch() (undici) parses HTTP with it.
    // otel-sdk.ts is imported on demand, when OTLP export is configured.
    const graphs = {
      "main.ts": "/src/controller/controller.ts",
      "lease-worker.ts": "/src/runtime/leader-election.ts",
      "observability/otel-sdk.ts": "/node_modules/@opentelemetry/otlp-exporter-base/dist/index.mjs",
    };
    for (const [entry, oneOfItsModules] of Object.entries(graphs)) {
      const files = loadedModules(`${SRC}${entry}`).filter((u) => u.startsWith("file:"));
      assert.ok(
        files.some((u) => u.endsWith(oneOfItsModules)),
        `${entry}: the hook saw its modules`,
      );
      const offenders = files.filter((u) => needsWasm(readFileSync(fileURLToPath(u), "utf8")));
      assert.deepEqual(offenders, [], `${entry} loads modules that use WebAssembly or fetch()`);
    }
  });

  it("control: the WebAssembly/fetch check sees a call of fetch() and WebAssembly, not a method named fetch", () => {
    assert.ok(needsWasm("const res = await fetch(url);"));
    assert.ok(needsWasm("new WebAssembly.Module(bytes)"));
    assert.ok(!needsWasm("await cache.fetch(key); prefetch(x)"));
  });

  it("control: the CLI's cluster module does load it, so the hook would see it", () => {
    assert.ok(fromClientNode(loadedModules(`${SRC}cli/cluster.ts`)).length > 0);
  });
});
