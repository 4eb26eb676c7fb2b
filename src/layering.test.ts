/**
 * The import rules that src/README.md states, checked against the code: every relative import of every source file
 * under src/ (tests excluded: they may build fixtures from any layer) is resolved and held against the rules.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = dirname(fileURLToPath(import.meta.url));

interface Edge {
  /** Importing file, relative to src/ (e.g. `controller/reconciler.ts`). */
  from: string;
  /** Imported file, relative to src/; outside src/ starts with `../`. */
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "testdata" ? [] : sourceFiles(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

/** Static imports and re-exports (`import ... from`, `export ... from`, `import "x"`) and dynamic `import("x")`. */
function importSpecifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s(?:[^"';]*?\sfrom\s)?\s*["']([^"']+)["']/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]!);
  return out;
}

function edges(): Edge[] {
  return sourceFiles(SRC).flatMap((file) =>
    importSpecifiers(readFileSync(file, "utf8"))
      .filter((spec) => spec.startsWith("."))
      .map((spec) => ({ from: relative(SRC, file), to: relative(SRC, join(dirname(file), spec)) })),
  );
}

const ALL = edges();
const inside = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);
const outOf = (folder: string) => ALL.filter((e) => inside(e.from, folder) && !inside(e.to, folder));
const show = (list: Edge[]) => list.map((e) => `${e.from} -> ${e.to}`).join("\n");

function assertNone(list: Edge[], rule: string): void {
  assert.deepEqual(list, [], `${rule} (src/README.md), broken by:\n${show(list)}`);
}

describe("layering: the import rules of src/README.md", () => {
  it("reads the imports (the checks below are not vacuous)", () => {
    assert.ok(ALL.length > 200, `found ${ALL.length} imports`);
    assert.ok(
      ALL.some((e) => e.from === "controller/reconciler.ts" && e.to === "controller/planner/index.ts"),
      "controller/reconciler.ts -> controller/planner/index.ts",
    );
    assert.deepEqual(
      importSpecifiers(
        'import a from "./a.ts";\nexport { b } from "./b.ts";\nimport type {\n  C,\n} from "../c.ts";\nimport "./d.ts";\nconst e = await import("./e.ts");',
      ),
      ["./a.ts", "./b.ts", "../c.ts", "./d.ts", "./e.ts"],
    );
  });

  it("runtime/ imports nothing from the rest of src/", () => {
    assertNone(outOf("runtime"), "runtime/ imports nothing above it");
  });

  it("render/names.ts imports only api/group.ts; api/ imports only render/names.ts from outside api/", () => {
    assertNone(
      ALL.filter((e) => e.from === "render/names.ts" && e.to !== "api/group.ts"),
      "render/names.ts is the shared vocabulary",
    );
    assertNone(
      outOf("api").filter((e) => e.to !== "render/names.ts"),
      "api/ is the bottom of the FineTuneJob layers",
    );
  });

  it("render/ is pure: it imports only api/ and axolotl/", () => {
    assertNone(
      outOf("render").filter((e) => !inside(e.to, "api") && !inside(e.to, "axolotl")),
      "render/ builders do no I/O",
    );
  });

  it("render/ and validation/ never import controller/, progress/, cli/ or main.ts", () => {
    const above = (e: Edge) => ["controller", "progress", "cli"].some((f) => inside(e.to, f)) || e.to === "main.ts";
    assertNone([...outOf("render"), ...outOf("validation")].filter(above), "render/ and validation/ sit below the controller");
  });

  it("progress/ imports from render/ only render/names.ts", () => {
    assertNone(
      outOf("progress").filter((e) => inside(e.to, "render") && e.to !== "render/names.ts"),
      "contracts live in render/names.ts",
    );
  });

  it("controller/planner/ is pure: no kube/, runtime/, observability/, reconciler or controller", () => {
    const io = (e: Edge) =>
      ["kube", "runtime", "observability"].some((f) => inside(e.to, f)) || e.to === "controller/reconciler.ts" || e.to === "controller/controller.ts";
    assertNone(outOf("controller/planner").filter(io), "the planner decides without I/O");
  });

  it("controller/ is imported only by main.ts; cli/ and main.ts by nothing outside themselves", () => {
    assertNone(
      ALL.filter((e) => inside(e.to, "controller") && !inside(e.from, "controller") && e.from !== "main.ts"),
      "controller/ sits at the top, under main.ts",
    );
    assertNone(
      ALL.filter((e) => inside(e.to, "cli") && !inside(e.from, "cli")),
      "cli/ is a top layer",
    );
    assertNone(
      ALL.filter((e) => e.to === "main.ts" && e.from !== "main.ts"),
      "main.ts is the top",
    );
  });
});
