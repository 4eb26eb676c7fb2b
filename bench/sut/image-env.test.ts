/**
 * The benchmark runs the operator with the image's environment, so it measures what the image runs: the Dockerfile's
 * runtime ENV (NODE_ENV=production turns the informers' deep freeze off) under the Deployment's own.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { imageEnv } from "../../e2e/lib/install.ts";

describe("imageEnv", () => {
  it("reads the runtime stage of the repository's Dockerfile", () => {
    assert.deepEqual(imageEnv(readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8")), { NODE_ENV: "production" });
  });

  it("takes only the last stage's ENV, one KEY=value per line", () => {
    const dockerfile = ["FROM a AS build", "ENV CI=1", "RUN make", "FROM b", "ENV NODE_ENV=production", "env TZ=UTC", 'CMD ["x"]'].join("\n");
    assert.deepEqual(imageEnv(dockerfile), { NODE_ENV: "production", TZ: "UTC" });
  });

  it("refuses an ENV it would misread rather than run the operator without it", () => {
    assert.throws(() => imageEnv("FROM b\nENV A=1 B=2\n"), /one KEY=value per line/);
    assert.throws(() => imageEnv("FROM b\nENV A 1\n"), /one KEY=value per line/);
  });
});
