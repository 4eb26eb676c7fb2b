/**
 * The image and the chart run node the same way: the Dockerfile's CMD (node's flags, then the program) and the
 * plain manifests' Deployment args (the chart's defaults, rendered by `npm run manifests`) must agree, or the image
 * run by hand and the Deployment would run with different compilers and memory. Both must also run flags node
 * accepts on its command line: NODE_OPTIONS refuses V8's compiler flags, which is why they are args at all.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function dockerfileCmd(): string[] {
  const line = readFileSync(`${ROOT}Dockerfile`, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("CMD "))
    .at(-1);
  assert.ok(line, "the Dockerfile has a CMD");
  return JSON.parse(line.slice(4)) as string[];
}

function deploymentArgs(): string[] {
  const docs = parseAllDocuments(readFileSync(`${ROOT}manifests/finetune-operator.yaml`, "utf8")).map((d) => d.toJS());
  const deployment = docs.find((d) => d?.kind === "Deployment");
  const args = deployment?.spec?.template?.spec?.containers?.[0]?.args as string[] | undefined;
  assert.ok(args, "the manifests' Deployment sets its container's args");
  return args;
}

describe("how the operator's node runs", () => {
  it("the image's CMD is the Deployment's args", () => {
    assert.deepEqual(dockerfileCmd(), deploymentArgs());
    assert.equal(deploymentArgs().at(-1), "dist/main.js", "the program comes last");
  });

  it("node starts with those flags (it refuses to start on an unknown one)", () => {
    const flags = deploymentArgs().slice(0, -1);
    const out = execFileSync(process.execPath, [...flags, "-e", "process.stdout.write(JSON.stringify(process.execArgv))"], {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    assert.deepEqual((JSON.parse(out) as string[]).slice(0, flags.length), flags);
  });
});
